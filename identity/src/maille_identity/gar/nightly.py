"""The nightly GAR export: at `MAILLE_IDENTITY_GAR_EXPORT_AT` (UTC), export the directory and push it.

Every replica of identity keeps the schedule; a key created in a JetStream key-value bucket decides
which one runs each night (creating a key that exists fails), so the export runs once per night.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from nats.js.errors import KeyWrongLastSequenceError

from maille.identity.v1 import operations_pb2
from maille_contracts import EXPORT_FAILED
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.gar.export import ExportReport, GarExport
from maille_identity.gar.push import push
from maille_identity.settings import IdentitySettings
from maille_kit.bus import Bus
from maille_kit.events import event_id_for
from maille_kit.telemetry import meter
from maille_kit.work import Works

log = logging.getLogger("maille.identity.gar")

LOCKS = "identity_locks"
EXPORTS = meter().create_counter("maille.gar.exports", description="nightly GAR exports finished, by outcome")


def next_run(now: datetime, at: str) -> datetime:
    """The next time of day `at` (HH:MM, UTC) after `now`."""
    hour, minute = (int(part) for part in at.split(":"))
    candidate = datetime.combine(now.date(), time(hour, minute), tzinfo=UTC)
    return candidate if candidate > now else candidate + timedelta(days=1)


async def export_once(
    bus: Bus,
    repository: DirectoryRepository,
    settings: IdentitySettings,
    *,
    night: str,
    run: str | None = None,
    trigger: str = "nightly",
    by: str = "",
) -> ExportReport | None:
    """Export (and push) for `night` unless another replica already did (`run`: the run's name, the night's by
    default); the report, or None if skipped. Each run is recorded as it goes (`gar_runs`: the operators' screen)."""
    run = run or night
    kv = await bus.key_value(LOCKS, ttl=3 * 24 * 3600)
    try:
        await kv.create(f"gar-export.{settings.tenant}.{run}", b"started")
    except KeyWrongLastSequenceError:
        log.info("GAR export of %s already taken by another replica", run)
        return None
    record: dict[str, Any] = {
        "_id": f"{settings.tenant}:{run}",
        "tenant": settings.tenant,
        "night": night,
        "trigger": trigger,
        "by": by,
        "started_at": datetime.now(UTC),
        "outcome": "running",
    }
    await repository.record_gar_run(record)
    target = settings.sftp_target()
    try:
        declared = await repository.tenant(settings.tenant)
        id_ent = declared["gar_id_ent"] if declared else settings.gar_id_ent
        report = await GarExport(
            repository, tenant=settings.tenant, id_ent=id_ent, outdir=Path(settings.gar_export_dir)
        ).run()
        if target is not None and report.archive is not None:
            await push(target, [report.archive, Path(f"{report.archive}.md5")])
    except BaseException as exc:
        failed = {**record, "finished_at": datetime.now(UTC), "outcome": "failed"}
        failed["error"] = f"{type(exc).__name__}: {exc}"[:500] if isinstance(exc, Exception) else "stopped"
        await asyncio.shield(repository.record_gar_run(failed))
        raise
    await repository.record_gar_run(
        {
            **record,
            "finished_at": datetime.now(UTC),
            "outcome": "done",
            "files": len(report.files),
            "records": dict(report.records),
            "left_out": len(report.left_out),
            "archive": report.archive.name if report.archive else "",
            "md5": report.md5,
            "pushed": target is not None,
        }
    )
    log.info(
        "GAR export of %s done: %d files, md5 %s%s", run, len(report.files), report.md5, ", pushed" if target else ""
    )
    return report


async def told_failed(works: Works | None, settings: IdentitySettings, night: str, reason: str) -> None:
    """A failed night told (`identity.export.failed.v1`: the platform's admins are notified); best effort."""
    if works is None:
        return
    work = works.new()
    work.event(
        type=EXPORT_FAILED,
        tenant=settings.tenant,
        id=event_id_for(f"gar-export-failed:{settings.tenant}:{night}", ms=int(datetime.now(UTC).timestamp() * 1000)),
        payload=operations_pb2.ExportFailed(night=night, reason=reason[:500]),
    )
    try:
        await works.commit(work)
    except Exception as exc:  # the docstore away too: the log says it
        log.warning("the GAR export's failure could not be told: %s", exc)


async def run_nightly(
    bus: Bus, repository: DirectoryRepository, settings: IdentitySettings, *, works: Works | None = None
) -> None:
    """Sleep until the export time, export, and again the next night (until cancelled); a failed night is told."""
    assert settings.gar_export_at is not None
    while True:
        when = next_run(datetime.now(UTC), settings.gar_export_at)
        await asyncio.sleep((when - datetime.now(UTC)).total_seconds())
        try:
            report = await export_once(bus, repository, settings, night=when.date().isoformat())
        except Exception as exc:  # a failed night is logged and told; the next one is tried as usual
            EXPORTS.add(1, {"outcome": "failed"})
            log.exception("nightly GAR export failed")
            await told_failed(works, settings, when.date().isoformat(), f"{type(exc).__name__}: {exc}")
        else:
            if report is not None:
                EXPORTS.add(1, {"outcome": "done"})
