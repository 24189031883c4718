"""Class-wide sends while NATS, then the docstore, die (`kill -9`) and come back: every message a teacher was told
is sent is in every pupil's inbox once, a refused one in nobody's, none half-filed; each delivery event once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from maille.events.v1.envelope_pb2 import Envelope
from maille.messaging.v1 import messages_pb2 as pb
from maille_devstack.pytest_plugin import KeycloakClients, make_person_login

from .conftest import Platform, wait_until

pytestmark = pytest.mark.keycloak
SENDS = 24


def a_class_and_its_teacher(platform: Platform) -> tuple[str, str, list[str]]:
    """A teacher, one class they teach (its group id) and its pupils, from the imported directory."""
    persons = list(platform.db("identity").persons.find({}))
    for teacher in persons:
        if teacher.get("kind") == "staff" and teacher.get("classes"):
            cls = teacher["classes"][0]
            pupils = sorted(p["_id"] for p in persons if p.get("kind") == "pupil" and cls in p.get("classes", []))
            if pupils:
                return teacher["_id"], f"{cls}/ELV", pupils
    raise AssertionError("no teacher with a class in the directory")


def send_while(platform: Platform, keycloak: KeycloakClients, fault) -> tuple[dict[str, int], list[str]]:
    """SENDS class-wide sends, `fault` striking after a third of them: each send's answer, by subject."""
    teacher, group, pupils = a_class_and_its_teacher(platform)
    token = make_person_login(keycloak, ent_id=teacher, audience="maille-messaging")
    url = f"{platform.services['messaging'].url}/api/messaging/v1/messages"
    answers: dict[str, int] = {}

    def send(n: int) -> None:
        subject = f"Devoirs {n}"
        try:
            answer = httpx.post(
                url,
                headers={"authorization": f"Bearer {token}"},
                timeout=40,
                json={"to": [{"type": "group", "id": group}], "subject": subject, "body": "<p>Pour demain</p>"},
            )
            answers[subject] = answer.status_code
        except httpx.HTTPError:
            answers[subject] = 0  # no answer: the teacher does not know

    senders = []
    for n in range(SENDS):
        senders.append(threading.Thread(target=send, args=(n,)))
        senders[-1].start()
        if n == SENDS // 3:
            fault()
        time.sleep(0.05)
    for sender in senders:
        sender.join(60)
    return answers, pupils


def check_every_inbox(platform: Platform, answers: dict[str, int], pupils: list[str]) -> None:
    db = platform.db("messaging")
    # units of work left half-done are finished, the outbox relayed
    wait_until(lambda: db.works.count_documents({}) == 0, 60, "every unit of work finished")
    wait_until(
        lambda: not [c for c in db.list_collection_names() if c.startswith("outbox_") and db[c].count_documents({})],
        60,
        "the outbox relayed",
    )
    messages = {m["subject"]: m for m in db.messages.find({"state": "sent"})}
    statuses = Counter(answers.values())
    assert statuses[201] >= SENDS // 3, statuses  # those before the fault at least
    assert set(statuses) <= {201, 503, 0}, statuses  # never a 500
    for subject, status in answers.items():
        message = messages.get(subject)
        if status == 201:
            assert message is not None, f"{subject} answered 201 and is nowhere"
        if message is None:
            continue
        holders = sorted(c["person"] for c in db.copies.find({"message": message["_id"]}) if c["folder"] == "inbox")
        assert holders == pupils, f"{subject}: {len(holders)} of {len(pupils)} inboxes"
        for pupil in pupils:
            months = list(db.months.find({"person": pupil, "folders.inbox": message["_id"]}))
            assert sum(m["folders"]["inbox"].count(message["_id"]) for m in months) == 1, (subject, pupil)
    # Each delivery event once, naming exactly the pupils who hold the message; none for a message not sent.
    delivered: dict[str, list[str]] = {}
    ids = Counter()
    for message_id, data in platform.stream("MESSAGING", "messaging.message.delivered.v1"):
        ids[message_id] += 1
        envelope = Envelope.FromString(data)
        event = pb.MessageDelivered()
        envelope.payload.Unpack(event)
        delivered.setdefault(event.message_id, []).extend(event.recipient_ids)
    assert [i for i, n in ids.items() if n > 1] == []
    sent_ids = {m["_id"] for m in messages.values()}
    assert set(delivered) == sent_ids
    assert all(sorted(recipients) == pupils for recipients in delivered.values())


def test_nats_killed_during_class_wide_sends(platform: Platform, keycloak_clients: KeycloakClients) -> None:
    platform.start("identity")
    imported = platform.identity("generate-aaf", str(platform.work / "feed"), "--persons", "300", "--schools", "1")
    assert imported.returncode == 0, imported.stderr
    imported = platform.identity(
        "import-aaf", str(platform.work / "feed"), "--report", str(platform.work / "report.txt")
    )
    assert imported.returncode == 0, imported.stderr
    platform.start("messaging")
    answers, pupils = send_while(platform, keycloak_clients, lambda: platform.restart_nats(after=2))
    check_every_inbox(platform, answers, pupils)


def test_docstore_killed_during_class_wide_sends(platform: Platform, keycloak_clients: KeycloakClients) -> None:
    platform.start("identity")
    assert (
        platform.identity("generate-aaf", str(platform.work / "feed"), "--persons", "300", "--schools", "1").returncode
        == 0
    )
    assert (
        platform.identity(
            "import-aaf", str(platform.work / "feed"), "--report", str(platform.work / "r.txt")
        ).returncode
        == 0
    )
    platform.start("messaging")
    answers, pupils = send_while(platform, keycloak_clients, lambda: platform.restart_docstore(after=2))
    check_every_inbox(platform, answers, pupils)
