"""The messaging service's events: the stream it owns (its subjects are `messaging.>`), and what it does
with identity's: a person erased from the directory has their mailbox erased too."""

from __future__ import annotations

import logging

from maille.identity.v1 import directory_pb2
from maille.messaging.v1 import messages_pb2 as pb

from maille_kit.bus import Stream
from maille_kit.events import Event
from maille_kit.outbox import Outbox
from maille_messaging.mailbox import Mailbox

log = logging.getLogger("maille.messaging")

STREAM = Stream(name="MESSAGING", subjects=("messaging.>",), description="facts published by the messaging service")
STREAMS = (STREAM,)
IDENTITY_SUBJECTS = ("identity.person.deleted.v1",)


class ErasedPersons:
    """Handles identity's `person.deleted` events: an erased person's mailbox is purged (RGPD)."""

    def __init__(self, mailbox: Mailbox, outbox: Outbox) -> None:
        self.mailbox = mailbox
        self.outbox = outbox

    async def handle(self, event: Event) -> None:
        deleted = event.unpack(directory_pb2.PersonDeleted)
        if not deleted.erased:
            return  # left the directory, not erased: their mail is kept until the retention rules say otherwise
        count = await self.mailbox.purge(deleted.id)
        await self.outbox.publish(type="messaging.mailbox.purged.v1", tenant=event.tenant,
                                  payload=pb.MailboxPurged(person_id=deleted.id, messages=count))
        log.info("mailbox purged", extra={"messages": count})
