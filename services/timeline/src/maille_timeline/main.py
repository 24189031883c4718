"""The timeline service's app factory and entry point."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from maille_kit.app import Runtime, ServiceSpec, entry_points
from maille_kit.consumer import EventConsumer
from maille_kit.docstore import Docstore
from maille_kit.periodic import Periodic
from maille_kit.settings import load_settings
from maille_timeline.api import feed, news
from maille_timeline.directory import KEPT, Directory
from maille_timeline.events import (
    ADMIN_SUBJECTS,
    CATALOG_SUBJECTS,
    LIBRARY_SUBJECTS,
    MESSAGING_SUBJECTS,
    RECALL_SUBJECTS,
    SUPPORT_SUBJECTS,
    Told,
)
from maille_timeline.live import Live
from maille_timeline.mail import PARIS, Mails
from maille_timeline.news import News
from maille_timeline.notifications import Notifications, Preferences
from maille_timeline.repository import COLLECTIONS, TimelineRepository
from maille_timeline.settings import TimelineSettings

log = logging.getLogger("maille.timeline")

# Every read and write of the serving path goes by `_id` (repository.py).
INDEXES: dict[str, list[Any]] = {name: [] for name in COLLECTIONS}
RUNS = "runs"  # the daily jobs' claims: `digest:<YYYY-MM-DD>` (one replica sends a day's digests)


def parts(runtime: Runtime) -> list[object]:
    settings = runtime.settings
    assert isinstance(settings, TimelineSettings) and runtime.docstore is not None
    repository = TimelineRepository(runtime.docstore)
    mails = Mails(repository, settings)
    notifications = Notifications(repository, Live(runtime.bus), mails, feed_days=settings.feed_days)
    return [
        repository,
        mails,
        notifications,
        Preferences(repository),
        Directory(repository),
        Told(notifications, repository, admins=settings.admins),
        News(repository, notifications, file_max_bytes=settings.news_file_max_bytes),
    ]


def consumers(runtime: Runtime) -> list[EventConsumer]:
    """Identity's persons, messaging's mail, catalog's licences, the library's loans, support's requests (their streams
    may come up after the timeline)."""
    directory, told = runtime.parts.get(Directory), runtime.parts.get(Told)
    return [
        runtime.directory_consumer(directory, kept=KEPT),
        runtime.consumer("timeline-mail", stream="MESSAGING", subjects=MESSAGING_SUBJECTS, handler=told.mail),
        runtime.consumer("timeline-recalls", stream="MESSAGING", subjects=RECALL_SUBJECTS, handler=told.recall),
        runtime.consumer("timeline-catalog", stream="CATALOG", subjects=CATALOG_SUBJECTS, handler=told.catalog),
        runtime.consumer("timeline-admin", stream="IDENTITY", subjects=ADMIN_SUBJECTS, handler=told.admin),
        runtime.consumer("timeline-library", stream="LIBRARY", subjects=LIBRARY_SUBJECTS, handler=told.library),
        runtime.consumer("timeline-support", stream="SUPPORT", subjects=SUPPORT_SUBJECTS, handler=told.support),
    ]


async def digest_once(runtime: Runtime, day: str) -> dict[str, int] | None:
    """The day's digests, sent by the one replica that claims the day first (None: another did)."""
    assert runtime.docstore is not None
    try:
        async with runtime.docstore.writing():
            await runtime.docstore.db[RUNS].insert_one({"_id": f"digest:{day}", "at": datetime.now(UTC)})
    except DuplicateKeyError:
        return None
    counts = await runtime.parts.get(Mails).send_digests(up_to=day)
    async with runtime.docstore.writing():
        await runtime.docstore.db[RUNS].update_one(
            {"_id": f"digest:{day}"}, {"$set": {"done": datetime.now(UTC), **counts}}
        )
    log.info("daily digests sent", extra=counts)
    return counts


def housekeeping(runtime: Runtime) -> Periodic:
    """The timed work: scheduled news published, queued e-mails handed over, the daily digests at their hour, the
    feeds past retention."""
    settings = runtime.settings
    assert isinstance(settings, TimelineSettings)
    mails, notifications, news = runtime.parts.get(Mails), runtime.parts.get(Notifications), runtime.parts.get(News)

    async def digests() -> int:
        now = datetime.now(PARIS)
        if not settings.daily_digests or now.hour < settings.digest_hour:
            return 0
        counts = await digest_once(runtime, f"{now:%Y-%m-%d}")
        return (counts or {}).get("sent", 0)

    async def retention() -> int:
        feeds, notes = await notifications.forget_old()
        return feeds + notes

    jobs = Periodic(log)
    jobs.start(
        [
            (15, news.publish_due, "scheduled news published"),
            (settings.mail_check_seconds, mails.send_waiting, "e-mails handed to the relay"),
            (60, digests, "daily digests sent"),
            (6 * 3600, retention, "feeds and notifications past retention forgotten"),
        ]
    )
    return jobs


async def on_start(runtime: Runtime) -> None:
    runtime.parts.add(housekeeping(runtime))


async def on_stop(runtime: Runtime) -> None:
    await runtime.parts.stop((Periodic, Periodic.stop), (Mails, Mails.close))


def build(settings: TimelineSettings) -> ServiceSpec:
    """What the timeline service is made of."""
    return ServiceSpec.of(__name__, settings, indexes={**INDEXES, RUNS: []}, routers=[feed.router, news.router])


app, _serve = entry_points(build, TimelineSettings)


async def send_digests(settings: TimelineSettings) -> dict[str, int]:
    """`maille-timeline send-digests`: every waiting digest sent now (an operator's catch-up, the benchmark)."""
    docstore = Docstore.for_command(settings, "digests")
    await docstore.detect()
    mails = Mails(TimelineRepository(docstore), settings)
    try:
        return await mails.send_digests()
    finally:
        await mails.close()
        await docstore.close()


def main() -> None:
    """Serve the timeline until SIGTERM; `maille-timeline send-digests` sends every waiting digest once."""
    if sys.argv[1:] == ["send-digests"]:
        started = datetime.now(UTC)
        counts = asyncio.run(send_digests(load_settings(TimelineSettings)))
        took = (datetime.now(UTC) - started) / timedelta(seconds=1)
        print(f"digests: {', '.join(f'{k} {v}' for k, v in counts.items())} in {took:.1f}s")
        sys.exit(1 if counts.get("failed") else 0)
    _serve()
