"""The dead letters, for an operator: list, read, replay and drop what a service's consumers set aside.

A consumer sets an event aside in its service's dead-letter stream (`<SERVICE>_DEADLETTER`, subjects
`deadletter.<service>.<original subject>`) when it cannot be read or its handler failed its last try; the
letter keeps the event's bytes, the reason, the original subject and the consumer (`consumer.py`).

A **replay** publishes the event again on its original subject, addressed to the one consumer that failed
(header `Maille-Replay-For`): the other consumers of that subject acknowledge it and skip it, that consumer
handles it again — even though it had claimed it before — unless it has been marked done since. Once
JetStream holds the replayed event, the letter is deleted. Handlers are idempotent: replaying an event already
applied changes nothing. A **drop** deletes letters for good (a malformed event that can never be applied).

`maille-ops deadletters …` calls these with the NATS user `ops` (busauth.py: the dead-letter streams, and
publishing on the subjects consumers read, nothing else).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from maille_kit.bus import dead_letter_stream
from maille_kit.consumer import CONSUMER_HEADER, REASON_HEADER, REPLAY_HEADER, SUBJECT_HEADER
from maille_kit.events import MalformedEvent, decode

TIMEOUT = 5.0  # seconds for each JetStream call


class NoSuchLetter(LookupError):
    """No dead letter of that number in that service's stream."""


@dataclass(frozen=True)
class Letter:
    """One event set aside: where it is, why, and what it was."""

    service: str
    seq: int
    at: datetime | None
    consumer: str
    subject: str
    reason: str
    data: bytes

    def describe(self) -> dict[str, str]:
        """What the event says of itself (its id, type, tenant), or why it cannot be read."""
        try:
            event = decode(self.data)
        except MalformedEvent as exc:
            return {"unreadable": str(exc)}
        return {"id": event.id, "type": event.type, "tenant": event.tenant, "source": event.source}


def stream_of(service: str) -> str:
    return dead_letter_stream(service).name


async def letters(js: JetStreamContext, service: str, *, limit: int = 1000) -> list[Letter]:
    """The letters kept for `service`, oldest first (at most `limit`); none when its stream is not made yet (the
    service has never started)."""
    stream = stream_of(service)
    try:
        state = (await asyncio.wait_for(js.stream_info(stream), TIMEOUT)).state
    except NotFoundError:
        return []
    found: list[Letter] = []
    seq = state.first_seq
    while seq and seq <= state.last_seq and len(found) < limit:
        try:
            found.append(await letter(js, service, seq))
        except NoSuchLetter:  # deleted already (a hole in the stream)
            pass
        seq += 1
    return found


async def letter(js: JetStreamContext, service: str, seq: int) -> Letter:
    """Letter number `seq` of `service`."""
    try:
        raw = await asyncio.wait_for(js.get_msg(stream_of(service), seq), TIMEOUT)
    except NotFoundError:
        raise NoSuchLetter(f"no dead letter {seq} for {service}") from None
    headers = raw.headers or {}
    return Letter(
        service=service,
        seq=seq,
        at=getattr(raw, "time", None),
        consumer=headers.get(CONSUMER_HEADER, ""),
        subject=headers.get(SUBJECT_HEADER, ""),
        reason=headers.get(REASON_HEADER, ""),
        data=raw.data or b"",
    )


async def replay(js: JetStreamContext, found: Letter) -> None:
    """Publish the event again for its consumer, then delete the letter (JetStream holds the event first)."""
    if not found.subject or not found.consumer:
        raise ValueError(f"dead letter {found.seq} of {found.service} names no subject or consumer: drop it")
    headers = {REPLAY_HEADER: found.consumer, "Nats-Msg-Id": f"replay:{found.service}:{found.seq}"}
    await js.publish(found.subject, found.data, headers=headers, timeout=TIMEOUT)
    await drop(js, found.service, found.seq)


async def drop(js: JetStreamContext, service: str, seq: int) -> None:
    """Delete letter `seq` of `service` for good."""
    try:
        await asyncio.wait_for(js.delete_msg(stream_of(service), seq), TIMEOUT)
    except NotFoundError:
        raise NoSuchLetter(f"no dead letter {seq} for {service}") from None
