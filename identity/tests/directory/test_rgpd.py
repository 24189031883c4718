"""RGPD: an operator exports everything held on one person, and erases a person everywhere."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from maille.identity.v1 import directory_pb2 as pb
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.directory.rgpd import NoSuchPerson, erase_person, export_person
from maille_identity.events import EventBatch
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.events import decode
from maille_kit.outbox import Outbox
from maille_kit.work import Works

from .test_import import TENANT, feed, parent, pupil, run_import, school, uai_for


async def imported(tmp_path: Path, docstore: Docstore, outbox: Outbox) -> dict[str, str]:
    folder = tmp_path / "feed"
    feed(folder, "EtabEducNat", school("S1", uai_for(1)))
    feed(folder, "Eleve", pupil("E1", "S1", adults=["P1"], sn="Dupont"))
    feed(folder, "PersRelEleve", parent("P1"))
    await run_import(docstore, outbox, folder)
    return {doc["keys"][0]: doc["_id"] async for doc in docstore.db.persons.find({})}


async def test_export_holds_everything_on_the_person(tmp_path: Path, docstore: Docstore, outbox: Outbox) -> None:
    ids = await imported(tmp_path, docstore, outbox)
    data = await export_person(DirectoryRepository(docstore), tenant=TENANT, person_id=ids["E1"])
    text = json.dumps(data)  # JSON as it is handed over
    assert data["person"]["last_name"] == "Dupont" and data["person"]["birth_date"] == "2015-09-04"
    assert data["person"]["relatives"][0]["person"] == ids["P1"]
    assert data["related_persons"] == {ids["P1"]: "Marc DUPONT"}
    assert '"h"' not in text
    with pytest.raises(NoSuchPerson):
        await export_person(DirectoryRepository(docstore), tenant="another-tenant", person_id=ids["E1"])


async def test_erasure_removes_the_person_and_tells_every_service(
    tmp_path: Path, docstore: Docstore, outbox: Outbox, bus: Bus
) -> None:
    ids = await imported(tmp_path, docstore, outbox)
    heard: list = []

    async def hear(msg) -> None:
        heard.append(decode(msg.data))

    subscription = await bus.nc.subscribe("identity.person.>", cb=hear)
    await erase_person(
        DirectoryRepository(docstore),
        EventBatch(Works(docstore, outbox, source="identity"), tenant=TENANT),
        tenant=TENANT,
        person_id=ids["E1"],
    )
    for _ in range(100):
        if any(e.type == "identity.person.deleted.v1" for e in heard):
            break
        await asyncio.sleep(0.05)
    await subscription.unsubscribe()
    deleted = [e.unpack(pb.PersonDeleted) for e in heard if e.type == "identity.person.deleted.v1"]
    assert [(d.id, d.erased) for d in deleted] == [(ids["E1"], True)]
    assert await docstore.db.persons.find_one({"_id": ids["E1"]}) is None
    assert (await docstore.db.persons.find_one({"_id": ids["P1"]}))["children"] == []  # the parent's link is gone too
    # The next import of a feed without them does not bring them back, nor trips on the erasure.
    summary = await run_import(docstore, outbox, tmp_path / "empty-delta")
    assert summary.rejected == 0 and await docstore.db.persons.find_one({"_id": ids["E1"]}) is None


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "maille-identity"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_operator_commands(
    tmp_path: Path, docstore: Docstore, outbox: Outbox, bus: Bus, docstore_server, database_name: str
) -> None:
    ids = await imported(tmp_path, docstore, outbox)
    env = {
        "MAILLE_IDENTITY_NATS_URL": bus.url,
        "MAILLE_IDENTITY_MONGODB_URL": docstore_server.url,
        "MAILLE_IDENTITY_DATABASE": database_name,
        "MAILLE_IDENTITY_TENANT": TENANT,
        "MAILLE_IDENTITY_ENVIRONMENT": "development",
        "PATH": "/usr/bin:/bin",
    }
    exported = await asyncio.to_thread(run_cli, "rgpd-export", ids["E1"], env=env)
    assert exported.returncode == 0 and json.loads(exported.stdout)["person"]["_id"] == ids["E1"]
    assert (await asyncio.to_thread(run_cli, "rgpd-export", "nobody", env=env)).returncode == 1
    unconfirmed = await asyncio.to_thread(run_cli, "erase", ids["E1"], env=env)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert await docstore.db.persons.find_one({"_id": ids["E1"]}) is not None
    erased = await asyncio.to_thread(run_cli, "erase", ids["E1"], "--yes", env=env)
    assert erased.returncode == 0, erased.stderr
    assert await docstore.db.persons.find_one({"_id": ids["E1"]}) is None
