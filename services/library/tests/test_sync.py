"""Reader sync: a school that asks for it has its PMB readers follow the directory — made, changed (class as reader
group), removed — idempotently; a reconcile repairs what PMB lost; the semicolon CSV for PMB's import screen."""

from __future__ import annotations

import time

from maille.identity.v1 import directory_pb2 as pb
from maille_devstack.pytest_plugin import until
from maille_kit.events import make_envelope
from maille_library.main import reconcile
from maille_library.sync import ReaderSync

from .conftest import API, SCHOOLS, Library, person

A, B, C = SCHOOLS


def pupil(person_id: str, uai: str, klass: str, last: str = "Martin") -> pb.Person:
    p = person(person_id, (uai, "National_ELV"))
    p.last_name = last
    p.group_ids.append(f"S{uai}${klass}")
    return p


async def publish(library: Library, fact: str, payload) -> None:
    envelope = make_envelope(type=f"identity.person.{fact}.v1", tenant="ac-test", source="identity", payload=payload)
    await library.bus.js.publish(envelope.type, envelope.SerializeToString(), headers={"Nats-Msg-Id": envelope.id})


async def test_pmb_readers_follow_the_directory(library: Library) -> None:
    operator = library.operator()
    await library.client.put(
        f"{API}/operator/schools/{A}/pmb", headers=operator, json=library.connection(A, syncReaders=True, readerCateg=3)
    )
    await library.client.put(
        f"{API}/operator/schools/{B}/pmb", headers=operator, json=library.connection(B)
    )  # B does not ask for it
    cdi = library.pmb.databases[f"cdi{A}"]
    await library.persons(
        pupil("p-1", A, "6A"), pupil("p-2", A, "5A"), pupil("p-3", B, "6A"), person("t-1", (A, "National_ENS"))
    )

    async def readers(*ids: str) -> bool:
        return all(i in cdi.readers for i in ids)

    await until(lambda: readers("p-1", "p-2", "t-1"), "the readers in PMB")
    assert cdi.readers["p-1"]["groupe_list"] == [{"id": 1}] and cdi.readers["p-2"]["groupe_list"] == [{"id": 3}]
    assert (
        cdi.readers["p-1"]["cb"] == "p-1"
        and cdi.readers["p-1"]["categ"] == 3
        and cdi.readers["t-1"]["groupe_list"] == []
    )
    assert library.pmb.databases[f"cdi{B}"].readers == {}

    # A change of class and of name is written; the same person published again is not written twice.
    writes = len([m for _, m in library.pmb.calls if m in ("pmbesEmpr_create_empr", "pmbesEmpr_update_empr")])
    await publish(library, "updated", pb.PersonUpdated(person=pupil("p-1", A, "6B", last="Martin-Durand")))
    await until(lambda: _is(cdi.readers["p-1"], nom="Martin-Durand"), "the change in PMB")
    assert cdi.readers["p-1"]["groupe_list"] == [{"id": 2}]
    await publish(library, "updated", pb.PersonUpdated(person=pupil("p-1", A, "6B", last="Martin-Durand")))
    await publish(library, "deleted", pb.PersonDeleted(id="p-2"))
    await until(lambda: _gone(cdi.readers, "p-2"), "the reader removed")
    assert (
        len([m for _, m in library.pmb.calls if m in ("pmbesEmpr_create_empr", "pmbesEmpr_update_empr")]) == writes + 1
    )

    # A reader lost by PMB (a restored backup) comes back at the reconcile, the others written again as they are.
    del cdi.readers["t-1"]
    cdi.readers["p-1"]["nom"] = "Changé à la main"
    counts = (await library.client.post(f"{API}/operator/readers/reconcile", headers=operator)).json()
    assert (
        counts == {"created": 1, "updated": 1} and "t-1" in cdi.readers and cdi.readers["p-1"]["nom"] == "Martin-Durand"
    ), counts
    assert (
        await library.client.post(f"{API}/operator/readers/reconcile", headers=library.as_person("p-1"))
    ).status_code == 403
    assert await reconcile(library.service.state.runtime.settings) == {"updated": 2}  # `maille-library reconcile`

    csv = await library.client.get(f"{API}/operator/schools/{A}/readers.csv", headers=operator)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].split(";")[:3] == ["id", "nom", "prenom"] and len(lines) == 3
    assert lines[1] == "p-1;Martin-Durand;Léa;;;;;;6B;;p-1"


