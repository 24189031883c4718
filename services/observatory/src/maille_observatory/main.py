"""The observatory's app factory and entry point."""

from __future__ import annotations

import logging
from typing import Any

from maille_kit.app import Runtime, ServiceSpec, entry_points
from maille_kit.consumer import EventConsumer
from maille_kit.periodic import Periodic
from maille_observatory.api import dashboards as dashboards_api
from maille_observatory.api import operator as operator_api
from maille_observatory.directory import KEPT, Directory
from maille_observatory.export import Exports
from maille_observatory.ingest import Ingest
from maille_observatory.repository import COLLECTIONS, ObservatoryRepository
from maille_observatory.scopes import Scopes
from maille_observatory.settings import ObservatorySettings
from maille_observatory.views import Dashboards, Summaries

log = logging.getLogger("maille.observatory")

# Every read and write goes by `_id` (repository.py).
INDEXES: dict[str, list[Any]] = {name: [] for name in COLLECTIONS}


def parts(runtime: Runtime) -> list[object]:
    settings = runtime.settings
    assert isinstance(settings, ObservatorySettings) and runtime.docstore is not None
    repository = ObservatoryRepository(runtime.docstore)
    directory = Directory(repository)
    scopes = Scopes(repository, directory)
    ingest = Ingest(repository, runtime.bus, flush_seconds=settings.flush_seconds, fetch_batch=settings.fetch_batch)
    summaries = Summaries(repository, ingest, scopes, directory)
    ingest.on_flush = summaries.months_written
    return [
        repository,
        directory,
        scopes,
        ingest,
        summaries,
        Dashboards(summaries, directory, scopes),
        Exports(repository, ingest, directory, scopes),
    ]


def consumers(runtime: Runtime) -> list[EventConsumer]:
    """Identity's persons and schools (its stream may come up after the observatory)."""
    directory = runtime.parts.get(Directory)
    return [runtime.directory_consumer(directory, kept=KEPT)]


async def on_start(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, ObservatorySettings)
    directory, scopes = runtime.parts.get(Directory), runtime.parts.get(Scopes)
    ingest, summaries = runtime.parts.get(Ingest), runtime.parts.get(Summaries)
    persons = await directory.load()
    territories = await scopes.load()
    await summaries.catch_up()
    ingest.start()
    jobs = Periodic(log)
    jobs.start(
        [(settings.refresh_seconds, summaries.refresh, "months merged for the académie, districts, collectivités")]
    )
    runtime.parts.add(jobs)
    log.info("observatory ready", extra={"persons": persons, "territories": territories})


async def on_stop(runtime: Runtime) -> None:
    await runtime.parts.stop((Periodic, Periodic.stop), (Ingest, Ingest.stop))


def build(settings: ObservatorySettings) -> ServiceSpec:
    """What the observatory is made of."""
    return ServiceSpec.of(__name__, settings, indexes=INDEXES, routers=[dashboards_api.router, operator_api.router])


app, main = entry_points(build, ObservatorySettings)
