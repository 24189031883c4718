"""A day of uses in three schools, told as the services tell them, counted by the observatory on real NATS and the
docstore: the counts a principal reads, the distinct persons within the sketch's error, the small cells left out
(and not recoverable from the totals), who sees what, and uses told again or replayed that change nothing."""

from __future__ import annotations

import io
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq

from maille.observatory.v1 import usage_pb2 as pb
from maille_contracts import USE_RECORDED
from maille_kit.events import make_envelope
from maille_kit.usage import PARIS, Kind, pseudonym
from maille_observatory.ingest import DURABLE, Ingest
from maille_observatory.repository import DAYS

from .conftest import KEY, Observatory, person

A, B, C = "0350001L", "0350002M", "0350003N"
PRINCIPAL_A, RECTORAT = "dir-a", "rectorat-1"


def school_day() -> date:
    """The last Tuesday before today (a school day, well within the raw record's 30 days)."""
    day = date.today() - timedelta(days=1)
    while day.weekday() != 1:
        day -= timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS).timestamp() * 1000)


def pupils(uai: str, n: int, classes: list[str]) -> list[str]:
    return [f"elv-{uai}-{i:03d}" for i in range(n)]


async def a_day(obs: Observatory) -> dict[str, int]:
    """Three schools, their people, and one school day of their uses; what the day should count."""
    await obs.schools((A, "Collège Anne de Bretagne"), (B, "Lycée Chateaubriand"), (C, "Collège des Landes"))
    people = [person(PRINCIPAL_A, "National_DIR", A), person("dir-b", "National_DIR", B)]
    classes_a = [f"{A}$6{letter}" for letter in "ABCD"]
    for i in range(120):
        people.append(person(f"tut-a-{i:03d}", "National_TUT", A))
        people.append(
            person(f"elv-a-{i:03d}", "National_ELV", A, classes=(classes_a[i // 30],), adults=(f"tut-a-{i:03d}",))
        )
    people += [person(f"ens-a-{i:02d}", "National_ENS", A) for i in range(20)]
    people += [person(f"elv-b-{i:03d}", "National_ELV", B, classes=(f"{B}$2NDE1",)) for i in range(80)]
    people += [person(f"ens-c-{i}", "National_ENS", C) for i in range(3)]
    await obs.persons(people)

    day, uses = school_day(), obs.uses

    def told(kind: int, who: str, uai: str, profile: str, hour: int, minute: int = 0, **more: Any) -> None:
        uses.record(kind, who, school=uai, profile=profile, at_ms=at(day, hour, minute), **more)

    def signs_in(who: str, uai: str, profile: str, hour: int, minute: int = 0, **more: Any) -> None:
        idp = "educonnect" if profile in ("National_ELV", "National_TUT") else "agents"
        told(Kind.KIND_SIGN_IN, who, uai, profile, hour, minute, service="connexion", idp=idp, **more)

    expected = {"a-8h": 0, "a-13h": 0, "a-19h": 0, "a-pupils": 0, "a-parents-6A": 0}
    for i in range(120):
        klass = [classes_a[i // 30]]
        if i % 3:
            signs_in(f"elv-a-{i:03d}", A, "National_ELV", 8, i % 50, classes=klass)
            expected["a-8h"] += 1
        if i % 5 == 0:
            signs_in(f"elv-a-{i:03d}", A, "National_ELV", 13, 5, classes=klass)
            expected["a-13h"] += 1
        if i % 3 or i % 5 == 0:
            expected["a-pupils"] += 1
        # Parents: in 6A-6C those of every fourth pupil; in 6D only two.
        if (i % 4 == 0 and i < 90) or i in (92, 96):
            signs_in(f"tut-a-{i:03d}", A, "National_TUT", 19, 30, classes=klass)
            expected["a-19h"] += 1
            expected["a-parents-6A"] += i < 30
    for i in range(20):
        signs_in(f"ens-a-{i:02d}", A, "National_ENS", 8, 10)
        expected["a-8h"] += 1
        told(Kind.KIND_SERVICE_OPENED, f"ens-a-{i:02d}", A, "National_ENS", 8, 15, service="messagerie")
        told(Kind.KIND_MAIL_SENT, f"ens-a-{i:02d}", A, "National_ENS", 8, 20, service="messagerie")
    # Two pupils of B open a resource of a small vendor, sixty of a large one.
    for i in range(80):
        vendor = "petit-editeur" if i < 2 else "grand-editeur"
        signs_in(f"elv-b-{i:03d}", B, "National_ELV", 9)
        if i < 62:
            told(
                Kind.KIND_RESOURCE_OPENED,
                f"elv-b-{i:03d}",
                B,
                "National_ELV",
                10,
                service="mediacentre",
                vendor=vendor,
                resource=f"ark:/{vendor}/1",
            )
    # C: three teachers only — too few to show.
    for i in range(3):
        signs_in(f"ens-c-{i}", C, "National_ENS", 10)
    await obs.ok(
        "PUT",
        "/operator/territories/rectorat",
        "ops-1",
        "operator",
        json={"kind": "academie", "name": "Rectorat", "viewers": [RECTORAT]},
    )
    await obs.counted()
    return expected


def cells(chart: dict) -> dict[str, dict]:
    return {c["key"]: c for c in chart["cells"]}


async def test_a_principal_reads_the_day_of_their_school_counted_and_small_cells_left_out(
    observatory: Observatory,
) -> None:
    expected = await a_day(observatory)
    board = await observatory.ok("GET", f"/dashboards/school:{A}", PRINCIPAL_A)
    hours = cells(board["charts"]["hours"])
    assert hours["8"]["value"] == expected["a-8h"] and not hours["8"]["secret"]
    assert hours["13"]["value"] == expected["a-13h"]
    assert hours["19"]["value"] == expected["a-19h"]
    assert hours["3"]["value"] == 0 and not hours["3"]["secret"]
    month = board["month"]
    active = {s["profile"]: s for s in board["charts"]["active"]["series"] if s["label"].endswith("cette année")}
    point = next(p for p in active["National_ELV"]["points"] if p["month"] == month)
    assert abs(point["persons"] - expected["a-pupils"]) <= 0.02 * expected["a-pupils"]
    assert point["rate"] == round(100 * point["persons"] / 120, 1)
    # Parents per class: 6A's eight of thirty read; 6D's two are not shown, nor the smallest other class with them.
    parents = cells(board["charts"]["parents"])
    assert parents[f"{A}$6A"]["value"] == expected["a-parents-6A"] and parents[f"{A}$6A"]["of"] == 30
    assert parents[f"{A}$6D"]["secret"] and parents[f"{A}$6D"]["value"] is None
    assert sum(c["secret"] for c in parents.values()) >= 2
    csv = await observatory.ok("GET", f"/dashboards/school:{A}/hours.csv", PRINCIPAL_A)
    assert csv.headers["content-type"].startswith("text/csv")
    assert f"8;8 h;{expected['a-8h']}" in csv.text


async def test_the_academie_sees_every_school_the_small_ones_left_out_beyond_subtraction(
    observatory: Observatory,
) -> None:
    await a_day(observatory)
    scopes = {s["id"] for s in await observatory.ok("GET", "/scopes", RECTORAT)}
    assert {"academie", "type:COLLEGE", "type:LYCEE", f"school:{A}", f"school:{B}", f"school:{C}"} <= scopes
    board = await observatory.ok("GET", "/dashboards/academie", RECTORAT)
    schools = cells(board["charts"]["schools"])
    assert schools[C]["secret"] and schools[C]["value"] is None  # three teachers
    assert sum(c["secret"] for c in schools.values()) >= 2  # and one more with it: no total gives C back
    vendors = cells(board["charts"]["vendors"])
    assert vendors["grand-editeur"]["value"] is None or vendors["petit-editeur"]["secret"]
    assert vendors["petit-editeur"]["value"] is None
    # The research export: every school's month, each breakdown protected the same way.
    year = board["school_year"]
    for table in ("actifs", "usages"):
        answer = await observatory.ok("GET", f"/exports/academie/{year}/{table}.parquet", RECTORAT)
        rows = pq.read_table(io.BytesIO(answer.content)).to_pylist()
        assert rows, table
        groups: dict[tuple, list[dict]] = {}
        for row in rows:
            key = (row["mois"], row["uai"], row.get("dimension"), row["profil"] if table == "usages" else None)
            groups.setdefault(key, []).append(row)
        for key, found in groups.items():
            hidden = [r for r in found if r["secret"]]
            assert not hidden or len(hidden) >= 2 or len(found) == 1, (key, found)
    actifs = pq.read_table(
        io.BytesIO((await observatory.ok("GET", f"/exports/academie/{year}/actifs.parquet", RECTORAT)).content)
    ).to_pylist()
    of_c = [r for r in actifs if r["uai"] == C]
    assert of_c and all(r["secret"] and r["actifs"] is None for r in of_c)


async def test_a_principal_sees_only_their_school_and_an_operator_only_the_technical_figures(
    observatory: Observatory,
) -> None:
    await a_day(observatory)
    assert [s["id"] for s in await observatory.ok("GET", "/scopes", PRINCIPAL_A)] == [f"school:{A}"]
    refused = await observatory.call("GET", f"/dashboards/school:{B}", PRINCIPAL_A)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert "not among those you may see" in refused.json()["detail"]
    assert (await observatory.call("GET", "/dashboards/academie", PRINCIPAL_A)).status_code == 403
    assert (
        await observatory.call("GET", f"/exports/school:{B}/2026-2027/usages.parquet", PRINCIPAL_A)
    ).status_code == 403
    assert (await observatory.call("GET", "/dashboards/academie", "ops-1", "operator")).status_code == 403
    figures = await observatory.ok("GET", "/operator/figures", "ops-1", "operator")
    assert figures["folded"] > 300 and figures["rejected"] == {} and figures["pending"] == 0
    assert (await observatory.call("GET", "/operator/figures", PRINCIPAL_A)).status_code == 403
    bad = await observatory.call("GET", f"/dashboards/school:{A}", PRINCIPAL_A, params={"year": "2026-2029"})
    assert bad.status_code == 422 and "school year" in bad.json()["detail"]
    assert (await observatory.call("GET", "/dashboards/school:nope", PRINCIPAL_A)).status_code == 422


async def test_uses_told_again_or_replayed_change_nothing_and_late_ones_find_their_day(
    observatory: Observatory,
) -> None:
    await a_day(observatory)
    before = await observatory.ok("GET", f"/dashboards/school:{A}", PRINCIPAL_A)
    js = observatory.bus.js
    info = await js.stream_info("OBSERVATORY")
    # Told again: the same batches, under the same ids (a publisher that lost JetStream's acknowledgement).
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        raw = await js.get_msg("OBSERVATORY", seq)
        await js.publish(USE_RECORDED, raw.data, headers={"Nats-Msg-Id": raw.headers["Nats-Msg-Id"]})
    assert (await js.stream_info("OBSERVATORY")).state.messages == info.state.messages
    # Replayed: the ingest starts again from the stream's first use.
    ingest: Ingest = observatory.part(Ingest)
    await ingest.stop()
    await js.delete_consumer("OBSERVATORY", DURABLE)
    ingest.held.clear()
    ingest.last_seq = ingest.flushed_seq = 0
    ingest._subscription = None
    ingest.start()
    await observatory.counted()
    after = await observatory.ok("GET", f"/dashboards/school:{A}", PRINCIPAL_A)
    assert after["charts"] == before["charts"]

    # Late: a use of ten days ago is counted in its own day; one older than the raw record's 30 days is left out,
    # as are a use without a pseudonym and an event that is not one.
    late_day = date.today() - timedelta(days=10)
    observatory.uses.record(
        Kind.KIND_SIGN_IN, "ens-a-00", school=A, profile="National_ENS", service="connexion", at_ms=at(late_day, 11)
    )
    observatory.uses.record(
        Kind.KIND_SIGN_IN,
        "ens-a-00",
        school=A,
        profile="National_ENS",
        service="connexion",
        at_ms=int((time.time() - 40 * 86400) * 1000),
    )
    blank = make_envelope(
        type=USE_RECORDED,
        tenant="t",
        source="tests",
        payload=pb.UseRecorded(uses=[pb.Use(id="x", at_ms=int(time.time() * 1000), kind=pb.KIND_SIGN_IN, school=A)]),
    )
    await js.publish(USE_RECORDED, blank.SerializeToString())
    await js.publish(USE_RECORDED, b"not an event")
    await observatory.counted()
    stored = await observatory.runtime().docstore.db[DAYS].find_one({"_id": f"{late_day.isoformat()}|{A}"})
    assert sum(stored["hours"]["connexion|National_ENS|connexion||"]) == 1
    assert ingest.rejected == {"too-late": 1, "no-pseudonym": 1, "malformed": 1}


def test_a_pseudonym_names_a_person_within_a_month_only() -> None:
    december = int(datetime(2026, 12, 9, tzinfo=UTC).timestamp() * 1000)
    later = int(datetime(2026, 12, 23, tzinfo=UTC).timestamp() * 1000)
    january = int(datetime(2027, 1, 13, tzinfo=UTC).timestamp() * 1000)
    assert pseudonym(KEY.encode(), "p1", december) == pseudonym(KEY.encode(), "p1", later)
    assert pseudonym(KEY.encode(), "p1", december) != pseudonym(KEY.encode(), "p1", january)
    assert pseudonym(KEY.encode(), "p1", december) != pseudonym(KEY.encode(), "p2", december)
    assert pseudonym(b"another key", "p1", december) != pseudonym(KEY.encode(), "p1", december)
