"""The messaging service's events: the stream it owns (its subjects are `messaging.>`), and what it does
with identity's: a person erased from the directory has their mailbox erased too."""

from __future__ import annotations

import logging
from typing import Any

from maille.identity.v1 import directory_pb2
from maille.messaging.v1 import messages_pb2 as pb
from maille_contracts import MAILBOX_PURGED, PERSON_DELETED
from maille_kit.bus import Stream
from maille_kit.events import Event, event_id_for
from maille_kit.work import Works
from maille_messaging.mailbox import Mailbox

log = logging.getLogger("maille.messaging")

STREAM = Stream(name="MESSAGING", subjects=("messaging.>",), description="facts published by the messaging service")
STREAMS = (STREAM,)
IDENTITY_SUBJECTS = (PERSON_DELETED,)
PURGE_STEP = "messaging.purge"


class ErasedPersons:
    """Handles identity's `person.deleted` events: an erased person's mailbox is purged (RGPD)."""

    def __init__(self, mailbox: Mailbox, works: Works) -> None:
        self.mailbox = mailbox
        self.works = works
        works.register(PURGE_STEP, self._purge)

    async def handle(self, event: Event) -> None:
        deleted = event.unpack(directory_pb2.PersonDeleted)
        if not deleted.erased:
            return  # left the directory, not erased: their mail is kept until the retention rules say otherwise
        _, ids = await self.mailbox.all_ids(deleted.id)
        work = self.works.new().step(PURGE_STEP, {"person": deleted.id})
        # the erasure event handled again (a redelivery) makes the same purge event: dropped as a copy
        work.event(
            type=MAILBOX_PURGED,
            tenant=event.tenant,
            id=event_id_for(event.id, ms=int(event.time.timestamp() * 1000)),
            payload=pb.MailboxPurged(person_id=deleted.id, messages=len(ids)),
        )
        await self.works.commit(work)
        log.info("mailbox purged", extra={"messages": len(ids)})

    async def _purge(self, input: dict[str, Any]) -> None:
        await self.mailbox.purge(input["person"])
