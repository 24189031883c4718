"""Import jobs whose replica died: taken over from their delivery by another replica, or marked failed — no job
stays "running" for ever."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from maille_identity.directory.jobs import ImportJobs
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.directory.synthetic import generate
from maille_identity.events import EventBatch
from maille_kit.docstore import Docstore
from maille_kit.outbox import Outbox
from maille_kit.work import Works


def jobs_of(docstore: Docstore, outbox: Outbox, folder: Path) -> ImportJobs:
    works = Works(docstore, outbox, source="identity")
    return ImportJobs(
        DirectoryRepository(docstore),
        lambda tenant: EventBatch(works, tenant=tenant),
        folder=folder,
        check_uai_letter=True,
        id_secret=b"k",
        grace=timedelta(days=30),
    )


async def left_running(docstore: Docstore, job_id: str, *, file: str, taken_over: int = 0) -> None:
    """A job as a replica killed mid-import leaves it: running, its last beat two minutes old."""
    beat = datetime.now(UTC) - timedelta(minutes=2)
    await docstore.db["import_jobs"].insert_one(
        {
            "_id": job_id,
            "tenant": "ac-test",
            "state": "running",
            "file": file,
            "created_at": beat,
            "heartbeat": beat,
            "progress": {"file": "", "records": 10},
            "summary": None,
            "error": None,
            "taken_over": taken_over,
        }
    )


async def test_a_dead_replicas_import_is_taken_over_and_finished(
    docstore: Docstore, outbox: Outbox, tmp_path: Path
) -> None:
    folder = tmp_path / "imports"
    generate(folder / "j1" / "feed", persons=60, schools=1)
    await left_running(docstore, "j1", file="feed")
    await left_running(docstore, "j2", file="gone.zip")  # its delivery is not there any more
    await left_running(docstore, "j3", file="feed", taken_over=3)  # taken over three times already
    (folder / "j3").mkdir()
    (folder / "j3" / "feed").symlink_to(folder / "j1" / "feed")
    jobs = jobs_of(docstore, outbox, folder)

    assert sorted(await jobs.take_over()) == ["j1", "j2", "j3"]
    assert await jobs.take_over() == []  # beating again now: nobody takes them twice
    for _ in range(300):
        if (await jobs.get("j1"))["state"] != "running":
            break
        await asyncio.sleep(0.1)
    done = await jobs.get("j1")
    assert done["state"] == "done" and done["summary"]["created"] > 50 and done["taken_over"] == 1
    assert await docstore.db["persons"].count_documents({}) > 50
    gone, tired = await jobs.get("j2"), await jobs.get("j3")
    assert gone["state"] == "failed" and "delivery is gone" in gone["error"]
    assert tired["state"] == "failed" and "upload the delivery again" in tired["error"]
    await jobs.stop()


async def test_a_running_job_beats(docstore: Docstore, outbox: Outbox, tmp_path: Path, monkeypatch) -> None:
    from maille_identity.directory import jobs as module

    monkeypatch.setattr(module, "HEARTBEAT", 0.05)
    jobs = jobs_of(docstore, outbox, tmp_path / "imports")
    job_id, target = jobs.new_upload("feed")
    generate(target, persons=600, schools=2)
    started = await jobs.start(job_id, "ac-test", target)
    beats = set()
    while (await jobs.get(job_id))["state"] in ("queued", "running"):
        beats.add((await jobs.get(job_id))["heartbeat"])
        await asyncio.sleep(0.02)
    assert (await jobs.get(job_id))["state"] == "done"
    assert len(beats) >= 2 and max(beats) > started["heartbeat"]
    await jobs.stop()
