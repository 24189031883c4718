"""The AAF import against the real docstore and NATS: what an operator sees in the directory, in the
report and on the bus after importing a feed, a bad feed, a second full feed and a delta."""

import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_UPDATED
from maille_identity.directory.importer import Summary, import_feeds
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.directory.synthetic import generate, uai_for
from maille_identity.events import STREAMS, EventBatch
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.events import decode
from maille_kit.outbox import Outbox
from maille_kit.work import Works

TENANT = "ac-test"
HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n'


def request(ident: str, attrs: dict[str, list[str] | str], op: str = "addRequest") -> str:
    body = "".join(
        f'<attr name="{name}">'
        + "".join(f"<value>{v}</value>" for v in ([values] if isinstance(values, str) else values))
        + "</attr>\n"
        for name, values in attrs.items()
    )
    return f"<{op}>\n<identifier><id>{ident}</id></identifier>\n<attributes>\n{body}</attributes>\n</{op}>\n"


def feed(
    folder: Path, kind: str, *records: str, mode: str = "Complet", number: int = 1, raw: str | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ENT_0350000A_{mode}_{kind}_{number:04d}.xml"
    path.write_text(raw if raw is not None else HEADER + "<ficAlimMENESR>\n" + "".join(records) + "</ficAlimMENESR>\n")
    return path


def school(key: str, uai: str, classes: list[str] = ("6A",)) -> str:
    return request(
        key,
        {
            "ENTStructureUAI": uai,
            "ENTStructureNomCourant": f"COLLEGE {key}",
            "ENTStructureTypeStruct": "COLLEGE",
            "ENTEtablissementContrat": "PU",
            "ENTStructureClasses": [f"{c}${c}" for c in classes],
        },
    )


def pupil(
    key: str,
    school_key: str,
    *,
    cls: str = "6A",
    born: str = "04/09/2015",
    sn: str = "DUPONT",
    adults: list[str] = (),
    **extra: str,
) -> str:
    attrs = {
        "ENTPersonJointure": key,
        "sn": sn,
        "givenName": "Léa",
        "ENTPersonDateNaissance": born,
        "ENTEleveStructRattachId": school_key,
        "ENTEleveClasses": f"{school_key}${cls}",
        "ENTElevePersRelEleve": [f"{a}$1$1$1$1$0" for a in adults],
    }
    return request(key, {**{k: v for k, v in attrs.items() if v}, **extra})


def parent(key: str, sn: str = "DUPONT") -> str:
    return request(key, {"ENTPersonJointure": key, "sn": sn, "givenName": "Marc", "mail": f"p{key}@example.org"})


async def run_import(
    docstore: Docstore, outbox: Outbox, *paths: Path, report: Path | None = None, now: datetime | None = None
) -> Summary:
    summary = await import_feeds(
        DirectoryRepository(docstore),
        EventBatch(Works(docstore, outbox, source="identity"), tenant=TENANT),
        list(paths),
        tenant=TENANT,
        check_uai_letter=True,
        id_secret=b"test-secret",
        report_path=report,
        now=now,
    )
    return summary


async def stream_count(bus: Bus, outbox: Outbox) -> int:
    for _ in range(100):
        if await outbox.pending() == 0:
            break
        await asyncio.sleep(0.05)
    return (await bus.js.stream_info("IDENTITY")).state.messages


async def test_full_feed_fills_the_directory_and_a_reimport_changes_nothing(
    tmp_path: Path, docstore: Docstore, outbox: Outbox, bus: Bus
) -> None:
    counts = generate(tmp_path / "feed", persons=600, schools=2)
    summary = await run_import(docstore, outbox, tmp_path / "feed")
    assert summary.rejected == 0 and summary.unreadable == []
    db = docstore.db
    assert await db.persons.count_documents({"kind": "pupil"}) == counts["pupils"]
    assert await db.persons.count_documents({"kind": "parent"}) == counts["parents"]
    assert await db.persons.count_documents({"kind": "staff"}) == counts["staff"]
    assert await db.structures.count_documents({}) == 2
    # A pupil's class and parents; the parent sees the child, with the child's school as their profile.
    a_pupil = await db.persons.find_one({"kind": "pupil"})
    assert a_pupil["classes"][0].split("$")[0] == a_pupil["attached"] in (uai_for(1), uai_for(2))
    adult = await db.persons.find_one({"_id": a_pupil["relatives"][0]["person"]})
    assert a_pupil["_id"] in adult["children"]
    assert adult["profiles"] == [{"structure": a_pupil["attached"], "code": "National_TUT"}]
    published = await stream_count(bus, outbox)
    assert published == summary.events > counts["pupils"] + counts["parents"]

    again = await run_import(docstore, outbox, tmp_path / "feed")
    assert (again.created, again.updated, again.deleted, again.events) == (0, 0, 0, 0)
    assert again.unchanged == summary.created
    assert await stream_count(bus, outbox) == published  # nothing published the second time
    # The ENT ids are stable across imports.
    assert (await db.persons.find_one({"_id": a_pupil["_id"]}))["last_name"] == a_pupil["last_name"]


async def test_an_import_while_nats_is_away_loses_no_event(tmp_path: Path, docstore: Docstore, nats_factory) -> None:
    """The import hands its events straight to JetStream; what JetStream cannot take waits in the outbox
    and arrives, once each, when NATS is back."""
    nats = nats_factory()
    bus = Bus(nats.url, name="import-outage-test")
    await bus.connect(timeout=10)
    await bus.ensure_streams(list(STREAMS))
    box = Outbox(docstore, bus, source="identity", ack_timeout=1.0, sweep_interval=0.5)
    box.start()
    try:
        generate(tmp_path / "feed", persons=600, schools=2)
        nats.stop()
        summary = await run_import(docstore, box, tmp_path / "feed")
        assert summary.created > 500 and summary.events >= summary.created
        assert await box.pending() == summary.events  # none lost: all held by the outbox
        nats.start()
        deadline = asyncio.get_running_loop().time() + 30
        while (await box.pending() or not bus.connected) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
        assert (await bus.js.stream_info("IDENTITY")).state.messages == summary.events  # each once
    finally:
        await box.stop()
        await bus.close()


async def test_bad_records_are_reported_and_the_rest_imported(
    tmp_path: Path, docstore: Docstore, outbox: Outbox
) -> None:
    folder = tmp_path / "feed"
    uai = uai_for(1)
    feed(folder, "EtabEducNat", school("S1", uai), school("S2", "0350000B"))  # S2: wrong check letter
    feed(
        folder,
        "Eleve",
        pupil("E1", "S1"),
        pupil("E2", "S1", born="31/02/2015"),  # impossible date
        request(
            "E3",
            {
                "ENTPersonJointure": "E3",
                "givenName": "Zoé",
                "ENTPersonDateNaissance": "01/01/2015",
                "ENTEleveStructRattachId": "S1",
            },
        ),  # no sn
        pupil("E4", "S1", cls="6A", ENTEleveClasses="NOPE$6A"),  # a class of an unknown structure
        pupil("E1", "S1", sn="TWICE"),  # duplicate id within the feed
        pupil("E5", "S1", ENTEleveDoudou="Lapin"),  # unknown attribute: imported, warned about
    )
    report = tmp_path / "report.txt"
    summary = await run_import(docstore, outbox, folder, report=report)
    lines = report.read_text().splitlines()

    def line_for(fragment: str) -> str:
        found = [line for line in lines if fragment in line]
        assert found, f"no report line with {fragment!r} in {lines}"
        return found[0]

    assert "EtabEducNat_0001.xml:" in line_for("0350000B has check letter B")
    assert "Eleve_0001.xml:" in line_for("ENTPersonDateNaissance '31/02/2015' is not a real date")
    assert "mandatory attribute sn is missing" in line_for("sn is missing")
    assert "names unknown structure 'NOPE'" in line_for("NOPE")
    assert "duplicate id 'E1'" in line_for("duplicate id")
    assert "ENTEleveDoudou" in line_for("unknown attribute")
    assert summary.rejected == 5
    # Each report line says file and line: the duplicate is the fifth record, on its own line.
    file_line = line_for("duplicate id").split(": ")[0]
    assert int(file_line.rsplit(":", 1)[1]) > int(line_for("31/02/2015").split(": ")[0].rsplit(":", 1)[1])
    keys = sorted([doc["keys"][0] async for doc in docstore.db.persons.find({})])
    assert keys == ["E1", "E5"]  # the good ones, nothing of the bad ones
    assert (await docstore.db.persons.find_one({"keys": "E1"}))["last_name"] == "DUPONT"  # the first E1 stands
    assert await docstore.db.structures.count_documents({}) == 1


async def test_hostile_and_broken_xml(tmp_path: Path, docstore: Docstore, outbox: Outbox) -> None:
    folder = tmp_path / "feed"
    uai = uai_for(1)
    feed(folder, "EtabEducNat", school("S1", uai))
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE ficAlimMENESR [\n<!ENTITY lol "lol">\n'
        + "".join(f'<!ENTITY lol{i + 1} "{"&lol%s;" % (i or "") * 10}">\n' for i in range(9))
        + "]>\n<ficAlimMENESR>"
        + pupil("B1", "S1", sn="&lol9;")
        + "</ficAlimMENESR>\n"
    )
    feed(folder, "Eleve", raw=laughs, number=1)
    xxe = (
        f'<?xml version="1.0"?>\n<!DOCTYPE ficAlimMENESR [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
        "<ficAlimMENESR>" + pupil("X1", "S1", sn="&xxe;") + "</ficAlimMENESR>\n"
    )
    feed(folder, "Eleve", raw=xxe, number=2)
    truncated = HEADER + "<ficAlimMENESR>\n" + pupil("T1", "S1") + pupil("T2", "S1")[:120]
    feed(folder, "Eleve", raw=truncated, number=3)
    report = tmp_path / "report.txt"
    summary = await run_import(docstore, outbox, folder, report=report)
    text = report.read_text()
    assert "Eleve_0001.xml:3: unreadable: the file declares XML entities" in text
    assert "Eleve_0002.xml:2: unreadable: the file declares XML entities" in text
    assert "Eleve_0003.xml:" in text and "not well-formed XML" in text
    assert "nobody detached" in text  # a full feed cut short detaches nobody
    keys = sorted([doc["keys"][0] async for doc in docstore.db.persons.find({})])
    assert keys == ["T1"]  # what came before the truncation
    dump = str([doc async for doc in docstore.db.persons.find({})])
    assert "TOP-SECRET" not in dump and "lollol" not in dump
    assert summary.processed


async def test_a_second_full_feed_detaches_the_absent_and_a_delta_applies_in_order(
    tmp_path: Path, docstore: Docstore, outbox: Outbox
) -> None:
    uai = uai_for(1)
    first, second, delta = tmp_path / "first", tmp_path / "second", tmp_path / "delta"
    feed(first, "EtabEducNat", school("S1", uai, ["6A", "6B"]))
    feed(first, "Eleve", pupil("E1", "S1", adults=["P1"]), pupil("E2", "S1", adults=["P1"]), pupil("E3", "S1"))
    feed(first, "PersRelEleve", parent("P1"))
    await run_import(docstore, outbox, first)
    persons = docstore.db.persons
    p1 = await persons.find_one({"keys": "P1"})
    assert len(p1["children"]) == 2

    # E2 left the school: the next full feed no longer has them; E1 changed class.
    feed(second, "EtabEducNat", school("S1", uai, ["6A", "6B"]))
    feed(second, "Eleve", pupil("E1", "S1", cls="6B", adults=["P1"]), pupil("E3", "S1"))
    feed(second, "PersRelEleve", parent("P1"))
    summary = await run_import(docstore, outbox, second)
    assert summary.detached == 1
    e2 = await persons.find_one({"keys": "E2"})
    assert e2 is not None and e2["profiles"] == [] and "delete_after" in e2  # kept for the grace period
    assert (await persons.find_one({"keys": "E1"}))["classes"] == [f"{uai}$6B"]
    assert len((await persons.find_one({"keys": "P1"}))["children"]) == 2  # still their child until deleted
    # Once the grace period is over, the detached pupil is deleted and the parent's links follow.
    summary = await run_import(docstore, outbox, second, now=datetime.now(UTC) + timedelta(days=29))
    assert summary.deleted == 0
    summary = await run_import(docstore, outbox, second, now=datetime.now(UTC) + timedelta(days=31))
    assert summary.deleted == 1
    assert await persons.find_one({"keys": "E2"}) is None
    assert (await persons.find_one({"keys": "P1"}))["children"] == [(await persons.find_one({"keys": "E1"}))["_id"]]

    # A delta: a modify of an unknown id is an add; a delete removes at once.
    feed(
        delta,
        "Eleve",
        request(
            "E9",
            {
                "ENTPersonJointure": "E9",
                "sn": "NEW",
                "givenName": "Ana",
                "ENTPersonDateNaissance": "02/02/2014",
                "ENTEleveStructRattachId": "S1",
            },
            op="modifyRequest",
        ),
        request("E3", {}, op="deleteRequest"),
        mode="Delta",
    )
    summary = await run_import(docstore, outbox, delta)
    assert (summary.created, summary.deleted) == (1, 1)
    assert await persons.find_one({"keys": "E9"}) is not None
    assert await persons.find_one({"keys": "E3"}) is None


async def test_an_update_names_what_changed(tmp_path: Path, docstore: Docstore, outbox: Outbox, bus: Bus) -> None:
    """Each person's update says which fields changed, so that a service keeping none of them passes it by: a
    night's delta of first names costs nothing to the catalog."""
    uai = uai_for(1)

    async def last_update() -> pb.PersonUpdated:
        await stream_count(bus, outbox)
        return decode((await bus.js.get_last_msg("IDENTITY", PERSON_UPDATED)).data).unpack(pb.PersonUpdated)

    first, renamed, moved = tmp_path / "first", tmp_path / "renamed", tmp_path / "moved"
    feed(first, "EtabEducNat", school("S1", uai, ["6A", "6B"]))
    feed(first, "Eleve", pupil("E1", "S1"))
    await run_import(docstore, outbox, first)

    feed(renamed, "EtabEducNat", school("S1", uai, ["6A", "6B"]))
    feed(renamed, "Eleve", pupil("E1", "S1", givenName="Léna"))
    assert (await run_import(docstore, outbox, renamed)).updated == 1
    told = await last_update()
    assert told.person.first_name == "Léna"
    assert list(told.changed) == ["last_name", "first_name"]

    feed(moved, "EtabEducNat", school("S1", uai, ["6A", "6B"]))
    feed(moved, "Eleve", pupil("E1", "S1", cls="6B", givenName="Léna"))
    assert (await run_import(docstore, outbox, moved)).updated == 1
    told = await last_update()
    assert "group_ids" in told.changed and "profiles" in told.changed
    assert "first_name" not in told.changed and "emails" not in told.changed

    # After a failed import the entries are rebuilt from the persons: their parts too.
    await DirectoryRepository(docstore).invalidate_snapshot(TENANT)
    feed(renamed, "Eleve", pupil("E1", "S1", cls="6B", givenName="Lou"))
    assert (await run_import(docstore, outbox, renamed)).updated == 1
    assert list((await last_update()).changed) == ["last_name", "first_name"]


def test_command_line_exit_codes_and_priority(
    tmp_path: Path, docstore: Docstore, nats_server, docstore_server, database_name: str
) -> None:
    env = {
        "MAILLE_IDENTITY_NATS_URL": nats_server.url,
        "MAILLE_IDENTITY_MONGODB_URL": docstore_server.url,
        "MAILLE_IDENTITY_DATABASE": database_name,
        "MAILLE_IDENTITY_NATS_CONNECT_TIMEOUT": "5",
        "MAILLE_IDENTITY_ENVIRONMENT": "development",
        "PATH": "/usr/bin:/bin",
    }
    command = [str(Path(sys.executable).parent / "maille-identity"), "import-aaf"]
    folder = tmp_path / "feed"
    feed(folder, "EtabEducNat", school("S1", uai_for(1)))
    feed(folder, "Eleve", pupil("E1", "S1"), pupil("E2", "S1", born="99/99/2015"))
    running = subprocess.Popen(
        [*command, str(folder), "--report", str(tmp_path / "r.txt")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    niceness = nice_when_done(running.pid, deadline=120)  # read before it is reaped
    out, err = running.communicate(timeout=10)
    assert running.returncode == 0, err
    assert "1 rejected" in out and str(tmp_path / "r.txt") in out
    assert niceness == 10  # the import yields the cores to the people using the platform
    missing = subprocess.run(
        [*command, str(tmp_path / "nowhere")], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert missing.returncode == 1
    assert "0 files" in missing.stdout


def nice_when_done(pid: int, deadline: float) -> int:
    """The nice value of process `pid` as it ended (a process not yet reaped keeps its /proc entry)."""
    ends = time.monotonic() + deadline
    while time.monotonic() < ends:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] == "Z":  # state; the nice value is the stat's 19th field
            return int(fields[16])
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still running after {deadline}s")


async def test_an_import_cut_short_is_mended_by_the_next(tmp_path: Path, docstore: Docstore, outbox: Outbox) -> None:
    """A crash after a person's event went out but before the person was written: the next import writes
    them, with the id their event carried."""
    folder = tmp_path / "feed"
    feed(folder, "EtabEducNat", school("S1", uai_for(1)))
    feed(folder, "Eleve", pupil("E1", "S1"), pupil("E2", "S1"))
    await run_import(docstore, outbox, folder)
    persons = docstore.db.persons
    e2 = await persons.find_one({"keys": "E2"})
    await persons.delete_one({"_id": e2["_id"]})  # as if the import had stopped before writing E2
    await DirectoryRepository(docstore).invalidate_snapshot(TENANT)  # … which leaves the snapshot unsaved
    summary = await run_import(docstore, outbox, folder)
    assert (summary.created, summary.unchanged) == (1, 2)  # E2 made anew; the structure and E1 unchanged
    assert (await persons.find_one({"keys": "E2"}))["_id"] == e2["_id"]
    assert await persons.count_documents({}) == 2


async def test_a_pupil_unchanged_follows_a_parent_made_anew(tmp_path: Path, docstore: Docstore, outbox: Outbox) -> None:
    full, delta = tmp_path / "full", tmp_path / "delta"
    feed(full, "EtabEducNat", school("S1", uai_for(1)))
    feed(full, "Eleve", pupil("E1", "S1", adults=["P1"]))
    feed(full, "PersRelEleve", parent("P1"))
    await run_import(docstore, outbox, full)
    feed(delta, "PersRelEleve", request("P1", {}, op="deleteRequest"), mode="Delta")
    await run_import(docstore, outbox, delta)
    await run_import(docstore, outbox, full)  # the same pupil record, the parent back with a new ENT id
    persons = docstore.db.persons
    p1 = await persons.find_one({"keys": "P1"})
    e1 = await persons.find_one({"keys": "E1"})
    assert e1["relatives"][0]["person"] == p1["_id"]
    assert p1["children"] == [e1["_id"]]


async def test_an_import_leaves_the_collector_of_its_process_as_it_found_it(
    tmp_path: Path, docstore: Docstore, outbox: Outbox
) -> None:
    # Imports also run inside the identity service (operator API jobs): the collector's thresholds and
    # frozen objects, changed for the bulk work, must be put back, even when the import fails.
    import gc

    before = gc.get_threshold()
    generate(tmp_path / "feed", persons=50, schools=1)
    await run_import(docstore, outbox, tmp_path / "feed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0

    class Failing(Works):
        async def commit(self, work, *, after=None) -> None:  # the docstore goes away mid-import
            raise ConnectionError("docstore gone")

    generate(tmp_path / "other", persons=50, schools=1, seed=3)
    with pytest.raises(ConnectionError):
        await import_feeds(
            DirectoryRepository(docstore),
            EventBatch(Failing(docstore, outbox, source="identity"), tenant="ac-other"),
            [tmp_path / "other"],
            tenant="ac-other",
            check_uai_letter=True,
            id_secret=b"k",
        )
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
