"""A mailbox as its owner uses it: folders and counts, pages with stable cursors, read marks, moves, the
trash and its retention, search, the RGPD export, and erasure when identity erases the person."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from maille_devstack.pytest_plugin import running, until
from maille_kit.migrations import COLLECTION as MIGRATION_RECORDS
from maille_kit.migrations import migrate
from maille_messaging import sending as sending_module
from maille_messaging.mailbox import Mailbox
from maille_messaging.main import app
from maille_messaging.repository import MIGRATIONS
from maille_messaging.schemas import new_message_id

from .conftest import Mail, person
from .test_sending import a_class

API = "/api/messaging/v1"


async def test_folders_nest_three_deep_hold_fifty_and_keep_their_counts(mail: Mail) -> None:
    _, pupils = a_class(mail)
    me = mail.who(pupils[3])
    made = []
    parent = None
    for depth in range(3):
        response = await mail.client.post(
            f"{API}/folders", headers=me, json={"name": f"Niveau {depth}", "parent": parent}
        )
        assert response.status_code == 201, response.text
        parent = response.json()["id"]
        made.append(parent)
    too_deep = await mail.client.post(f"{API}/folders", headers=me, json={"name": "Trop", "parent": parent})
    assert too_deep.status_code == 422 and "3 deep" in too_deep.json()["detail"]
    twice = await mail.client.post(f"{API}/folders", headers=me, json={"name": "niveau 0"})
    assert twice.status_code == 409
    for n in range(49):
        assert (await mail.client.post(f"{API}/folders", headers=me, json={"name": f"Dossier {n}"})).status_code == 201
    full = await mail.client.post(f"{API}/folders", headers=me, json={"name": "Un de trop"})
    assert full.status_code == 422 and "50" in full.json()["detail"]
    assert (await mail.client.post(f"{API}/folders", headers=me, json={"name": "   "})).status_code == 422

    renamed = await mail.client.patch(f"{API}/folders/{made[0]}", headers=me, json={"name": "Maths"})
    assert renamed.json()["name"] == "Maths"
    assert (await mail.client.delete(f"{API}/folders/{made[0]}", headers=me)).status_code == 409  # holds a folder
    assert (await mail.client.delete(f"{API}/folders/inbox", headers=me)).status_code == 404
    assert (await mail.client.delete(f"{API}/folders/{made[2]}", headers=me)).status_code == 204
    ids = {f["id"] for f in (await mail.client.get(f"{API}/folders", headers=me)).json()}
    assert made[2] not in ids and {"inbox", "sent", "drafts", "scheduled", "trash", made[0], made[1]} <= ids


@pytest.mark.parametrize(
    "mail", [{}, {"index_segment_size": 7}], indirect=True, ids=["segments-of-50", "segments-of-7"]
)
async def test_pages_of_25_newest_first_with_cursors_that_hold_while_mail_arrives(mail: Mail) -> None:
    _, pupils = a_class(mail)
    reader, writer = pupils[4], pupils[5]
    sent = [(await mail.send(writer, to=[person(reader)], subject=f"Message {n}"))["id"] for n in range(30)]
    first = await mail.folder(reader)
    assert [e["id"] for e in first["entries"]] == sent[::-1][:25] and first["next"]
    newer = await mail.send(writer, to=[person(reader)], subject="Arrivé entre deux pages")
    second = await mail.folder(reader, cursor=first["next"])
    assert [e["id"] for e in second["entries"]] == sent[::-1][25:] and second.get("next") is None
    assert (await mail.folder(reader))["entries"][0]["id"] == newer["id"]
    assert (await mail.counts(reader))["inbox"] == (31, 31)
    small = await mail.folder(reader, limit=10)
    assert len(small["entries"]) == 10
    # Read again by a replica that has not seen these messages sent: the same page, read marks and all.
    await mail.client.post(f"{API}/messages/read", headers=mail.who(reader), json={"ids": [sent[-1]]})
    warm = await mail.folder(reader)
    mail.service.state.runtime.parts.get(Mailbox).summaries.clear()
    cold = await mail.folder(reader)
    assert cold == warm and [e["unread"] for e in cold["entries"][:2]] == [True, False]


async def test_read_marks_moves_trash_restore_and_delete_for_good(mail: Mail) -> None:
    _, pupils = a_class(mail)
    reader, writer = pupils[6], pupils[7]
    me = mail.who(reader)
    ids = [(await mail.send(writer, to=[person(reader)], subject=f"Sujet {n}"))["id"] for n in range(3)]
    marked = await mail.client.post(
        f"{API}/messages/read", headers=me, json={"ids": [ids[0], "0000000000000000000000"]}
    )
    assert marked.json() == {"changed": 1, "missing": ["0000000000000000000000"]}
    assert (await mail.counts(reader))["inbox"] == (3, 2)
    await mail.client.post(f"{API}/messages/read", headers=me, json={"ids": [ids[0]], "unread": True})
    assert (await mail.counts(reader))["inbox"] == (3, 3)

    folder = (await mail.client.post(f"{API}/folders", headers=me, json={"name": "Classe"})).json()["id"]
    moved = await mail.client.post(f"{API}/messages/move", headers=me, json={"ids": [ids[1]], "folder": folder})
    assert moved.json()["changed"] == 1
    counts = await mail.counts(reader)
    assert counts["inbox"] == (2, 2) and counts[folder] == (1, 1)
    assert [e["id"] for e in (await mail.folder(reader, folder))["entries"]] == [ids[1]]
    into_sent = await mail.client.post(f"{API}/messages/move", headers=me, json={"ids": [ids[1]], "folder": "sent"})
    assert into_sent.status_code == 422

    await mail.client.post(f"{API}/messages/trash", headers=me, json={"ids": [ids[1], ids[2]]})
    counts = await mail.counts(reader)
    assert counts["trash"] == (2, 2) and counts[folder] == (0, 0) and counts["inbox"] == (1, 1)
    restored = await mail.client.post(f"{API}/messages/restore", headers=me, json={"ids": [ids[1]]})
    assert restored.json()["changed"] == 1
    assert (await mail.counts(reader))[folder] == (1, 1)
    not_in_trash = await mail.client.post(f"{API}/messages/delete", headers=me, json={"ids": [ids[0]]})
    assert not_in_trash.json() == {"changed": 0, "missing": [ids[0]]}
    gone = await mail.client.post(f"{API}/messages/delete", headers=me, json={"ids": [ids[2]]})
    assert gone.json()["changed"] == 1
    assert (await mail.counts(reader))["trash"] == (0, 0)
    assert (await mail.client.get(f"{API}/messages/{ids[2]}", headers=me)).status_code == 404
    # The sender still holds their copy.
    assert (await mail.client.get(f"{API}/messages/{ids[2]}", headers=mail.who(writer))).status_code == 200
    malformed = await mail.client.post(f"{API}/messages/move", headers=me, json={"ids": ["x"], "folder": "inbox"})
    assert malformed.status_code == 422


@pytest.mark.parametrize("mail", [{"index_segment_size": 4}], indirect=True)
async def test_a_mailbox_filed_by_two_replicas_in_small_segments_reads_as_one(mail: Mail) -> None:
    """Each replica files deliveries into index segments of its own; pages, counts, marks, moves and the trash
    see one mailbox however the messages were spread."""
    _, pupils = a_class(mail)
    reader, writer = pupils[10], pupils[11]
    me = mail.who(reader)
    first = [(await mail.send(writer, to=[person(reader)], subject=f"Premier {n}"))["id"] for n in range(9)]
    other = app(mail.service.state.runtime.settings.model_copy())  # another replica, another writer, same database
    async with running(other) as replica:
        second = []
        for n in range(9):
            answer = await replica.post(
                f"{API}/messages", headers=mail.who(writer), json={"to": [person(reader)], "subject": f"Second {n}"}
            )
            assert answer.status_code == 201, answer.text
            second.append(answer.json()["id"])
        third = [(await mail.send(writer, to=[person(reader)], subject=f"Troisième {n}"))["id"] for n in range(9)]
        newest_first = (first + second + third)[::-1]
        page = await mail.folder(reader)
        rest = await mail.folder(reader, cursor=page["next"])
        assert [e["id"] for e in page["entries"] + rest["entries"]] == newest_first and rest.get("next") is None
        assert (await replica.get(f"{API}/folders/inbox/messages", headers=me)).json()["entries"] == page["entries"]
        # A mark made through one replica, a move through the other: each finds the segment its message is in.
        await replica.post(f"{API}/messages/read", headers=me, json={"ids": [first[0], third[8]]})
        folder = (await mail.client.post(f"{API}/folders", headers=me, json={"name": "Gardés"})).json()["id"]
        moved = await mail.client.post(
            f"{API}/messages/move", headers=me, json={"ids": [second[3], first[0]], "folder": folder}
        )
        assert moved.json()["changed"] == 2
        await replica.post(f"{API}/messages/trash", headers=me, json={"ids": [third[0]]})
    counts = await mail.counts(reader)
    assert counts["inbox"] == (24, 23) and counts[folder] == (2, 1) and counts["trash"] == (1, 1)
    kept = await mail.folder(reader, folder)
    assert [(e["id"], e["unread"]) for e in kept["entries"]] == [(second[3], True), (first[0], False)]
    assert (await mail.counts(writer))["sent"][0] >= 27


async def test_a_months_first_mail_is_found_by_its_reader_however_long_they_were_away(
    mail: Mail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery does not note a new month's index in the mailbox (one write fewer per recipient on the first mail
    of a month): its reader looks for the months after the last one noted — or since the service first ran."""
    _, pupils = a_class(mail)
    reader, writer = pupils[14], pupils[15]
    now = datetime.now(UTC)
    months_ago = [now - timedelta(days=31 * n) for n in (4, 3, 1)]
    mailbox = mail.service.state.runtime.parts.get(Mailbox)
    await mailbox.repo.db["meta"].update_one({"_id": "epoch"}, {"$set": {"month": months_ago[0].strftime("%Y%m")}})
    sent = []
    for at in months_ago[1:]:  # mail of earlier months, nobody reading it then
        monkeypatch.setattr(sending_module, "new_message_id", lambda at=at: new_message_id(at.timestamp()))
        sent.append((await mail.send(writer, to=[person(reader)], subject=f"Il y a longtemps {at:%m}"))["id"])
    monkeypatch.undo()
    sent.append((await mail.send(writer, to=[person(reader)], subject="Aujourd'hui"))["id"])
    assert (await mailbox.repo.mailbox(reader) or {}).get("months", []) == []  # nothing noted by the deliveries

    restarted = app(
        mail.service.state.runtime.settings.model_copy()
    )  # a replica that started since: it reads the first month
    async with running(restarted) as replica:
        page = (await replica.get(f"{API}/folders/inbox/messages", headers=mail.who(reader))).json()
        assert [e["id"] for e in page["entries"]] == sent[::-1]
        folders = {
            f["id"]: (f["total"], f["unread"])
            for f in (await replica.get(f"{API}/folders", headers=mail.who(reader))).json()
        }
        assert folders["inbox"] == (3, 3)
        # The writer's sent folder is found the same way.
        mine = (await replica.get(f"{API}/folders/sent/messages", headers=mail.who(writer))).json()
        assert [e["id"] for e in mine["entries"][:3]] == sent[::-1]
    noted = (await mailbox.repo.mailbox(reader))["months"]
    assert {at.strftime("%Y%m") for at in months_ago[1:]} | {now.strftime("%Y%m")} <= set(noted)
    # Once noted, a replica that started before finds them too, and the next mail of a noted month needs no looking.
    latest = await mail.send(writer, to=[person(reader)], subject="Encore")
    assert (await mail.folder(reader))["entries"][0]["id"] == latest["id"]
    assert (await mail.counts(reader))["inbox"] == (4, 4)


