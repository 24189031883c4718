"""The identity service's events: the stream it owns (its subjects are `identity.>`), and how a batch
of directory changes is committed with its writes through the kit's units of work."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from google.protobuf.message import Message

from maille.events.v1.envelope_pb2 import Envelope
from maille_kit.bus import Stream
from maille_kit.events import make_envelope
from maille_kit.work import Work, Works

STREAM = Stream(name="IDENTITY", subjects=("identity.>",), description="facts published by the identity service")
STREAMS = (STREAM,)


class EventBatch:
    """Directory events gathered while a change is computed, then committed with the change's writes as one
    unit of work (`Works`): the writes and their events together, or — a replica gone half-way — finished by
    another replica."""

    def __init__(self, works: Works, *, tenant: str) -> None:
        self.works = works
        self.tenant = tenant
        self._envelopes: list[Envelope] = []

    def add(self, type: str, payload: Message) -> None:
        """Gather one event (`identity.<entity>.<fact>.v1`)."""
        self._envelopes.append(make_envelope(type=type, tenant=self.tenant, source="identity", payload=payload))

    def take(self) -> list[Envelope]:
        """What was gathered so far."""
        envelopes, self._envelopes = self._envelopes, []
        return envelopes

    def work(self) -> Work:
        """A unit of work carrying the events gathered so far: add its writes, then `commit` it."""
        return self.works.new().add_events(self.take())

    async def commit(self, work: Work, *, after: Awaitable[Any] | None = None) -> None:
        await self.works.commit(work, after=after)
