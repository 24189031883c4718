"""AAF imports as jobs: a delivery uploaded by an operator is kept on disk and imported in the
background, its progress and result readable by any replica (collection `import_jobs`).

One import at a time per tenant: two imports of one directory at once would race on its state.

A running job beats (`heartbeat`, every `HEARTBEAT` seconds). A job whose replica died (no beat for
`DEAD_AFTER` seconds) is taken over by another replica (`take_over`, run at start and then every
minute): imported again from its delivery, which changes nothing already imported (each batch is a unit
of work); after `TAKE_OVERS` tries, or with its delivery gone, it is marked failed, saying why. No job
stays "running" for ever.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maille.identity.v1 import operations_pb2
from maille_contracts import IMPORT_REPORTED
from maille_identity.directory.importer import import_feeds
from maille_identity.directory.repository import DirectoryRepository
from maille_kit.events import event_id_for
from maille_kit.telemetry import meter
from maille_kit.work import Works

if TYPE_CHECKING:
    from maille_identity.events import EventBatch

log = logging.getLogger("maille.identity.jobs")

JOBS = "import_jobs"
# An import's progress for the metrics: records read so far, and each import's outcome (done, unreadable, failed).
IMPORTED_RECORDS = meter().create_counter("maille.aaf.records", description="AAF records read by imports")
IMPORTS = meter().create_counter("maille.aaf.imports", description="AAF imports finished, by outcome")
PROGRESS_EVERY = 2.0  # seconds between two progress writes
HEARTBEAT = 5.0
DEAD_AFTER = 60.0
TAKE_OVERS = 3
Doc = dict[str, Any]


class Busy(RuntimeError):
    """An import of that tenant is already running."""


class ImportJobs:
    """Start imports, and say where they are."""

    def __init__(
        self,
        repository: DirectoryRepository,
        events_for: Callable[[str], EventBatch],
        *,
        folder: Path,
        check_uai_letter: bool,
        id_secret: bytes,
        grace: timedelta,
        works: Works | None = None,
    ) -> None:
        self.repo = repository
        self.works = works  # the job's end and its event (ImportReported) as one unit of work
        self.collection = repository.db[JOBS]
        self.events_for = events_for  # tenant -> EventBatch
        self.folder = folder
        self.check_uai_letter = check_uai_letter
        self.id_secret = id_secret
        self.grace = grace
        self._tasks: set[asyncio.Task[None]] = set()

    def new_upload(self, filename: str) -> tuple[str, Path]:
        """A job id and where its delivery goes."""
        job_id = secrets.token_hex(8)
        target = self.folder / job_id / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        return job_id, target

    async def start(self, job_id: str, tenant: str, delivery: Path, *, requested_by: str = "") -> Doc:
        """Record the job and run it in the background; `Busy` when that tenant's import is running."""
        running = await self.collection.find_one({"tenant": tenant, "state": {"$in": ["queued", "running"]}})
        if running is not None:
            raise Busy(running["_id"])
        now = datetime.now(UTC)
        job = {
            "_id": job_id,
            "tenant": tenant,
            "state": "queued",
            "file": delivery.name,
            "created_at": now,
            "heartbeat": now,
            "progress": {"file": "", "records": 0},
            "summary": None,
            "error": None,
            "taken_over": 0,
            "requested_by": requested_by,  # the operator's directory person, told of the report
        }
        async with self.repo.docstore.writing():
            await self.collection.insert_one(job)
        self._launch(job_id, tenant, delivery)
        return job

    def _launch(self, job_id: str, tenant: str, delivery: Path) -> None:
        task = asyncio.create_task(self._run(job_id, tenant, delivery), name=f"aaf-import-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def take_over(self, *, now: datetime | None = None) -> list[str]:
        """Take over (or end) the jobs whose replica stopped beating; their ids."""
        now = now or datetime.now(UTC)
        found = []
        async for job in self.collection.find(
            {"state": {"$in": ["queued", "running"]}, "heartbeat": {"$lt": now - timedelta(seconds=DEAD_AFTER)}}
        ):
            # Taken by the one replica whose write still finds the beat it read.
            async with self.repo.docstore.writing():
                taken = await self.collection.update_one(
                    {"_id": job["_id"], "heartbeat": job["heartbeat"]},
                    {"$set": {"heartbeat": now, "taken_over": job.get("taken_over", 0) + 1}},
                )
            if taken.modified_count != 1:
                continue
            delivery = self.folder / job["_id"] / job["file"]
            found.append(job["_id"])
            if job.get("taken_over", 0) >= TAKE_OVERS or not delivery.exists():
                why = "its delivery is gone" if not delivery.exists() else f"tried {TAKE_OVERS + 1} times"
                log.error("AAF import %s abandoned by its replica: marked failed (%s)", job["_id"], why)
                await self._set(
                    job["_id"],
                    {
                        "state": "failed",
                        "finished_at": now,
                        "error": f"the replica importing it stopped and {why}: upload the delivery again",
                    },
                )
                continue
            log.warning("AAF import %s abandoned by its replica: taken over here", job["_id"])
            self._launch(job["_id"], job["tenant"], delivery)
        return found

    async def watch(self) -> None:
        """Take over the dead replicas' jobs, now and every minute."""
        while True:
            try:
                await self.take_over()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("import jobs not checked: %s", exc)
            await asyncio.sleep(DEAD_AFTER)

    async def get(self, job_id: str) -> Doc | None:
        return await self.collection.find_one({"_id": job_id})

    async def recent(self, tenant: str, count: int = 10) -> list[Doc]:
        """The tenant's last imports, newest first."""
        return await self.collection.find({"tenant": tenant}).sort("created_at", -1).limit(count).to_list()

    def report_lines(self, job_id: str, about: tuple[str, ...], limit: int = 200) -> list[str]:
        """The lines of an import's report that name one of `about` (a school's UAI or AAF key), at most `limit`."""
        path = self.report_path(job_id)
        if not path.exists() or not about:
            return []
        found = []
        with path.open(encoding="utf-8", errors="replace") as report:
            for line in report:
                if any(word in line for word in about):
                    found.append(line.rstrip("\n"))
                    if len(found) >= limit:
                        break
        return found

    def report_path(self, job_id: str) -> Path:
        return self.folder / job_id / "report.txt"

    async def _set(self, job_id: str, fields: Doc) -> None:
        async with self.repo.docstore.writing():
            await self.collection.update_one({"_id": job_id}, {"$set": fields})

    async def _beat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self._set(job_id, {"heartbeat": datetime.now(UTC)})
            except Exception as exc:  # the docstore away a moment: the next beat
                log.warning("AAF import %s: heartbeat not written: %s", job_id, exc)

    async def _run(self, job_id: str, tenant: str, delivery: Path) -> None:
        await self._set(job_id, {"state": "running", "started_at": datetime.now(UTC), "heartbeat": datetime.now(UTC)})
        beating = asyncio.create_task(self._beat(job_id), name=f"aaf-import-beat-{job_id}")
        try:
            await self._import(job_id, tenant, delivery)
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)

    async def _import(self, job_id: str, tenant: str, delivery: Path) -> None:
        last = 0.0
        pending: list[asyncio.Task[None]] = []
        records_before: dict[str, int] = {}

        def progress(file: str, records: int) -> None:
            nonlocal last
            IMPORTED_RECORDS.add(records - records_before.get(file, 0), {"tenant": tenant})
            records_before[file] = records
            if time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                pending.append(
                    asyncio.create_task(
                        self._set(
                            job_id, {"progress": {"file": Path(file).name, "records": sum(records_before.values())}}
                        )
                    )
                )

        try:
            summary = await import_feeds(
                self.repo,
                self.events_for(tenant),
                [delivery],
                tenant=tenant,
                check_uai_letter=self.check_uai_letter,
                id_secret=self.id_secret,
                report_path=self.report_path(job_id),
                grace=self.grace,
                progress=progress,
            )
            await asyncio.gather(*pending, return_exceptions=True)
            state = "done" if summary.processed else "unreadable"
            IMPORTS.add(1, {"tenant": tenant, "outcome": state})
            await self._end(
                job_id,
                tenant,
                {
                    "state": state,
                    "finished_at": datetime.now(UTC),
                    "summary": asdict(summary),
                    "progress": {"file": "", "records": summary.records},
                },
            )
        except Exception as exc:  # the job says so; the service goes on
            log.exception("AAF import %s failed", job_id)
            IMPORTS.add(1, {"tenant": tenant, "outcome": "failed"})
            await asyncio.gather(*pending, return_exceptions=True)
            await self._end(job_id, tenant, {"state": "failed", "finished_at": datetime.now(UTC), "error": str(exc)})

    async def _end(self, job_id: str, tenant: str, fields: Doc) -> None:
        """The job's end, and its report told (`identity.import.reported.v1`) — one unit of work."""
        if self.works is None:
            await self._set(job_id, fields)
            return
        job = await self.collection.find_one({"_id": job_id}) or {}
        summary = fields.get("summary") or {}
        work = self.works.new().update(JOBS, {"_id": job_id}, {"$set": fields})
        work.event(
            type=IMPORT_REPORTED,
            tenant=tenant,
            id=event_id_for(f"import:{job_id}", ms=int(fields["finished_at"].timestamp() * 1000)),
            payload=operations_pb2.ImportReported(
                job_id=job_id,
                state=fields["state"],
                file=str(job.get("file", "")),
                records=int(summary.get("records", 0)),
                created=int(summary.get("created", 0)),
                updated=int(summary.get("updated", 0)),
                deleted=int(summary.get("deleted", 0)),
                rejected=int(summary.get("rejected", 0)),
                warnings=int(summary.get("warnings", 0)),
                requested_by=str(job.get("requested_by") or ""),
                error=str(fields.get("error") or "")[:500],
            ),
        )
        await self.works.commit(work)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