async def test_the_trash_is_emptied_after_its_retention(mail: Mail) -> None:
    _, pupils = a_class(mail)
    reader, writer = pupils[8], pupils[9]
    sent = await mail.send(writer, to=[person(reader)])
    await mail.client.post(f"{API}/messages/trash", headers=mail.who(reader), json={"ids": [sent["id"]]})
    mailbox = mail.service.state.runtime.parts.get(Mailbox)
    assert await mailbox.sweep_trash(retention_days=30) == 0  # not yet
    assert await mailbox.sweep_trash(retention_days=30, now=datetime.now(UTC) + timedelta(days=31)) == 1
    assert (await mail.counts(reader))["trash"] == (0, 0)
    assert (await mail.client.get(f"{API}/messages/{sent['id']}", headers=mail.who(reader))).status_code == 404


async def test_search_ignores_case_and_accents_over_subject_body_and_correspondents(mail: Mail) -> None:
    _, pupils = a_class(mail)
    reader, writer = pupils[10], pupils[11]
    by_subject = await mail.send(writer, to=[person(reader)], subject="Élection des délégués", body="<p>Rien</p>")
    by_body = await mail.send(
        writer, to=[person(reader)], subject="Divers", body="<p>La <b>récréation</b> est prolongée</p>"
    )
    await mail.send(writer, to=[person(reader)], subject="Autre chose", body="<p>Sans rapport</p>")

    async def found(q: str) -> list[str]:
        response = await mail.client.get(f"{API}/search", headers=mail.who(reader), params={"q": q})
        assert response.status_code == 200, response.text
        return [e["id"] for e in response.json()["entries"]]

    assert await found("ELECTION delegues") == [by_subject["id"]]
    assert await found("recreation prolong") == [by_body["id"]]
    writer_name = mail.directory.names[writer].split()[-1]
    assert len(await found(writer_name.upper())) == 3
    assert await found("introuvable") == []
    empty = await mail.client.get(f"{API}/search", headers=mail.who(reader), params={"q": "!!"})
    assert empty.status_code == 422


