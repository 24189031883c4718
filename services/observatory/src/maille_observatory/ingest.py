"""The uses, taken from the stream and folded into the schools' rollups (`rollups.py`).

One loop takes batches of `observatory.use.recorded.v1` events from a durable pull consumer (acknowledge-all), folds
each use into its school's day, week and month, and every `flush_seconds` writes the rollups that changed, then
acknowledges the last event folded. A crash loses nothing: what was not acknowledged comes again, and each rollup
knows the sequence of the last event in it (a use already in it is not counted twice). Only one replica ingests (the
chart runs one, replaced by `Recreate`): two would each hold half of a day.

A use that cannot be counted — no pseudonym, an unknown kind, dated in the future or older than the raw record's
30 days — is left out and counted in `maille.observatory.uses.rejected` by reason; an event that is not an event
goes to the dead letters with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from maille.observatory.v1 import usage_pb2 as pb
from maille_contracts import USE_RECORDED
from maille_kit.bus import Bus
from maille_kit.events import MalformedEvent, decode
from maille_kit.telemetry import meter
from maille_observatory.events import RAW_DAYS, STREAM
from maille_observatory.repository import DAYS, MONTHS, WEEKS, ObservatoryRepository
from maille_observatory.rollups import KINDS, Rollup, day_hour, fold, is_school_day, periods

log = logging.getLogger("maille.observatory.ingest")
DURABLE = "observatory-ingest"
FOLDED = meter().create_counter("maille.observatory.uses.folded", description="uses counted into the rollups")
REJECTED = meter().create_counter("maille.observatory.uses.rejected", description="uses left out, by reason")
Key = tuple[str, str]  # (collection, _id)


class Ingest:
    """The one loop that counts the uses."""

    def __init__(
        self,
        repository: ObservatoryRepository,
        bus: Bus,
        *,
        flush_seconds: float = 10,
        fetch_batch: int = 256,
        on_flush: Callable[[set[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.repository = repository
        self.bus = bus
        self.flush_seconds = flush_seconds
        self.fetch_batch = fetch_batch
        self.on_flush = on_flush
        self.held: dict[Key, Rollup] = {}
        self.hours: dict[int, tuple[date, int]] = {}
        self.folded = 0  # uses counted since start
        self.rejected: Counter[str] = Counter()
        self.last_seq = 0  # the stream sequence of the last event folded
        self.flushed_seq = 0  # … written and acknowledged
        self.flushed_at = 0.0
        self.started_at = time.time()
        self._last_msg: Any = None
        self._task: asyncio.Task[None] | None = None
        self._subscription: Any = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="observatory-ingest")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await asyncio.wait_for(self.flush(), 30)
        except Exception as exc:  # the next start folds again what was not written
            log.warning("rollups not written at stop: %s", type(exc).__name__)
        if self._subscription is not None:
            await asyncio.gather(self._subscription.unsubscribe(), return_exceptions=True)

    async def _subscribe(self) -> Any:
        return await self.bus.js.pull_subscribe(
            USE_RECORDED,
            durable=DURABLE,
            stream=STREAM.name,
            config=ConsumerConfig(
                durable_name=DURABLE,
                ack_policy=AckPolicy.ALL,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=300,
                max_ack_pending=1_000_000,
                max_deliver=-1,
            ),
        )

    async def _forever(self) -> None:
        while True:
            try:
                if self._subscription is None:
                    self._subscription = await self._subscribe()
                try:
                    messages = await self._subscription.fetch(self.fetch_batch, timeout=1)
                except NatsTimeout:
                    messages = []
                if messages:
                    await self.take(messages)
                if time.monotonic() - self.flushed_at >= self.flush_seconds:
                    await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or the docstore away: try again, what was not acknowledged comes again
                log.warning("ingest paused: %s: %s", type(exc).__name__, exc)
                self._subscription = None
                await asyncio.sleep(1)

    async def take(self, messages: list[Any]) -> None:
        """Fold a batch of events, in the stream's order."""
        batches: list[tuple[int, list[pb.Use]]] = []
        for msg in messages:
            seq = msg.metadata.sequence.stream
            if seq <= self.last_seq:  # delivered again (not yet acknowledged): already folded in this run
                continue
            self.last_seq, self._last_msg = seq, msg
            try:
                event = decode(msg.data)
                if event.type != USE_RECORDED:
                    raise MalformedEvent(f"{event.type} is not {USE_RECORDED}")
                batches.append((seq, list(event.unpack(pb.UseRecorded).uses)))
            except MalformedEvent as exc:
                self.rejected["malformed"] += 1
                REJECTED.add(1, {"reason": "malformed"})
                log.warning("event %d left out: %s", seq, exc)
        await self.fold(batches)

    async def fold(self, batches: list[tuple[int, list[pb.Use]]]) -> None:
        now_ms = int(time.time() * 1000)
        oldest_ms, newest_ms = now_ms - RAW_DAYS * 86_400_000, now_ms + 3_600_000
        placed: list[tuple[int, pb.Use, str, str, str, int, date]] = []
        wanted: set[Key] = set()
        for seq, uses in batches:
            for use in uses:
                reason = None
                if not use.pseudonym:
                    reason = "no-pseudonym"
                elif use.kind not in KINDS:
                    reason = "unknown-kind"
                elif not oldest_ms <= use.at_ms <= newest_ms:
                    reason = "too-late" if use.at_ms < oldest_ms else "in-the-future"
                if reason:
                    self.rejected[reason] += 1
                    REJECTED.add(1, {"reason": reason})
                    continue
                day, hour = day_hour(use.at_ms, self.hours)
                day_id, week_id, month_id = periods(day)
                school = use.school or "-"
                keys = ((DAYS, f"{day_id}|{school}"), (WEEKS, f"{week_id}|{school}"), (MONTHS, f"{month_id}|{school}"))
                wanted.update(k for k in keys if k not in self.held)
                placed.append((seq, use, keys[0][1], keys[1][1], keys[2][1], hour, day))
        if wanted:
            await self._load(wanted)
        held = self.held
        folded = 0
        for seq, use, day_id, week_id, month_id, hour, day in placed:
            if fold(
                use,
                seq,
                held[(DAYS, day_id)],
                held[(WEEKS, week_id)],
                held[(MONTHS, month_id)],
                hour,
                is_school_day(day),
            ):
                folded += 1
        self.folded += folded
        if folded:
            FOLDED.add(folded)

    async def _load(self, keys: set[Key]) -> None:
        by_collection: dict[str, list[str]] = {}
        for collection, doc_id in keys:
            by_collection.setdefault(collection, []).append(doc_id)
        for collection, ids in by_collection.items():
            found = await self.repository.rollups(collection, ids)
            for doc_id in ids:
                doc = found.get(doc_id)
                self.held[(collection, doc_id)] = Rollup.of(doc) if doc else Rollup(doc_id)

    async def flush(self) -> None:
        """Write the rollups that changed, then acknowledge every event folded; let go of those of past periods."""
        self.flushed_at = time.monotonic()
        dirty = [(key, rollup) for key, rollup in self.held.items() if rollup.dirty]
        by_collection: dict[str, list[dict[str, Any]]] = {}
        for (collection, _), rollup in dirty:
            by_collection.setdefault(collection, []).append(rollup.doc())
        for collection, docs in by_collection.items():
            await self.repository.write(collection, docs)
        months: set[str] = set()
        for (collection, _), rollup in dirty:
            rollup.dirty, rollup.stored_seq = False, rollup.seq
            if collection == MONTHS:
                months.add(rollup.id.split("|", 1)[0])
        if self._last_msg is not None:
            await self._last_msg.ack()
            self._last_msg = None
        self.flushed_seq = self.last_seq
        self._let_go()
        if months and self.on_flush is not None:
            await self.on_flush(months)

    def _let_go(self) -> None:
        """Keep in memory only today's and yesterday's rollups, this week's and this month's (late uses load the
        others again from the store)."""
        today = day_hour(int(time.time() * 1000), self.hours)[0]
        current: set[str] = set()
        for day in (today, today - timedelta(days=1)):
            current.update(periods(day))
        for key in [k for k, r in self.held.items() if not r.dirty and k[1].split("|", 1)[0] not in current]:
            del self.held[key]

    def month_rollups(self, month: str) -> list[Rollup]:
        """The schools' rollups of a month held in memory (the current month's: being filled)."""
        return [r for (collection, _), r in self.held.items() if collection == MONTHS and r.id.startswith(f"{month}|")]

    def figures(self) -> dict[str, Any]:
        """What an operator watches: uses counted and left out, how far behind the stream the rollups are."""
        return {
            "folded": self.folded,
            "rejected": dict(self.rejected),
            "last_seq": self.last_seq,
            "flushed_seq": self.flushed_seq,
            "held": len(self.held),
            "uptime_seconds": round(time.time() - self.started_at),
        }
