"""The identity service's app factory and entry point."""

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from maille_identity import __doc__ as description
from maille_identity import __version__
from maille_identity.api import directory as directory_api
from maille_identity.api import federation as federation_api
from maille_identity.api import operator
from maille_identity.api import rules as rules_api
from maille_identity.api import schools as schools_api
from maille_identity.directory.jobs import ImportJobs
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.events import STREAMS, EventBatch
from maille_identity.federation.accounts import AccountSync
from maille_identity.federation.linking import Linking
from maille_identity.federation.opacs import opac_consumer
from maille_identity.federation.repository import FederationRepository
from maille_identity.federation.service import Federation
from maille_identity.gar.nightly import run_nightly
from maille_identity.rules.service import VisiblesService
from maille_identity.rules.store import RulesStore
from maille_identity.settings import IdentitySettings
from maille_kit.app import Runtime, ServiceSpec, create_app, load_settings, serve

log = logging.getLogger("maille.identity")


async def on_start(runtime: Runtime) -> None:
    """Answer the communication rules' requests over NATS; keep the nightly GAR export's schedule."""
    assert runtime.docstore is not None
    repository = DirectoryRepository(runtime.docstore)
    settings = runtime.settings
    assert isinstance(settings, IdentitySettings)
    service = VisiblesService(
        runtime.bus, repository, RulesStore(runtime.docstore), refresh_seconds=settings.visibles_refresh_seconds
    )
    await service.start()
    runtime.state["visibles"] = service
    works = runtime.works
    runtime.state["imports"] = ImportJobs(
        repository,
        lambda tenant: EventBatch(works, tenant=tenant),
        folder=Path(settings.import_dir),
        check_uai_letter=settings.check_uai_letter,
        id_secret=settings.person_id_key.get_secret_value().encode(),
        grace=timedelta(days=settings.detach_grace_days),
    )
    runtime.state["import-watch"] = asyncio.create_task(runtime.state["imports"].watch(), name="import-jobs-watch")
    federations = FederationRepository(runtime.docstore, settings.secret_box())
    resealed = await federations.seal_again()  # a rotation of the secrets key, or secrets kept in clear before
    if resealed:
        log.info("client secrets of %d federation(s) sealed under the current key", resealed)
    indexed = await federations.index_links()  # links made before `person_accounts` existed
    if indexed:
        log.info("%d account links indexed by person", indexed)
    federation = Federation(settings, federations) if settings.keycloak_url else None
    runtime.state["linking"] = Linking(
        repository,
        federations,
        federation.keycloak if federation else None,
        tenant=settings.tenant,
        id_secret=settings.person_id_key.get_secret_value().encode(),
        default_id_ent=settings.gar_id_ent,
    )
    if federation is not None:
        runtime.state["federation"] = federation
        accounts = AccountSync(runtime.bus, runtime.docstore, runtime.state["linking"])
        await accounts.start()
        runtime.state["accounts"] = accounts
        opacs = opac_consumer(runtime.bus, runtime.docstore, federation)
        await opacs.start()
        runtime.state["opacs"] = opacs
        if settings.keycloak_sync_on_start:
            runtime.state["keycloak-sync"] = asyncio.create_task(federation.keep_synced(), name="keycloak-sync")
        runtime.state["signed-out"] = asyncio.create_task(
            federation.keep_disabled_signed_out(), name="disabled-signed-out"
        )
    if settings.gar_export_at is not None:
        runtime.state["nightly"] = asyncio.create_task(
            run_nightly(runtime.bus, repository, settings), name="gar-nightly"
        )


async def on_stop(runtime: Runtime) -> None:
    imports = runtime.state.pop("imports", None)
    if imports is not None:
        await imports.stop()
    for name in ("import-watch", "nightly", "keycloak-sync", "signed-out"):
        task = runtime.state.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    for name in ("accounts", "opacs"):
        consumer = runtime.state.pop(name, None)
        if consumer is not None:
            await consumer.stop()
    federation = runtime.state.pop("federation", None)
    if federation is not None:
        await federation.keycloak.close()
    service = runtime.state.pop("visibles", None)
    if service is not None:
        await service.stop()


def build(settings: IdentitySettings) -> ServiceSpec:
    """What the identity service is made of."""
    return ServiceSpec(
        name="identity",
        version=__version__,
        settings=settings,
        streams=STREAMS,
        description=description or "",
        on_start=on_start,
        on_stop=on_stop,
        routers=[
            operator.router,
            rules_api.router,
            schools_api.router,
            directory_api.router,
            federation_api.router,
            *([federation_api.federations] if settings.keycloak_url else []),
        ],
    )


def app(settings: IdentitySettings | None = None) -> FastAPI:
    """The identity service's ASGI app."""
    return create_app(build(settings or load_settings(IdentitySettings)))


def main() -> None:
    """Serve the identity service until SIGTERM."""
    settings = load_settings(IdentitySettings)
    serve(app(settings), settings)
