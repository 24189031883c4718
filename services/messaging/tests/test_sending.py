"""Sending under the communication rules, against the real identity service: persons and groups, replies,
the inbox a recipient sees, the events for notifications, and what is refused."""

from __future__ import annotations

from maille.messaging.v1 import messages_pb2 as pb
from maille_devstack.pytest_plugin import until
from maille_kit.events import decode

from .conftest import Mail, group, person


def a_class(mail: Mail) -> tuple[str, list[str]]:
    """The biggest class and its pupils."""
    cls, pupils = max(mail.directory.pupils.items(), key=lambda item: len(item[1]))
    return cls, pupils


def teacher_of(mail: Mail, cls: str) -> str:
    return next(t for t, classes in sorted(mail.directory.classes_of.items()) if cls in classes)


async def delivered_events(mail: Mail, message_id: str) -> list[pb.MessageDelivered]:
    outbox = mail.service.state.runtime.outbox
    await until(lambda: _zero(outbox.pending()), "the outbox to empty")
    js = mail.service.state.runtime.bus.js
    sub = await js.pull_subscribe("messaging.message.delivered.v1", stream="MESSAGING")
    found = []
    try:
        while True:
            for message in await sub.fetch(100, timeout=1):
                event = decode(message.data).unpack(pb.MessageDelivered)
                if event.message_id == message_id:
                    found.append(event)
    except TimeoutError:
        pass
    await sub.unsubscribe()
    return found


async def _zero(pending) -> bool:
    return await pending == 0


async def test_a_pupil_writes_to_a_classmate_who_replies_in_the_same_conversation(mail: Mail) -> None:
    cls, pupils = a_class(mail)
    alice, bob = pupils[0], pupils[1]
    sent = await mail.send(alice, to=[person(bob)], subject="Devoir de maths", body="<p>Tu as fait l'exercice 3 ?</p>")
    assert sent["state"] == "sent" and sent["recipients"] == 1

    inbox = await mail.folder(bob)
    assert [e["id"] for e in inbox["entries"]] == [sent["id"]]
    entry = inbox["entries"][0]
    assert entry["unread"] is True and entry["subject"] == "Devoir de maths"
    assert entry["sender"] == {"id": alice, "name": mail.directory.names[alice]}
    assert entry["snippet"] == "Tu as fait l'exercice 3 ?"
    assert (await mail.counts(bob))["inbox"] == (1, 1)
    assert [e["id"] for e in (await mail.folder(alice, "sent"))["entries"]] == [sent["id"]]
    assert (await mail.counts(alice))["inbox"] == (0, 0)

    reply = await mail.send(bob, to=[person(alice)], subject="Re: Devoir de maths", body="Oui", in_reply_to=sent["id"])
    assert reply["thread"] == sent["id"]
    thread = (await mail.client.get(f"/api/messaging/v1/threads/{sent['id']}", headers=mail.who(alice))).json()
    assert [m["id"] for m in thread] == [sent["id"], reply["id"]]

    # A reply to a message one does not hold is refused, naming it.
    other = pupils[2]
    refused = await mail.send(other, to=[person(alice)], in_reply_to=sent["id"], expect=404)
    assert sent["id"] in refused["detail"] and refused["field"] == "in_reply_to"

    # Notifications: one event for Bob, none naming the sender.
    events = await delivered_events(mail, sent["id"])
    assert [list(e.recipient_ids) for e in events] == [[bob]]
    assert events[0].sender_id == alice and events[0].subject == "Devoir de maths"


async def test_a_teacher_writes_to_a_whole_class_expanded_at_send_time(mail: Mail) -> None:
    cls, pupils = a_class(mail)
    teacher = teacher_of(mail, cls)
    sent = await mail.send(teacher, to=[group(f"{cls}/ELV")], subject="Sortie au musée")
    assert sent["recipients"] == len(pupils)
    for pupil in pupils:
        assert [e["id"] for e in (await mail.folder(pupil))["entries"]] == [sent["id"]]
    message = (await mail.client.get(f"/api/messaging/v1/messages/{sent['id']}", headers=mail.who(pupils[0]))).json()
    assert message["to"] == [{"type": "group", "id": f"{cls}/ELV", "name": f"{cls.split('$', 1)[1]} — élèves"}]
    events = await delivered_events(mail, sent["id"])
    assert sorted(r for e in events for r in e.recipient_ids) == sorted(pupils)
    assert teacher not in {r for e in events for r in e.recipient_ids}


