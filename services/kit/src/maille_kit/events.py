"""The event envelope: building, encoding and decoding the one shape every event travels in."""

from __future__ import annotations

import builtins
import hashlib
import os
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from maille.events.v1.envelope_pb2 import Envelope

MessageT = TypeVar("MessageT", bound=Message)

# Event types are their subjects: <service>.<entity>.<fact in the past tense>.v<N>
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[0-9]+$")


class MalformedEvent(ValueError):
    """A message that is not a well-formed Maille event; the reason names what is wrong."""


def new_event_id() -> str:
    """A UUIDv7: unique, and ordered by creation time so that the outbox relays in order."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | rand & ((1 << 62) - 1)
    h = f"{value:032x}"  # uuid.UUID's own formatting costs ten times more, on every event
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event: the envelope's fields, the payload still packed until `unpack` is asked."""

    id: str
    type: str
    time: datetime
    tenant: str
    source: str
    payload: any_pb2.Any

    def unpack(self, message_type: builtins.type[MessageT]) -> MessageT:
        """The payload as `message_type`; `MalformedEvent` if it holds another type."""
        message = message_type()
        if not self.payload.Unpack(message):
            raise MalformedEvent(
                f"payload of {self.type} is {self.payload.TypeName() or 'empty'}, expected "
                f"{message_type.DESCRIPTOR.full_name}"
            )
        return message


def event_id_for(key: str, part: int = 0, *, ms: int) -> str:
    """The id of the `part`-th event of the change `key` names (a message id, a job and batch), made at `ms`
    (milliseconds since the epoch, the change's own time), the same each time it is asked: a change applied again
    after a failure publishes the same events, which JetStream and the consumers then drop as copies."""
    digest = hashlib.sha256(f"{key}\x00{part}".encode()).digest()
    rand = int.from_bytes(digest[:10], "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def make_envelope(*, type: str, tenant: str, source: str, payload: Message, id: str | None = None) -> Envelope:
    """A new envelope for `payload`, stamped now."""
    if not EVENT_TYPE.match(type):
        raise ValueError(f"event type {type!r} is not of the form <service>.<entity>.<fact>.v<N>")
    envelope = Envelope(id=id or new_event_id(), type=type, tenant=tenant, source=source)
    envelope.time.FromNanoseconds(time.time_ns())
    envelope.payload.Pack(payload)
    return envelope


def decode(data: bytes) -> Event:
    """The event in `data`, or `MalformedEvent` saying what is wrong with it."""
    envelope = Envelope()
    try:
        envelope.ParseFromString(data)
    except DecodeError as exc:
        raise MalformedEvent(f"not a maille.events.v1.Envelope: {exc}") from exc
    missing = [name for name in ("id", "type", "tenant", "source") if not getattr(envelope, name)]
    if not envelope.HasField("time"):
        missing.append("time")
    if not envelope.HasField("payload"):
        missing.append("payload")
    if missing:
        raise MalformedEvent(f"envelope lacks {', '.join(missing)}")
    if not EVENT_TYPE.match(envelope.type):
        raise MalformedEvent(f"event type {envelope.type!r} is not of the form <service>.<entity>.<fact>.v<N>")
    return Event(
        id=envelope.id,
        type=envelope.type,
        time=envelope.time.ToDatetime(tzinfo=UTC),
        tenant=envelope.tenant,
        source=envelope.source,
        payload=envelope.payload,
    )
