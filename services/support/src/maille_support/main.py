"""The support service's app factory and entry point."""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.msg import Msg

from maille_kit.app import Runtime, ServiceSpec, entry_points
from maille_kit.consumer import EventConsumer
from maille_kit.files import ClamdScanner, DocstoreFiles
from maille_kit.periodic import Periodic
from maille_support.api import desks as desks_api
from maille_support.api import knowledge as knowledge_api
from maille_support.api import requests as requests_api
from maille_support.desks import Desks, Level
from maille_support.directory import KEPT, Directory
from maille_support.knowledge import SIGNAL as ARTICLES_SIGNAL
from maille_support.knowledge import Knowledge
from maille_support.queue import SIGNAL as QUEUE_SIGNAL
from maille_support.queue import Queue
from maille_support.redmine import Trackers
from maille_support.repository import COLLECTIONS, FILE_CHUNKS, FILES, SupportRepository
from maille_support.requests import Requests
from maille_support.settings import SupportSettings

log = logging.getLogger("maille.support")

# Every read and write of the serving path goes by `_id` (repository.py); the queues and the search are in memory.
INDEXES: dict[str, list[Any]] = {name: [] for name in COLLECTIONS}


def parts(runtime: Runtime) -> list[object]:
    settings = runtime.settings
    assert isinstance(settings, SupportSettings) and runtime.docstore is not None and runtime.works is not None
    repository = SupportRepository(runtime.docstore)
    desks = Desks(
        repository,
        settings.secret_box(),
        school=Level(settings.school_first_answer_hours, settings.school_resolution_hours),
        referent_functions=settings.referent_functions,
    )
    queue = Queue(repository, runtime.bus)
    files = DocstoreFiles(runtime.docstore, files=FILES, chunks=FILE_CHUNKS)
    scanner = (
        ClamdScanner(settings.clamd_address, timeout=settings.scan_timeout_seconds) if settings.clamd_address else None
    )
    requests = Requests(
        repository,
        runtime.works,
        queue,
        desks,
        files,
        tenant=settings.tenant,
        reopen_days=settings.reopen_days,
        file_max_bytes=settings.file_max_bytes,
        scanner=scanner,
        uses=runtime.uses,
    )
    trackers = Trackers(
        repository, requests, queue, desks, public_url=settings.public_url, timeout=settings.redmine_timeout_seconds
    )
    requests.escalated = trackers.escalated
    knowledge = Knowledge(repository, desks, files, runtime.bus)
    return [repository, desks, queue, requests, trackers, knowledge, Directory(repository)]


def consumers(runtime: Runtime) -> list[EventConsumer]:
    """Identity's persons and schools (its stream may come up after support)."""
    directory = runtime.parts.get(Directory)
    return [runtime.directory_consumer(directory, kept=KEPT)]


def housekeeping(runtime: Runtime) -> Periodic:
    """The timed work: overdue requests told, resolved ones closed, the trackers written and read, every request and
    desk read again."""
    settings = runtime.settings
    assert isinstance(settings, SupportSettings)
    requests, trackers = runtime.parts.get(Requests), runtime.parts.get(Trackers)
    queue, desks = runtime.parts.get(Queue), runtime.parts.get(Desks)

    async def reload_desks() -> int:
        return len(await desks.load())

    jobs = Periodic(log)
    jobs.start(
        [
            (60, requests.look_overdue, "overdue requests told"),
            (3600, requests.close_resolved, "resolved requests closed"),
            (settings.redmine_poll_seconds, trackers.push, "requests written to the desks' Redmine"),
            (settings.redmine_poll_seconds, trackers.pull, "comments read from the desks' Redmine"),
            (settings.queue_refresh_seconds, queue.load, "requests read again"),
            (30, reload_desks, "desks read again"),
        ]
    )
    return jobs


async def on_start(runtime: Runtime) -> None:
    queue, knowledge, desks = runtime.parts.get(Queue), runtime.parts.get(Knowledge), runtime.parts.get(Desks)
    sealed = await desks.seal_again()
    if sealed:
        log.info("desks' Redmine keys sealed again under the current key", extra={"desks": sealed})
    await knowledge.seed()
    articles = await knowledge.load()
    requests = await queue.load()
    log.info("support ready", extra={"requests": requests, "articles": articles})
    nc = runtime.bus.nc
    if nc is not None:

        async def heard_request(msg: Msg) -> None:
            await queue.heard(msg.data.decode())

        async def heard_article(msg: Msg) -> None:
            await knowledge.heard(msg.data.decode())

        await nc.subscribe(QUEUE_SIGNAL, cb=heard_request)
        await nc.subscribe(ARTICLES_SIGNAL, cb=heard_article)
    runtime.parts.add(housekeeping(runtime))


async def on_stop(runtime: Runtime) -> None:
    await runtime.parts.stop((Periodic, Periodic.stop))


def build(settings: SupportSettings) -> ServiceSpec:
    """What the support service is made of."""
    return ServiceSpec.of(
        __name__, settings, indexes=INDEXES, routers=[requests_api.router, knowledge_api.router, desks_api.router]
    )


app, main = entry_points(build, SupportSettings)