async def test_recipients_outside_the_rules_unknown_or_malformed_are_refused_and_nothing_is_sent(mail: Mail) -> None:
    classes = sorted(mail.directory.pupils, key=lambda c: -len(mail.directory.pupils[c]))
    pupil, stranger = mail.directory.pupils[classes[0]][0], mail.directory.pupils[classes[1]][0]

    refused = await mail.send(pupil, to=[person(stranger)], expect=403)
    assert refused["refused"] == [stranger] and stranger in refused["detail"]
    refused = await mail.send(pupil, to=[group(f"{classes[1]}/ELV")], expect=403)
    assert refused["refused"] == [f"{classes[1]}/ELV"]
    unknown = await mail.send(pupil, to=[person("0123456789abcdef01234567")], expect=422)
    assert unknown["unknown"] == ["0123456789abcdef01234567"]
    malformed = await mail.send(pupil, to=[{"type": "person", "id": "../../etc"}], expect=422)
    assert "person id" in malformed["detail"] or "person id" in str(malformed.get("errors"))
    nobody = await mail.send(pupil, to=[], expect=422)
    assert "at least one recipient" in nobody["detail"]
    assert (await mail.counts(stranger))["inbox"] == (0, 0)
    assert (await mail.counts(pupil))["sent"] == (0, 0)


async def test_scripts_in_html_bodies_are_removed_when_stored(mail: Mail) -> None:
    _, pupils = a_class(mail)
    body = '<p onclick="steal()">Bonjour <b>toi</b><script>alert(1)</script><a href="javascript:steal()">lien</a><img src=x onerror=alert(1)></p>'  # noqa: E501
    sent = await mail.send(pupils[0], to=[person(pupils[1])], body=body)
    message = (await mail.client.get(f"/api/messaging/v1/messages/{sent['id']}", headers=mail.who(pupils[1]))).json()
    assert "<b>toi</b>" in message["body"]
    for bad in ("script", "onclick", "onerror", "javascript:"):
        assert bad not in message["body"]


async def test_malformed_ids_and_cursors_get_a_clear_error(mail: Mail) -> None:
    _, pupils = a_class(mail)
    me = mail.who(pupils[0])
    for path in (
        "/api/messaging/v1/messages/not-an-id",
        "/api/messaging/v1/folders/inbox/messages?cursor=zzz",
        "/api/messaging/v1/folders/f-nope/messages",
        "/api/messaging/v1/threads/123",
    ):
        response = await mail.client.get(path, headers=me)
        assert response.status_code in (404, 422), path
        assert response.headers["content-type"].startswith("application/problem+json"), path
    missing = await mail.client.get("/api/messaging/v1/messages/0000000000000000000000", headers=me)
    assert missing.status_code == 404 and "no message" in missing.json()["detail"]
    bad_json = await mail.client.post(
        "/api/messaging/v1/messages", headers={**me, "content-type": "application/json"}, content=b"{nope"
    )
    assert bad_json.status_code == 400 and bad_json.headers["content-type"].startswith("application/problem+json")
    anonymous = await mail.client.get("/api/messaging/v1/folders")
    assert anonymous.status_code == 401


async def test_a_send_retried_with_its_idempotency_key_reaches_the_inbox_once(mail: Mail) -> None:
    _, pupils = a_class(mail)
    alice, bob = pupils[3], pupils[4]
    body = {"to": [person(bob)], "subject": "Une seule fois", "body": "<p>Envoyé deux fois par le réseau</p>"}
    key = {"Idempotency-Key": "3f1c2d9e-envoi-unique"}
    first = await mail.client.post("/api/messaging/v1/messages", json=body, headers=mail.who(alice) | key)
    again = await mail.client.post("/api/messaging/v1/messages", json=body, headers=mail.who(alice) | key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    inbox = await mail.folder(bob)
    assert [e["subject"] for e in inbox["entries"]].count("Une seule fois") == 1

    # The same key for another message is a mistake the sender is told of; another person's key is theirs.
    other = await mail.client.post(
        "/api/messaging/v1/messages", json={**body, "subject": "Autre"}, headers=mail.who(alice) | key
    )
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    carol = pupils[5]
    theirs = await mail.client.post("/api/messaging/v1/messages", json=body, headers=mail.who(carol) | key)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]

    # A refused send keeps nothing: retried, it is tried again; corrected, the same key goes through.
    bad = {**body, "to": [person("f" * 24)]}
    refused = await mail.client.post("/api/messaging/v1/messages", json=bad, headers=mail.who(bob) | key)
    retried = await mail.client.post("/api/messaging/v1/messages", json=bad, headers=mail.who(bob) | key)
    assert refused.status_code == retried.status_code >= 400 and "idempotent-replayed" not in retried.headers
    fixed = {**body, "to": [person(alice)]}
    sent = await mail.client.post("/api/messaging/v1/messages", json=fixed, headers=mail.who(bob) | key)
    assert sent.status_code == 201

    malformed = await mail.client.post(
        "/api/messaging/v1/messages", json=body, headers=mail.who(alice) | {"Idempotency-Key": "deux mots"}
    )
    assert malformed.status_code == 422
