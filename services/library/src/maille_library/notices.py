"""The daily look at the CDIs' loans: for each reader of each school with a PMB connection, the loans due back in two
days, the loans late, the reservations waiting at the desk — each fact told once (`library.loan.due.v1`,
`library.loan.late.v1`, `library.reservation.ready.v1`), for the timeline to notify the reader (and a pupil's parents'
digest). PMB has no call for every reader's loans at once: each reader is read through their own server-side
session (as their account page is), a few at a time per school, schools one after the other.

A fact told is remembered (`told`, _id = what it is: kind, school, reader, copy or reservation, date) with its event in
one unit of work: a look done again the same day, or after a crash, tells nothing twice. The memory is forgotten past
`KEEP_DAYS`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from maille.library.v1 import loans_pb2 as pb
from maille_contracts import LOAN_DUE, LOAN_LATE, RESERVATION_READY
from maille_kit.docstore import Docstore, by_ids
from maille_kit.events import event_id_for
from maille_kit.work import Works
from maille_library.connections import Connections
from maille_library.directory import Directory
from maille_library.pmb import PmbClient, PmbError

log = logging.getLogger("maille.library")
TOLD = "loan_notices"
RUNS = "runs"
KEEP_DAYS = 60
DUE_IN_DAYS = 2
BATCH = 200  # facts told per unit of work


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


class LoanNotices:
    def __init__(
        self,
        client: PmbClient,
        connections: Connections,
        directory: Directory,
        works: Works,
        docstore: Docstore,
        *,
        concurrency: int,
        tenant: str,
    ) -> None:
        self.client = client
        self.connections = connections
        self.directory = directory
        self.works = works
        self.docstore = docstore
        self.told = docstore.db[TOLD]
        self.concurrency = concurrency
        self.tenant = tenant

    async def daily(self, today: date) -> dict[str, int] | None:
        """Today's look, by the one replica that claims the day (None: another did)."""
        try:
            async with self.docstore.writing():
                await self.docstore.db[RUNS].insert_one({"_id": f"loans:{today.isoformat()}", "at": datetime.now(UTC)})
        except Exception as exc:
            if "E11000" in str(exc) or "duplicate" in str(exc).lower():
                return None
            raise
        counts = await self.look(today)
        log.info("loans looked at", extra=counts)
        return counts

    async def look(self, today: date) -> dict[str, int]:
        """Every school's readers' loans and reservations: the facts found and told ({due, late, ready, failed})."""
        counts = {"readers": 0, "due": 0, "late": 0, "ready": 0, "failed": 0}
        for doc in await self.connections.all():
            uai = doc["_id"]
            conn = await self.connections.get(uai)
            if conn is None or not conn.login_salt:
                continue  # no reader accounts in this school's PMB (no OPAC salt): nothing to read
            readers = [r["_id"] async for r in self.directory.readers_of_school(uai)]
            gate = asyncio.Semaphore(self.concurrency)
            facts: list[tuple[str, str, Any]] = []

            async def one(person: str) -> None:
                async with gate:
                    try:
                        raw = await self.client.account(conn, person)
                    except PmbError as exc:
                        if "Unknown reader" not in exc.detail:
                            counts["failed"] += 1
                        return
                    counts["readers"] += 1
                    facts.extend(self._facts(uai, person, raw, today))

            await asyncio.gather(*(one(p) for p in readers))
            for start in range(0, len(facts), BATCH):
                await self._tell(facts[start : start + BATCH], counts)
        await self._forget(today)
        return counts

    def _facts(
        self, uai: str, person: str, raw: dict[str, list[dict[str, Any]]], today: date
    ) -> list[tuple[str, str, Any]]:
        found: list[tuple[str, str, Any]] = []

        def loan(x: dict[str, Any]) -> pb.Loan:
            return pb.Loan(
                person_id=person,
                uai=uai,
                record_id=int(x.get("notice_id") or 0),
                title=str(x.get("expl_libelle") or ""),
                barcode=str(x.get("expl_cb") or ""),
                due=str(x.get("loan_returndate") or "")[:10],
            )

        for x in raw.get("late", []):
            made = loan(x)
            found.append(("late", f"late:{uai}:{person}:{made.barcode}:{made.due}", made))
        for x in raw.get("current", []):
            due = _day(x.get("loan_returndate"))
            if due is not None and due == today + timedelta(days=DUE_IN_DAYS):
                made = loan(x)
                found.append(("due", f"due:{uai}:{person}:{made.barcode}:{made.due}", made))
        for x in raw.get("reservations", []):
            until = _day(x.get("resa_dateend"))
            if until is not None and until >= today:  # set aside for the reader until then
                resa = pb.ReservationReady(
                    person_id=person,
                    uai=uai,
                    record_id=int(x.get("notice_id") or 0),
                    until=until.isoformat(),
                    reservation_id=int(x.get("resa_id") or 0),
                )
                found.append(("ready", f"ready:{uai}:{person}:{resa.reservation_id}:{resa.until}", resa))
        return found

    async def _tell(self, facts: list[tuple[str, str, Any]], counts: dict[str, int]) -> None:
        keys = [hashlib.sha256(key.encode()).hexdigest()[:32] for _, key, _ in facts]
        known = await by_ids(self.told, keys)
        work = self.works.new()
        now = datetime.now(UTC)
        fresh = 0
        for (kind, key, payload), hashed in zip(facts, keys):
            if hashed in known:
                continue
            fresh += 1
            counts[kind] += 1
            work.insert(TOLD, {"_id": hashed, "at": now})
            event_type = {"due": LOAN_DUE, "late": LOAN_LATE, "ready": RESERVATION_READY}[kind]
            message = payload if kind == "ready" else (pb.LoanDue if kind == "due" else pb.LoanLate)(loan=payload)
            work.event(
                type=event_type,
                tenant=self.tenant,
                id=event_id_for(key, ms=int(now.timestamp() * 1000)),
                payload=message,
            )
        if fresh:
            await self.works.commit(work)

    async def _forget(self, today: date) -> None:
        limit = datetime.combine(today - timedelta(days=KEEP_DAYS), datetime.min.time(), tzinfo=UTC)
        async with self.docstore.writing():
            await self.told.delete_many({"at": {"$lt": limit}})