async def test_a_pupil_with_loans_stays_a_reader_and_is_named(library: Library) -> None:
    await library.client.put(
        f"{API}/operator/schools/{A}/pmb", headers=library.operator(), json=library.connection(A, syncReaders=True)
    )
    cdi = library.pmb.databases[f"cdi{A}"]
    await library.persons(pupil("p-9", A, "3C"))
    await until(lambda: _has(cdi.readers, "p-9"), "the reader")
    cdi.loans["p-9"] = [{"kind": "current", "notice_id": 1}]
    await publish(library, "deleted", pb.PersonDeleted(id="p-9"))
    sync = library.service.state.runtime.parts.get(ReaderSync)
    await until(lambda: _noted(sync, "p-9"), "the refusal noted")
    assert "p-9" in cdi.readers and "prêts en cours" in sync.errors[-1]


async def test_a_school_that_starts_syncing_gets_all_its_readers(library: Library) -> None:
    await library.persons(pupil("p-20", C, "6A"), pupil("p-21", C, "3C"))
    # Nobody syncs school C yet: nothing is noted for its persons, nothing written to PMB.
    pending = library.service.state.runtime.docstore.db["reader_sync_pending"]
    assert await pending.count_documents({"_id": {"$in": ["p-20", "p-21"]}}) == 0
    cdi = library.pmb.databases[f"cdi{C}"]
    # Its CDI registered with reader sync: the persons already known become readers, without any new event.
    answer = await library.client.put(
        f"{API}/operator/schools/{C}/pmb", headers=library.operator(), json=library.connection(C, syncReaders=True)
    )
    assert answer.status_code == 201
    await until(lambda: _has(cdi.readers, "p-21"), "the school's readers in PMB")
    assert "p-20" in cdi.readers and cdi.readers["p-21"]["groupe_list"] == [{"id": 4}]


async def test_a_change_reaches_pmb_paced_a_new_reader_at_once(library: Library) -> None:
    """A night's delta renaming a school's pupils reaches its PMB at the paced rate; new pupils are not held back."""
    await library.client.put(
        f"{API}/operator/schools/{A}/pmb", headers=library.operator(), json=library.connection(A, syncReaders=True)
    )
    cdi = library.pmb.databases[f"cdi{A}"]
    library.service.state.runtime.parts.get(ReaderSync).updates_per_second = 2
    pupils = [pupil(f"p-{n}", A, "4B") for n in range(30, 42)]  # 12: paced at 2 a second, they would take 5.5 s

    began = time.monotonic()
    await library.persons(*pupils)
    await until(lambda: _all(cdi.readers, [p.id for p in pupils], nom="Martin"), "the new readers")
    assert time.monotonic() - began < 3.0

    began = time.monotonic()
    for p in pupils:
        await publish(library, "updated", pb.PersonUpdated(person=pupil(p.id, A, "4B", last="Martin-Bernard")))
    await until(lambda: _all(cdi.readers, [p.id for p in pupils], nom="Martin-Bernard"), "the renames in PMB")
    assert time.monotonic() - began >= 5.4  # 11 intervals of half a second after the first


def _all(readers: dict, keys: list[str], **fields) -> bool:
    async def check() -> bool:
        return all(key in readers and all(readers[key].get(k) == v for k, v in fields.items()) for key in keys)

    return check()


def _is(reader: dict, **fields) -> bool:
    async def check() -> bool:
        return all(reader.get(k) == v for k, v in fields.items())

    return check()


def _gone(readers: dict, key: str):
    async def check() -> bool:
        return key not in readers

    return check()


def _has(readers: dict, key: str):
    async def check() -> bool:
        return key in readers

    return check()


def _noted(sync, person_id: str):
    async def check() -> bool:
        return any(person_id in e for e in sync.errors)

    return check()