async def test_export_then_erasure_by_identity_purges_the_mailbox(mail: Mail) -> None:
    # A class no other test counts: the leaver leaves the directory for good.
    classes = sorted(mail.directory.pupils, key=lambda c: -len(mail.directory.pupils[c]))
    leaver, friend = mail.directory.pupils[classes[5]][:2]
    received = await mail.send(friend, to=[person(leaver)], subject="Pour toi")
    written = await mail.send(leaver, to=[person(friend)], subject="Réponse")
    export = await mail.client.get(f"{API}/export", headers=mail.who(leaver))
    assert export.status_code == 200
    document = json.loads(export.content)
    assert document["person"] == leaver
    assert {m["id"] for m in document["messages"]} == {received["id"], written["id"]}
    assert {f["id"] for f in document["folders"]} >= {"inbox", "sent"}
    refused = await mail.client.get(f"{API}/operator/persons/{leaver}/export", headers=mail.who(friend))
    assert refused.status_code == 403

    mail.directory.run("erase", leaver, "--yes", "--tenant", "ac-messaging")
    repo = mail.service.state.runtime.parts.get(Mailbox).repo

    async def purged() -> bool:
        return await repo.mailbox(leaver) is None and await repo.copy(leaver, received["id"]) is None

    await until(purged, "the erased person's mailbox to be purged", timeout=20)
    # What the friend holds stays theirs.
    kept = await mail.client.get(f"{API}/messages/{written['id']}", headers=mail.who(friend))
    assert kept.status_code == 200 and kept.json()["subject"] == "Réponse"


