"""The library service's app factory and entry point."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from maille_kit.app import Runtime, ServiceSpec, entry_points
from maille_kit.consumer import EventConsumer
from maille_kit.docstore import Docstore
from maille_kit.settings import load_settings
from maille_library.account import Accounts
from maille_library.api.cdi import router
from maille_library.connections import Connections
from maille_library.directory import KEPT, SUBJECTS, Directory
from maille_library.notices import LoanNotices
from maille_library.pmb import PmbClient
from maille_library.search import Search
from maille_library.settings import LibrarySettings
from maille_library.sync import ReaderSync

log = logging.getLogger("maille.library")
PARIS = ZoneInfo("Europe/Paris")


def parts(runtime: Runtime) -> list[object]:
    """The service's directory copy, PMB connections and client, search, accounts and reader sync."""
    settings = runtime.settings
    assert isinstance(settings, LibrarySettings) and runtime.docstore is not None
    directory = Directory(runtime.docstore)
    connections = Connections(
        runtime.docstore, settings.secret_box(), ttl=settings.connection_cache_seconds, works=runtime.works
    )
    client = PmbClient(
        timeout=settings.pmb_timeout_seconds, retries=settings.pmb_retries, max_bytes=settings.pmb_max_bytes
    )
    search = Search(
        client,
        connections,
        directory,
        timeout=settings.search_timeout_seconds,
        cache_seconds=settings.search_cache_seconds,
    )
    accounts = Accounts(client, connections, directory, timeout=settings.search_timeout_seconds)
    sync = ReaderSync(
        client,
        connections,
        directory,
        runtime.docstore,
        concurrency=settings.sync_concurrency,
        updates_per_second=settings.sync_updates_per_second,
    )
    directory.changed = sync.changed
    assert runtime.works is not None
    notices = LoanNotices(
        client,
        connections,
        directory,
        runtime.works,
        runtime.docstore,
        concurrency=settings.loan_notices_concurrency,
        tenant=settings.tenant,
    )
    return [directory, connections, client, search, accounts, sync, notices, DailyLook()]


class DailyLook:
    """Each day at `loan_notices_at` (Europe/Paris), the look at the loans (one replica a day)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None

    def start(self, notices: LoanNotices, at: str) -> None:
        if at:
            self.task = asyncio.create_task(self._run(notices, at), name="library loans looked at")

    async def _run(self, notices: LoanNotices, at: str) -> None:
        hour, minute = (int(x) for x in at.split(":"))
        while True:
            now = datetime.now(PARIS)
            if (now.hour, now.minute) >= (hour, minute):
                try:
                    await notices.daily(now.date())
                except Exception as exc:  # PMB or the docstore away: tried again in a minute (the day is not claimed)
                    log.warning("the look at the loans failed: %s", exc)
            await asyncio.sleep(60)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def consumers(runtime: Runtime) -> list[EventConsumer]:
    """Identity's person events (its stream may come up after the library)."""
    assert runtime.docstore is not None
    directory = runtime.parts.get(Directory)
    return [runtime.directory_consumer(directory, kept=KEPT, subjects=SUBJECTS)]


async def on_start(runtime: Runtime) -> None:
    resealed = await runtime.parts.get(Connections).seal_again()  # a rotation of the secrets key, or clear secrets
    if resealed:
        log.info("secrets of %d school(s) sealed under the current key", resealed)
    await runtime.parts.get(ReaderSync).start()
    settings = runtime.settings
    assert isinstance(settings, LibrarySettings)
    runtime.parts.get(DailyLook).start(runtime.parts.get(LoanNotices), settings.loan_notices_at)


async def on_stop(runtime: Runtime) -> None:
    await runtime.parts.stop((DailyLook, DailyLook.stop), (ReaderSync, ReaderSync.stop), (PmbClient, PmbClient.close))


def build(settings: LibrarySettings) -> ServiceSpec:
    """What the library service is made of."""
    return ServiceSpec.of(__name__, settings, routers=[router])


app, _serve = entry_points(build, LibrarySettings)


async def reconcile(settings: LibrarySettings) -> dict[str, int]:
    """Sync every reader of the schools that ask for it, once (`maille-library reconcile`)."""
    docstore = Docstore.for_command(settings, "reconcile")
    await docstore.detect()
    client = PmbClient(
        timeout=settings.pmb_timeout_seconds, retries=settings.pmb_retries, max_bytes=settings.pmb_max_bytes
    )
    try:
        directory = Directory(docstore)
        sync = ReaderSync(
            client,
            Connections(docstore, settings.secret_box(), ttl=settings.connection_cache_seconds),
            directory,
            docstore,
            concurrency=settings.sync_concurrency,
        )
        return await sync.reconcile()
    finally:
        await client.close()
        await docstore.close()


def main() -> None:
    """Serve the library service until SIGTERM; `maille-library reconcile` syncs every PMB reader once."""
    if sys.argv[1:] == ["reconcile"]:
        counts = asyncio.run(reconcile(load_settings(LibrarySettings)))
        print(
            "readers reconciled: " + (", ".join(f"{what} {n}" for what, n in sorted(counts.items())) or "nothing to do")
        )
        sys.exit(1 if counts.get("failed") else 0)
    _serve()
