"""Writing: drafts saved as one types, attachments (size, quota, type from the content, virus scan, who may
download), sending later, recall, one's own lists, the recipient picker, and rules that follow a pupil who
changes class."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from maille_devstack.pytest_plugin import until
from maille_messaging.sending import Sending

from .conftest import Mail, group, person
from .test_sending import a_class, teacher_of

API = "/api/messaging/v1"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


async def test_a_draft_saved_as_one_types_then_sent_with_its_attachment(mail: Mail) -> None:
    _, pupils = a_class(mail)
    writer, reader, outsider = pupils[14], pupils[15], pupils[16]
    me = mail.who(writer)
    created = await mail.client.post(
        f"{API}/drafts", headers=me, json={"to": [person(reader)], "subject": "Expo", "body": "<p>Dé</p>"}
    )
    assert created.status_code == 201
    draft = created.json()["id"]
    saved = await mail.client.put(
        f"{API}/drafts/{draft}", headers=me, json={"to": [person(reader)], "subject": "Exposé", "body": "<p>Début</p>"}
    )
    assert saved.status_code == 200
    drafts = await mail.folder(writer, "drafts")
    assert [(e["id"], e["subject"]) for e in drafts["entries"]] == [(draft, "Exposé")]

    uploaded = await mail.client.post(
        f"{API}/drafts/{draft}/attachments", headers=me, params={"name": "plan.txt"}, content=PDF
    )
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()
    assert attachment["type"] == "application/pdf" and attachment["size"] == len(PDF)  # the content, not the name

    sent = await mail.client.post(f"{API}/drafts/{draft}/send", headers=me)
    assert sent.status_code == 201, sent.text
    message_id = sent.json()["id"]
    assert (await mail.counts(writer))["drafts"] == (0, 0)
    inbox = await mail.folder(reader)
    assert inbox["entries"][0]["id"] == message_id and inbox["entries"][0]["attachments"] == 1

    url = f"{API}/messages/{message_id}/attachments/{attachment['id']}"
    download = await mail.client.get(url, headers=mail.who(reader))
    assert download.status_code == 200 and download.content == PDF
    assert (
        download.headers["content-type"] == "application/pdf" and "plan.txt" in download.headers["content-disposition"]
    )
    assert (await mail.client.get(url, headers=mail.who(outsider))).status_code == 404
    assert (await mail.client.post(f"{API}/drafts/{draft}/send", headers=me)).status_code == 404  # sent already


async def test_attachments_over_the_size_limit_the_quota_or_of_a_refused_type_are_not_kept(mail: Mail) -> None:
    _, pupils = a_class(mail)
    writer = pupils[17]
    me = mail.who(writer)
    settings = mail.service.state.runtime.settings
    draft = (await mail.client.post(f"{API}/drafts", headers=me, json={"subject": "Pièces"})).json()["id"]

    too_big = await mail.client.post(
        f"{API}/drafts/{draft}/attachments",
        headers=me,
        params={"name": "gros.png"},
        content=PNG + b"\x00" * settings.attachment_max_bytes,
    )
    assert too_big.status_code == 413 and "at most" in too_big.json()["detail"]
    exe = await mail.client.post(
        f"{API}/drafts/{draft}/attachments",
        headers=me,
        params={"name": "devoir.pdf"},
        content=b"MZ\x90\x00" + b"\x00" * 200,
    )
    assert exe.status_code == 415 and "x-msdownload" in exe.json()["detail"]
    text = await mail.client.post(
        f"{API}/drafts/{draft}/attachments",
        headers=me,
        params={"name": "notes.txt"},
        content="Des notes accentuées".encode(),
    )
    assert text.status_code == 201 and text.json()["type"] == "text/plain"

    message = (await mail.client.get(f"{API}/messages/{draft}", headers=me)).json()
    assert [a["name"] for a in message["attachments"]] == ["notes.txt"]
    bad_name = await mail.client.post(
        f"{API}/drafts/{draft}/attachments", headers=me, params={"name": "../x"}, content=PDF
    )
    assert bad_name.status_code == 422
    assert (
        await mail.client.delete(f"{API}/drafts/{draft}/attachments/{text.json()['id']}", headers=me)
    ).status_code == 204
    assert (await mail.client.get(f"{API}/messages/{draft}", headers=me)).json()["attachments"] == []


@pytest.mark.parametrize("mail", [{"quota_bytes": 2048}], indirect=True)
async def test_attachments_over_the_quota_are_refused_until_room_is_made(mail: Mail) -> None:
    _, pupils = a_class(mail)
    me = mail.who(pupils[17])
    draft = (await mail.client.post(f"{API}/drafts", headers=me, json={"subject": "Quota"})).json()["id"]
    first = await mail.client.post(
        f"{API}/drafts/{draft}/attachments", headers=me, params={"name": "a.png"}, content=PNG + b"\x00" * 1200
    )
    assert first.status_code == 201
    over = await mail.client.post(
        f"{API}/drafts/{draft}/attachments", headers=me, params={"name": "b.png"}, content=PNG + b"\x00" * 1200
    )
    assert over.status_code == 413 and "quota" in over.json()["detail"]
    # What the portal shows the person: the space their files take, of how much.
    quota = (await mail.client.get(f"{API}/quota", headers=me)).json()
    assert quota == {"used": len(PNG) + 1200, "limit": 2048}
    await mail.client.delete(f"{API}/drafts/{draft}", headers=me)  # the draft and its file gone: room again
    assert (await mail.client.get(f"{API}/quota", headers=me)).json() == {"used": 0, "limit": 2048}
    draft = (await mail.client.post(f"{API}/drafts", headers=me, json={"subject": "Quota"})).json()["id"]
    again = await mail.client.post(
        f"{API}/drafts/{draft}/attachments", headers=me, params={"name": "b.png"}, content=PNG + b"\x00" * 1200
    )
    assert again.status_code == 201


class FakeClamd:
    """A ClamAV daemon's INSTREAM protocol, finding the EICAR test file (the scanner's hook under test)."""

    def __init__(self) -> None:
        self.scanned = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readuntil(b"\0") == b"zINSTREAM\0"
        data = b""
        while size := struct.unpack("!I", await reader.readexactly(4))[0]:
            data += await reader.readexactly(size)
        self.scanned += 1
        writer.write(
            b"stream: Eicar-Signature FOUND\0" if b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" in data else b"stream: OK\0"
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def clamd() -> AsyncIterator[tuple[FakeClamd, str]]:
    fake = FakeClamd()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake, f"127.0.0.1:{port}"


async def test_a_virus_scanner_plugged_in_refuses_an_infected_file(mail: Mail, clamd) -> None:
    from maille_messaging.attachments import ClamdScanner

    fake, address = clamd
    sending = mail.service.state.runtime.parts.get(Sending)
    sending.scanner = ClamdScanner(address, timeout=5)
    _, pupils = a_class(mail)
    me = mail.who(pupils[18])
    draft = (await mail.client.post(f"{API}/drafts", headers=me, json={"subject": "Scan"})).json()["id"]
    infected = await mail.client.post(
        f"{API}/drafts/{draft}/attachments", headers=me, params={"name": "eicar.txt"}, content=EICAR
    )
    assert infected.status_code == 422 and "Eicar-Signature" in infected.json()["detail"]
    clean = await mail.client.post(
        f"{API}/drafts/{draft}/attachments", headers=me, params={"name": "ok.pdf"}, content=PDF
    )
    assert clean.status_code == 201 and fake.scanned == 2


async def test_sending_later_then_cancelling_and_recalling_unread_copies(mail: Mail) -> None:
    cls, pupils = a_class(mail)
    teacher = teacher_of(mail, cls)
    me = mail.who(teacher)
    later = datetime.now(UTC) + timedelta(hours=2)
    scheduled = await mail.send(
        teacher, to=[person(pupils[19])], subject="Rappel", send_at=later.isoformat(), expect=202
    )
    assert scheduled["state"] == "scheduled"
    assert [e["id"] for e in (await mail.folder(teacher, "scheduled"))["entries"]] == [scheduled["id"]]
    sending = mail.service.state.runtime.parts.get(Sending)
    assert await sending.send_due() == 0
    assert await sending.send_due(now=later + timedelta(seconds=1)) == 1
    assert (await mail.folder(pupils[19]))["entries"][0]["subject"] == "Rappel"
    assert (await mail.counts(teacher))["scheduled"] == (0, 0)

    cancelled = await mail.send(
        teacher, to=[person(pupils[19])], subject="Annulé", send_at=later.isoformat(), expect=202
    )
    await mail.client.post(f"{API}/messages/trash", headers=me, json={"ids": [cancelled["id"]]})
    assert await sending.send_due(now=later + timedelta(seconds=1)) == 0
    naive = await mail.send(teacher, to=[person(pupils[19])], send_at="2030-01-01T08:00:00", expect=422)
    assert "time zone" in str(naive)

    to_class = await mail.send(teacher, to=[group(f"{cls}/ELV")], subject="Erreur de destinataires")
    await mail.client.post(f"{API}/messages/read", headers=mail.who(pupils[20]), json={"ids": [to_class["id"]]})
    recall = await mail.client.post(f"{API}/messages/{to_class['id']}/recall", headers=me)
    assert recall.json() == {"recalled": len(pupils) - 1, "kept": 1}
    assert (await mail.client.get(f"{API}/messages/{to_class['id']}", headers=mail.who(pupils[20]))).status_code == 200
    assert (await mail.client.get(f"{API}/messages/{to_class['id']}", headers=mail.who(pupils[21]))).status_code == 404
    assert (
        await mail.client.post(f"{API}/messages/{to_class['id']}/recall", headers=mail.who(pupils[20]))
    ).status_code == 404


@pytest.mark.parametrize("mail", [{"recall_minutes": 0}], indirect=True)
async def test_no_recall_past_the_window(mail: Mail) -> None:
    cls, pupils = a_class(mail)
    teacher = teacher_of(mail, cls)
    late = await mail.send(teacher, to=[person(pupils[19])])
    await asyncio.sleep(0.01)
    too_late = await mail.client.post(f"{API}/messages/{late['id']}/recall", headers=mail.who(teacher))
    assert too_late.status_code == 409 and "within 0 minutes" in too_late.json()["detail"]
    assert (await mail.folder(pupils[19]))["entries"][0]["id"] == late["id"]


async def test_own_lists_and_the_recipient_picker_offer_only_whom_the_rules_allow(mail: Mail) -> None:
    classes = sorted(mail.directory.pupils, key=lambda c: -len(mail.directory.pupils[c]))
    mine, other = mail.directory.pupils[classes[2]], mail.directory.pupils[classes[1]]
    me = mail.who(mine[0])
    picker = (await mail.client.get(f"{API}/recipients", headers=me, params={"limit": 200})).json()
    persons = {v["id"] for v in picker if v["type"] == "person"}
    assert mine[1] in persons and not persons & set(other)
    # The groups of the rules' defaults for a pupil: their class, its teachers and head teachers, the school's staff.
    uai = classes[2].split("$", 1)[0]
    assert {v["id"] for v in picker if v["type"] == "group"} == {f"{classes[2]}/{k}" for k in ("ELV", "ENS", "HT")} | {
        f"{uai}/PERS"
    }

    made = await mail.client.post(
        f"{API}/lists", headers=me, json={"name": "Groupe de projet", "members": [mine[1], mine[2]]}
    )
    assert made.status_code == 201
    list_id = made.json()["id"]
    sent = await mail.send(mine[0], to=[{"type": "list", "id": list_id}])
    assert sent["recipients"] == 2
    assert (await mail.folder(mine[2]))["entries"][0]["id"] == sent["id"]
    await mail.client.put(f"{API}/lists/{list_id}", headers=me, json={"name": "Projet", "members": [mine[1], other[0]]})
    refused = await mail.send(mine[0], to=[{"type": "list", "id": list_id}], expect=403)
    assert refused["refused"] == [other[0]]
    unknown = await mail.send(mine[0], to=[{"type": "list", "id": "l00000000"}], expect=422)
    assert "no list" in unknown["detail"]


async def test_a_pupil_who_changes_class_writes_to_the_new_class_at_once(mail: Mail) -> None:
    classes = sorted(mail.directory.pupils, key=lambda c: -len(mail.directory.pupils[c]))
    old, new = mail.directory.pupils[classes[3]], mail.directory.pupils[classes[4]]
    mover = old[0]
    await mail.send(mover, to=[person(old[1])])
    await mail.send(mover, to=[person(new[1])], expect=403)

    # The AAF delta moves them: identity imports it, and the very next send follows the directory.
    from pymongo import MongoClient

    env = mail.directory.env
    with MongoClient(env["MAILLE_IDENTITY_MONGODB_URL"]) as client:
        doc = client[env["MAILLE_IDENTITY_DATABASE"]].persons.find_one({"_id": mover})
    key = doc["keys"][0]
    code = classes[4].split("$", 1)[1]
    delta = mail.directory.feed.parent / "delta"
    delta.mkdir(exist_ok=True)
    source = next(mail.directory.feed.glob("*_Eleve_*.xml")).read_text()
    record = _record_of(source, key)
    moved = record.replace("addRequest", "modifyRequest")
    moved = _with_class(moved, structure_key(record), code)
    name = next(mail.directory.feed.glob("*_Eleve_*.xml")).name.replace("_Complet_", "_Delta_")
    (delta / name).write_text(source.split("<ficAlimMENESR>")[0] + "<ficAlimMENESR>\n" + moved + "</ficAlimMENESR>\n")
    mail.directory.run("import-aaf", str(delta), "--report", str(delta / "report.txt"))

    async def may_write_to_new_class() -> bool:
        response = await mail.client.post(
            f"{API}/messages", headers=mail.who(mover), json={"to": [person(new[1])], "subject": "Salut"}
        )
        return response.status_code == 201

    await until(may_write_to_new_class, "the rules to follow the class change", timeout=10)
    await mail.send(mover, to=[person(old[1])], expect=403)


def _record_of(feed: str, key: str) -> str:
    for chunk in feed.split("<addRequest>")[1:]:
        record = "<addRequest>" + chunk.split("</addRequest>")[0] + "</addRequest>\n"
        if f"<id>{key}</id>" in record:
            return record
    raise AssertionError(f"no record {key} in the feed")


def structure_key(record: str) -> str:
    part = record.split('name="ENTEleveStructRattachId">')[1]
    return part.split("<value>")[1].split("</value>")[0]


def _with_class(record: str, school_key: str, code: str) -> str:
    head, rest = record.split('name="ENTEleveClasses">', 1)
    _, tail = rest.split("</attr>", 1)
    return f'{head}name="ENTEleveClasses"><value>{school_key}${code}</value></attr>{tail}'


async def test_a_scheduled_send_that_fails_is_tried_again_and_delivered_once(mail: Mail) -> None:
    """A scheduled message whose send fails (the rules, NATS or the docstore away at that moment) stays scheduled,
    leased: tried again once the lease has passed, it reaches the inbox once; after 5 tries it comes back as a draft."""
    cls, pupils = a_class(mail)
    teacher = teacher_of(mail, cls)
    later = datetime.now(UTC) + timedelta(hours=1)
    scheduled = await mail.send(
        teacher, to=[person(pupils[21])], subject="Sortie", send_at=later.isoformat(), expect=202
    )
    sending = mail.service.state.runtime.parts.get(Sending)
    real_resolve = sending.rules.resolve
    failures = 0

    async def away(**kwargs):
        nonlocal failures
        failures += 1
        raise ConnectionError("identity does not answer")

    sending.rules.resolve = away
    try:
        assert await sending.send_due(now=later + timedelta(seconds=1)) == 0
        assert await sending.send_due(now=later + timedelta(seconds=30)) == 0  # leased: not tried again yet
        assert failures == 1
        assert [e["id"] for e in (await mail.folder(pupils[21]))["entries"] if e["subject"] == "Sortie"] == []
    finally:
        sending.rules.resolve = real_resolve
    assert await sending.send_due(now=later + timedelta(minutes=3)) == 1
    assert await sending.send_due(now=later + timedelta(minutes=6)) == 0
    inbox = [e for e in (await mail.folder(pupils[21]))["entries"] if e["subject"] == "Sortie"]
    assert len(inbox) == 1 and (await mail.counts(teacher))["scheduled"] == (0, 0)

    stubborn = await mail.send(
        teacher, to=[person(pupils[21])], subject="Jamais", send_at=later.isoformat(), expect=202
    )
    sending.rules.resolve = away
    try:
        for n in range(6):
            await sending.send_due(now=later + timedelta(minutes=3 * n + 1))
    finally:
        sending.rules.resolve = real_resolve
    drafts = (await mail.folder(teacher, "drafts"))["entries"]
    assert [d["id"] for d in drafts if d["subject"] == "Jamais"] == [stubborn["id"]]
    assert scheduled["id"] != stubborn["id"]


async def test_a_draft_saved_from_two_devices_is_not_overwritten_unknowingly(mail: Mail) -> None:
    _, pupils = a_class(mail)
    writer, reader = pupils[17], pupils[18]
    me = mail.who(writer)
    created = await mail.client.post(f"{API}/drafts", headers=me, json={"to": [person(reader)], "subject": "Exposé"})
    draft, first = created.json()["id"], created.headers["etag"]
    assert first == '"1"'
    # The phone and the computer both opened version 1; the phone saves first.
    opened = await mail.client.get(f"{API}/messages/{draft}", headers=me)
    assert opened.headers["etag"] == first and opened.json()["version"] == 1
    phone = await mail.client.put(
        f"{API}/drafts/{draft}", headers=me | {"If-Match": first}, json={"subject": "Exposé (téléphone)"}
    )
    assert phone.status_code == 200 and phone.headers["etag"] == '"2"'
    computer = await mail.client.put(
        f"{API}/drafts/{draft}", headers=me | {"If-Match": first}, json={"subject": "Exposé (ordinateur)"}
    )
    assert computer.status_code == 412 and computer.json()["etag"] == '"2"'
    assert (await mail.client.get(f"{API}/messages/{draft}", headers=me)).json()["subject"] == "Exposé (téléphone)"
