"""The identity service's app factory and entry point."""

import asyncio
import logging
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

from maille_identity.api import clients as clients_api
from maille_identity.api import directory as directory_api
from maille_identity.api import federation as federation_api
from maille_identity.api import operator
from maille_identity.api import rules as rules_api
from maille_identity.api import schools as schools_api
from maille_identity.directory.jobs import ImportJobs
from maille_identity.directory.people import People
from maille_identity.directory.repository import DirectoryRepository, StructureNames
from maille_identity.events import EventBatch
from maille_identity.federation.accounts import AccountSync
from maille_identity.federation.clients import ApiClients
from maille_identity.federation.linking import Linking
from maille_identity.federation.opacs import opac_consumer
from maille_identity.federation.repository import FederationRepository
from maille_identity.federation.service import Federation
from maille_identity.gar.nightly import run_nightly
from maille_identity.rules.repository import RulesStore
from maille_identity.rules.responder import VisiblesService
from maille_identity.settings import IdentitySettings
from maille_kit.app import Runtime, ServiceSpec, entry_points
from maille_kit.consumer import EventConsumer

log = logging.getLogger("maille.identity")


class Background:
    """Identity's long-running work beside its routes: the import jobs' watch, the nightly GAR export, the
    realm kept in step and disabled accounts signed out, and the consumers that need Keycloak."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.consumers: list[EventConsumer] = []

    def run(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(asyncio.create_task(work, name=name))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for consumer in self.consumers:
            await consumer.stop()


def parts(runtime: Runtime) -> list[object]:
    """What identity's routes and work are made of."""
    settings = runtime.settings
    assert isinstance(settings, IdentitySettings)
    assert runtime.docstore is not None and runtime.works is not None
    works = runtime.works
    repository = DirectoryRepository(runtime.docstore)
    rules = RulesStore(runtime.docstore, works)
    federations = FederationRepository(runtime.docstore, settings.secret_box())
    federation = Federation(settings, federations) if settings.keycloak_url else None
    id_secret = settings.person_id_key.get_secret_value().encode()
    names = StructureNames(repository)
    visibles = VisiblesService(runtime.bus, repository, rules, refresh_seconds=settings.visibles_refresh_seconds)
    made: list[object] = [
        repository,
        names,
        rules,
        federations,
        visibles,
        People(repository, names, visibles, tenant=settings.tenant),
        ImportJobs(
            repository,
            lambda tenant: EventBatch(works, tenant=tenant),
            folder=Path(settings.import_dir),
            check_uai_letter=settings.check_uai_letter,
            id_secret=id_secret,
            grace=timedelta(days=settings.detach_grace_days),
            works=works,
        ),
        Linking(
            repository,
            federations,
            federation.keycloak if federation else None,
            tenant=settings.tenant,
            id_secret=id_secret,
            default_id_ent=settings.gar_id_ent,
        ),
        Background(),
    ]
    if federation is None:
        return made
    clients = ApiClients(
        runtime.docstore,
        federation.keycloak,
        grace_seconds=settings.api_client_grace_seconds,
        token_url=f"{settings.auth_issuer.rstrip('/')}/protocol/openid-connect/token",
    )
    return [*made, federation, clients]


async def on_start(runtime: Runtime) -> None:
    """Answer the communication rules' requests over NATS; keep the nightly GAR export's schedule."""
    settings = runtime.settings
    assert isinstance(settings, IdentitySettings) and runtime.docstore is not None
    await runtime.parts.get(VisiblesService).start()
    background = runtime.parts.get(Background)
    background.run("import-jobs-watch", runtime.parts.get(ImportJobs).watch())
    federations = runtime.parts.get(FederationRepository)
    resealed = await federations.seal_again()  # a rotation of the secrets key, or secrets kept in clear before
    if resealed:
        log.info("client secrets of %d federation(s) sealed under the current key", resealed)
    indexed = await federations.index_links()  # links made before `person_accounts` existed
    if indexed:
        log.info("%d account links indexed by person", indexed)
    federation = runtime.parts.find(Federation)
    if federation is not None:
        accounts = AccountSync(runtime.bus, runtime.docstore, runtime.parts.get(Linking))
        opacs = opac_consumer(runtime.bus, runtime.docstore, federation)
        for consumer in (accounts.consumer, opacs):
            await consumer.start()
            background.consumers.append(consumer)
        if settings.keycloak_sync_on_start:
            background.run("keycloak-sync", federation.keep_synced())
        background.run("disabled-signed-out", federation.keep_disabled_signed_out())
    if settings.gar_export_at is not None:
        background.run(
            "gar-nightly",
            run_nightly(runtime.bus, runtime.parts.get(DirectoryRepository), settings, works=runtime.works),
        )


async def on_stop(runtime: Runtime) -> None:
    await runtime.parts.stop(
        (ImportJobs, ImportJobs.stop),
        (Background, Background.stop),
        (Federation, lambda federation: federation.keycloak.close()),
        (VisiblesService, VisiblesService.stop),
    )


def build(settings: IdentitySettings) -> ServiceSpec:
    """What the identity service is made of."""
    return ServiceSpec.of(
        __name__,
        settings,
        routers=[
            operator.router,
            rules_api.router,
            schools_api.router,
            directory_api.router,
            federation_api.router,
            *([federation_api.federations, clients_api.router] if settings.keycloak_url else []),
        ],
    )


app, main = entry_points(build, IdentitySettings)