async def test_mail_written_with_the_old_one_letter_keys_reads_the_same_once_migrated(mail: Mail) -> None:
    """Data written before the keys were renamed (make run's demo, an upgraded platform) is renamed once by the
    migration the bootstrap runs, and the mailbox shows exactly what it showed."""
    _, pupils = max(mail.directory.pupils.items(), key=lambda item: len(item[1]))
    alice, bob = pupils[6], pupils[7]
    sent = await mail.send(alice, to=[person(bob)], subject="Avant la mise à jour")
    await mail.send(bob, to=[person(alice)], subject="Re: Avant la mise à jour", in_reply_to=sent["id"])
    before = (await mail.folder(bob), await mail.counts(bob), await mail.folder(alice, "sent"))
    docstore = mail.service.state.runtime.docstore
    old = {
        "copies": {"person": "p", "message": "m", "folder": "f", "unread": "u", "segment": "s"},
        "months": {"folders": "f", "unread": "n", "person": "p"},
        "messages": {"search_key": "k"},
        "threads": {"messages": "m"},
    }
    for collection, fields in old.items():
        await docstore.db[collection].update_many({}, {"$rename": fields})
    await docstore.db[MIGRATION_RECORDS].delete_many({})
    mailbox = mail.service.state.runtime.parts.get(Mailbox)
    mailbox.summaries.clear()  # what a replica remembers of the listings: read from the docstore again
    assert await migrate(docstore, MIGRATIONS) == [1]
    assert await migrate(docstore, MIGRATIONS) == []  # once
    assert await docstore.db.copies.count_documents({"f": {"$exists": True}}) == 0
    after = (await mail.folder(bob), await mail.counts(bob), await mail.folder(alice, "sent"))
    assert after == before
    thread = (await mail.client.get(f"/api/messaging/v1/threads/{sent['id']}", headers=mail.who(bob))).json()
    assert len(thread) == 2
