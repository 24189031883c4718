"""Maille's contracts by name: every event type with its message, every request/reply subject with its request
and reply. Services import these names, never the strings; tests/test_contracts.py checks this module against
proto/ (each type named `<service>.<entity>.<fact>.v1` carries the message `<Entity><Fact>` of its service's package,
and every message the protos say is published is here).

An `EventType` is the type string itself (what the envelope and the subject carry), with its message beside it:
`event.unpack(PERSON_UPDATED.message)`.
"""

from __future__ import annotations

from google.protobuf.message import Message

from maille.catalog.v1 import mediacentre_pb2, resources_pb2, subscriptions_pb2
from maille.identity.v1 import directory_pb2, operations_pb2, rules_pb2
from maille.library.v1 import loans_pb2, opac_pb2
from maille.messaging.v1 import messages_pb2
from maille.observatory.v1 import usage_pb2
from maille.support.v1 import requests_pb2


class EventType(str):
    """An event type (`<service>.<entity>.<fact in the past tense>.v<N>`, also its subject) and its message."""

    message: type[Message]

    def __new__(cls, name: str, message: type[Message]) -> EventType:
        made = super().__new__(cls, name)
        made.message = message
        return made

    @property
    def service(self) -> str:
        return self.split(".", 1)[0]


class Rpc(str):
    """A request/reply subject (`rpc.<service>.<area>.<verb>.v<N>`) with its request and reply messages."""

    request: type[Message]
    reply: type[Message]

    def __new__(cls, subject: str, request: type[Message], reply: type[Message]) -> Rpc:
        made = super().__new__(cls, subject)
        made.request, made.reply = request, reply
        return made


# identity: the directory, the communication rules
STRUCTURE_CREATED = EventType("identity.structure.created.v1", directory_pb2.StructureCreated)
STRUCTURE_UPDATED = EventType("identity.structure.updated.v1", directory_pb2.StructureUpdated)
STRUCTURE_DELETED = EventType("identity.structure.deleted.v1", directory_pb2.StructureDeleted)
GROUP_CREATED = EventType("identity.group.created.v1", directory_pb2.GroupCreated)
GROUP_UPDATED = EventType("identity.group.updated.v1", directory_pb2.GroupUpdated)
GROUP_DELETED = EventType("identity.group.deleted.v1", directory_pb2.GroupDeleted)
PERSON_CREATED = EventType("identity.person.created.v1", directory_pb2.PersonCreated)
PERSON_UPDATED = EventType("identity.person.updated.v1", directory_pb2.PersonUpdated)
PERSON_DELETED = EventType("identity.person.deleted.v1", directory_pb2.PersonDeleted)
RULES_CHANGED = EventType("identity.rules.changed.v1", rules_pb2.RulesChanged)
IMPORT_REPORTED = EventType("identity.import.reported.v1", operations_pb2.ImportReported)
EXPORT_FAILED = EventType("identity.export.failed.v1", operations_pb2.ExportFailed)

# identity: request/reply
CAN_WRITE = Rpc("rpc.identity.rules.can_write.v1", rules_pb2.CanWriteRequest, rules_pb2.CanWriteResponse)
VISIBLES = Rpc("rpc.identity.rules.visibles.v1", rules_pb2.VisiblesRequest, rules_pb2.VisiblesResponse)
RESOLVE = Rpc("rpc.identity.rules.resolve.v1", rules_pb2.ResolveRequest, rules_pb2.ResolveResponse)

# catalog: resources, subscriptions, licences, the médiacentre
RESOURCE_PUBLISHED = EventType("catalog.resource.published.v1", resources_pb2.ResourcePublished)
RESOURCE_UPDATED = EventType("catalog.resource.updated.v1", resources_pb2.ResourceUpdated)
RESOURCE_WITHDRAWN = EventType("catalog.resource.withdrawn.v1", resources_pb2.ResourceWithdrawn)
SUBSCRIPTION_CREATED = EventType("catalog.subscription.created.v1", subscriptions_pb2.SubscriptionCreated)
SUBSCRIPTION_UPDATED = EventType("catalog.subscription.updated.v1", subscriptions_pb2.SubscriptionUpdated)
SUBSCRIPTION_DELETED = EventType("catalog.subscription.deleted.v1", subscriptions_pb2.SubscriptionDeleted)
SUBSCRIPTION_EXPIRED = EventType("catalog.subscription.expired.v1", subscriptions_pb2.SubscriptionExpired)
ASSIGNMENT_CHANGED = EventType("catalog.assignment.changed.v1", subscriptions_pb2.AssignmentChanged)
FAVOURITE_CHANGED = EventType("catalog.favourite.changed.v1", mediacentre_pb2.FavouriteChanged)

# messaging
MESSAGE_DELIVERED = EventType("messaging.message.delivered.v1", messages_pb2.MessageDelivered)
MESSAGE_RECALLED = EventType("messaging.message.recalled.v1", messages_pb2.MessageRecalled)
MAILBOX_PURGED = EventType("messaging.mailbox.purged.v1", messages_pb2.MailboxPurged)

# library
OPAC_CHANGED = EventType("library.opac.changed.v1", opac_pb2.OpacChanged)
LOAN_DUE = EventType("library.loan.due.v1", loans_pb2.LoanDue)
LOAN_LATE = EventType("library.loan.late.v1", loans_pb2.LoanLate)
RESERVATION_READY = EventType("library.reservation.ready.v1", loans_pb2.ReservationReady)

# support: help requests and where they go
REQUEST_OPENED = EventType("support.request.opened.v1", requests_pb2.RequestOpened)
REQUEST_ANSWERED = EventType("support.request.answered.v1", requests_pb2.RequestAnswered)
REQUEST_REPLIED = EventType("support.request.replied.v1", requests_pb2.RequestReplied)
REQUEST_STATUS_CHANGED = EventType("support.request.status_changed.v1", requests_pb2.RequestStatusChanged)
REQUEST_ESCALATED = EventType("support.request.escalated.v1", requests_pb2.RequestEscalated)
REQUEST_OVERDUE = EventType("support.request.overdue.v1", requests_pb2.RequestOverdue)

# observatory: the uses every service tells (pseudonymous, counted and forgotten within 30 days)
USE_RECORDED = EventType("observatory.use.recorded.v1", usage_pb2.UseRecorded)

EVENT_TYPES: tuple[EventType, ...] = tuple(v for v in list(globals().values()) if isinstance(v, EventType))
RPCS: tuple[Rpc, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Rpc))


def all_of(service: str, entity: str | None = None) -> str:
    """The subject wildcard of a service's events (of one entity): `identity.person.>`."""
    return f"{service}.{entity}.>" if entity else f"{service}.>"


# timeline: what a person's open pages hear at once (core NATS, not kept: the feed is the record). One subject per
# person; a person id that is not a plain token (letters, digits, - and _) is carried hex-encoded after a `~`, so
# that no id can name a wildcard or another person's subject.
LIVE_PREFIX = "timeline.live."


def live_subject(person_id: str) -> str:
    """The subject a person's live signals (a new notification, the unread count) are published on."""
    plain = person_id.replace("-", "").replace("_", "").isalnum() and person_id.isascii()
    return f"{LIVE_PREFIX}{person_id if plain else '~' + person_id.encode().hex()}"
