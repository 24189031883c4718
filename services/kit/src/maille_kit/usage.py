"""The uses a service tells the observatory (`proto/maille/observatory/v1/usage.proto`): pseudonymous, batched, and
never in the way of the request that made them.

`Uses.record(...)` only appends to a list; a task publishes what gathered every second (or at 500) as one
`observatory.use.recorded.v1` event to JetStream (its id the de-duplication key: a batch published twice is kept
once). The person is never named: each use carries the keyed hash of their ENT id under the key of its month
(`month_of`: the month of the Thursday of the use's ISO week, in Paris, so that a week never spans two keys), and
the month's key is itself derived from the platform's usage key, which only the publishing services hold — the
observatory cannot turn a pseudonym back into a person, nor link one month's to the next.

Uses are measurements, not changes: they are published after the act, outside its unit of work. What a crash
loses is the last second's; what NATS refuses is tried again, and beyond `max_pending` the oldest are dropped,
counted in `maille.usage.dropped`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from maille.observatory.v1 import usage_pb2 as pb
from maille_contracts import USE_RECORDED
from maille_kit.auth import Principal
from maille_kit.bus import Bus
from maille_kit.events import make_envelope, new_event_id
from maille_kit.telemetry import meter

log = logging.getLogger("maille.usage")
PARIS = ZoneInfo("Europe/Paris")
Kind = pb.Kind
PUBLISHED = meter().create_counter("maille.usage.published", description="uses told to the observatory")
DROPPED = meter().create_counter("maille.usage.dropped", description="uses dropped: NATS refused them too long")


def month_of(day: date) -> str:
    """The pseudonyms' month of a day: the calendar month of its ISO week's Thursday ("2026-12"), so that each
    ISO week lies within one month and a week's distinct persons are a merge of its days'."""
    thursday = day + timedelta(days=3 - day.weekday())
    return f"{thursday.year:04d}-{thursday.month:02d}"


def local_day(at_ms: int) -> date:
    return datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(PARIS).date()


@lru_cache(maxsize=64)
def _month_key(key: bytes, month: str) -> bytes:
    return hmac.new(key, f"maille-usage-month:{month}".encode(), hashlib.sha256).digest()


def pseudonym(key: bytes, person_id: str, at_ms: int) -> str:
    """The person's pseudonym for the month of `at_ms` (16 bytes, hex)."""
    month_key = _month_key(key, month_of(local_day(at_ms)))
    return hmac.new(month_key, person_id.encode(), hashlib.sha256).hexdigest()[:32]


def first(values: object) -> str:
    """The first of a claim's values in their sort order: a token's lists come in no set order, and a person of two
    schools must count in the same one whichever service tells their use."""
    return min((str(v) for v in values), default="") if isinstance(values, list) else ""


def who(principal: Principal) -> tuple[str, str, str]:
    """(person id, school, profile) of a signed-in person, as their token says (`first` of each)."""
    return principal.person_id or "", first(principal.claims.get("uai")), first(principal.claims.get("profiles"))


class Uses:
    """One service's uses on their way to the observatory."""

    def __init__(
        self,
        bus: Bus,
        *,
        key: str,
        source: str,
        tenant: str = "maille",
        every: float = 1.0,
        batch: int = 500,
        max_pending: int = 100_000,
    ) -> None:
        self.bus = bus
        self.key = key.encode()
        self.source = source
        self.tenant = tenant
        self.every = every
        self.batch = batch
        self.max_pending = max_pending
        self.pending: list[pb.Use] = []
        self.unsent: list[tuple[str, bytes, dict[str, str]]] = []  # batches NATS did not acknowledge, sent again as is
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.key)

    def record(
        self,
        kind: int,
        person_id: str,
        *,
        school: str = "",
        profile: str = "",
        service: str = "",
        idp: str = "",
        detail: str = "",
        vendor: str = "",
        resource: str = "",
        classes: Iterable[str] = (),
        seconds: int = 0,
        at_ms: int | None = None,
    ) -> None:
        """One use, told within the next second. Nothing when the platform has no usage key or no person."""
        if not self.key or not person_id:
            return
        at = at_ms if at_ms is not None else time.time_ns() // 1_000_000
        self.pending.append(
            pb.Use(
                id=new_event_id(),
                at_ms=at,
                kind=kind,  # type: ignore[arg-type]
                school=school[:16],
                profile=profile[:40],
                service=service[:40],
                idp=idp[:40],
                detail=detail[:40],
                pseudonym=pseudonym(self.key, person_id, at),
                vendor=vendor[:80],
                resource=resource[:200],
                classes=list(classes)[:20],
                seconds=max(0, seconds),
            )
        )
        if len(self.pending) > self.max_pending:
            over = len(self.pending) - self.max_pending
            del self.pending[:over]
            DROPPED.add(over, {"source": self.source})

    def of(self, kind: int, principal: Principal, *, service: str, **more: object) -> None:
        """A use by a signed-in person, their school and profile as their token says."""
        person_id, school, profile = who(principal)
        self.record(kind, person_id, school=school, profile=profile, service=service, **more)  # type: ignore[arg-type]

    def start(self) -> None:
        if self.key and self._task is None:
            self._task = asyncio.create_task(self._forever(), name=f"{self.source}-uses")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), 5)
        except (TimeoutError, RuntimeError, OSError) as exc:
            log.warning("uses not told at stop: %s", type(exc).__name__)

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.flush()
            except (RuntimeError, OSError, TimeoutError) as exc:  # NATS away: kept for the next round
                log.warning("uses not told this round: %s", type(exc).__name__)

    async def flush(self) -> int:
        """Publish what gathered. A batch NATS did not acknowledge is sent again as it was, under the same id: if it
        had in fact been kept, JetStream drops the copy."""
        if not (self.pending or self.unsent) or not self.bus.connected:
            return 0
        taken, self.pending = self.pending, []
        messages, self.unsent = self.unsent, []
        for start in range(0, len(taken), self.batch):
            envelope = make_envelope(
                type=USE_RECORDED,
                tenant=self.tenant,
                source=self.source,
                payload=pb.UseRecorded(uses=taken[start : start + self.batch]),
            )
            messages.append((USE_RECORDED, envelope.SerializeToString(), {"Nats-Msg-Id": envelope.id}))
        try:
            acked = await self.bus.publish_batch(messages, timeout=5)
        except BaseException:
            self.unsent[:0] = messages
            raise
        failed = [m for m, ok in zip(messages, acked, strict=True) if not ok]
        self.unsent[:0] = failed[-max(1, self.max_pending // self.batch) :]
        if len(failed) > len(self.unsent):
            DROPPED.add((len(failed) - len(self.unsent)) * self.batch, {"source": self.source})
        told = len(messages) - len(failed)
        if told:
            PUBLISHED.add(told, {"source": self.source})
        return told
