"""Linked accounts follow the directory: when a person's profiles or schools change, the attributes on
their Keycloak account (hence their next tokens, within the access-token lifetime) change too; when a
person leaves the directory (deleted after the grace period, or erased), their account is deleted —
their sessions end with it. Consumed from identity's own person events, once per event across replicas."""

from __future__ import annotations

import logging
from typing import Any

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_DELETED, PERSON_UPDATED
from maille_identity.events import STREAM
from maille_identity.federation.linking import Linking
from maille_identity.federation.repository import picture
from maille_kit.bus import Bus
from maille_kit.consumer import EventConsumer
from maille_kit.directory import keeping
from maille_kit.docstore import Docstore
from maille_kit.events import Event

log = logging.getLogger("maille.identity.accounts")
SUBJECTS = (PERSON_UPDATED, PERSON_DELETED)
KEPT = ("profiles", "group_ids", "children", "detached")  # what _picture reads of a person


class AccountSync:
    """Keeps linked Keycloak accounts in step with the directory."""

    def __init__(self, bus: Bus, docstore: Docstore, linking: Linking) -> None:
        self.linking = linking
        self.consumer = EventConsumer(
            bus,
            docstore,
            service="identity",
            durable="identity-accounts",
            stream=STREAM.name,
            subjects=SUBJECTS,
            handler=self.handle,
            batch_handler=self.handle_many,
            wants=keeping(KEPT),
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def handle(self, event: Event) -> None:
        if event.type == PERSON_DELETED:
            await self.linking.forget(event.unpack(pb.PersonDeleted).id)
        else:
            await self.linking.refresh_accounts(_picture(event.unpack(pb.PersonUpdated).person))

    async def handle_many(self, events: list[Event]) -> None:
        """A batch: the few persons with accounts found in one look-up (an import changes thousands of persons, most
        of whom never signed in), then each event of theirs handled in order."""
        persons = [
            event.unpack(pb.PersonDeleted).id
            if event.type == PERSON_DELETED
            else event.unpack(pb.PersonUpdated).person.id
            for event in events
        ]
        with_accounts = await self.linking.federations.links_of_many(persons)
        for event, person in zip(events, persons):
            if person in with_accounts:
                await self.handle(event)


def _picture(person: pb.Person) -> dict[str, Any]:
    """The event's own picture of the person (`repository.picture`'s shape), not a read of the directory: one read
    less for each person with an account. Their classes are their groups as the event names them."""
    return picture(
        {
            "_id": person.id,
            "profiles": [{"structure": p.uai, "code": p.code} for p in person.profiles],
            "classes": list(person.group_ids),
            "children": list(person.children),
            "detached_at": person.detached,
        }
    )
