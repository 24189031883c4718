"""The messaging service's app factory and entry point."""

from __future__ import annotations

import logging
from typing import Any

from maille_kit.app import Runtime, ServiceSpec, entry_points
from maille_kit.consumer import EventConsumer
from maille_kit.periodic import Periodic
from maille_messaging.api import mailbox as mailbox_api
from maille_messaging.api import people
from maille_messaging.api import sending as sending_api
from maille_messaging.attachments import ClamdScanner, DocstoreAttachments
from maille_messaging.events import IDENTITY_SUBJECTS, ErasedPersons
from maille_messaging.mailbox import Mailbox
from maille_messaging.repository import COLLECTIONS, MIGRATIONS, MailRepository
from maille_messaging.rules import Rules
from maille_messaging.sending import Sending
from maille_messaging.settings import MessagingSettings

log = logging.getLogger("maille.messaging")

# Every read and write goes by `_id` (repository.py): no secondary index is needed.
INDEXES: dict[str, list[Any]] = {name: [] for name in COLLECTIONS}


def parts(runtime: Runtime) -> tuple[Mailbox, Sending]:
    """The service's mailbox and sending."""
    settings = runtime.settings
    assert isinstance(settings, MessagingSettings)
    assert runtime.docstore is not None and runtime.works is not None
    repository = MailRepository(runtime.docstore, segment_size=settings.index_segment_size)
    store = DocstoreAttachments(repository)
    mailbox = Mailbox(repository, store, summaries=settings.summary_cache_size)
    scanner = (
        ClamdScanner(settings.clamd_address, timeout=settings.scan_timeout_seconds) if settings.clamd_address else None
    )
    rules = Rules(runtime.bus, timeout=settings.rules_timeout_seconds)
    return mailbox, Sending(repository, mailbox, rules, runtime.works, store, settings, scanner=scanner)


def consumers(runtime: Runtime) -> list[EventConsumer]:
    """Identity's erasures (its stream may come up after messaging)."""
    assert runtime.docstore is not None and runtime.works is not None
    return [
        runtime.consumer(
            "messaging-erasures",
            stream="IDENTITY",
            subjects=IDENTITY_SUBJECTS,
            handler=ErasedPersons(runtime.parts.get(Mailbox), runtime.works).handle,
        )
    ]


async def on_start(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, MessagingSettings)
    mailbox = runtime.parts.get(Mailbox)
    await mailbox.repo.epoch()  # noted at the first start: readers look for index segments from then on
    housekeeping = Periodic(log)
    housekeeping.start(
        [
            (settings.schedule_check_seconds, runtime.parts.get(Sending).send_due, "scheduled messages sent"),
            (
                settings.housekeeping_seconds,
                lambda: mailbox.sweep_trash(retention_days=settings.trash_retention_days),
                "trash emptied of messages past retention",
            ),
        ]
    )
    runtime.parts.add(housekeeping)


async def on_stop(runtime: Runtime) -> None:
    await runtime.parts.stop((Periodic, Periodic.stop))


def build(settings: MessagingSettings) -> ServiceSpec:
    """What the messaging service is made of."""
    return ServiceSpec.of(
        __name__,
        settings,
        indexes=INDEXES,
        routers=[mailbox_api.router, sending_api.router, people.router],
        migrations=MIGRATIONS,
    )


app, main = entry_points(build, MessagingSettings)
