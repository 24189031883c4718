"""The identity service's events: the stream it owns (its subjects are `identity.>`), and how a batch
of directory changes is published through the kit's outbox."""

from __future__ import annotations

from google.protobuf.message import Message
from maille.events.v1.envelope_pb2 import Envelope

from maille_kit.bus import Stream
from maille_kit.events import make_envelope
from maille_kit.outbox import Outbox

STREAM = Stream(name="IDENTITY", subjects=("identity.>",), description="facts published by the identity service")
STREAMS = (STREAM,)


class EventBatch:
    """Directory events gathered while a change is computed, written to the outbox together."""

    def __init__(self, outbox: Outbox, *, tenant: str) -> None:
        self.outbox = outbox
        self.tenant = tenant
        self._envelopes: list[Envelope] = []

    def add(self, type: str, payload: Message) -> None:
        """Gather one event (`identity.<entity>.<fact>.v1`)."""
        self._envelopes.append(make_envelope(type=type, tenant=self.tenant, source="identity", payload=payload))

    def take(self) -> list[Envelope]:
        """What was gathered so far, handed over for writing."""
        envelopes, self._envelopes = self._envelopes, []
        return envelopes

    async def write(self, envelopes: list[Envelope]) -> None:
        """Write events to the outbox; returns once they are stored."""
        for start in range(0, len(envelopes), 1000):
            await self.outbox.add(envelopes[start : start + 1000])

    async def deliver(self, envelopes: list[Envelope]) -> None:
        """A bulk job's events (an import): straight to JetStream where it takes them, the outbox for the
        rest; returns once each is held by one or the other (`Outbox.deliver`)."""
        for start in range(0, len(envelopes), 1000):
            await self.outbox.deliver(envelopes[start : start + 1000])
