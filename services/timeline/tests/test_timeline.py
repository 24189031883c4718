"""The timeline on real NATS, docstore, Keycloak and SMTP server: what people read in their feed and their e-mail."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime

import nats

from maille.catalog.v1 import subscriptions_pb2
from maille.identity.v1 import directory_pb2 as pb
from maille.identity.v1 import operations_pb2
from maille.library.v1 import loans_pb2
from maille.messaging.v1 import messages_pb2
from maille.support.v1 import requests_pb2
from maille_contracts import live_subject
from maille_devstack.pytest_plugin import until
from maille_timeline.mail import Mails
from maille_timeline.notifications import Notifications

from .conftest import ADMIN, API, Timeline, person


def tag() -> str:
    return uuid.uuid4().hex[:6]


async def class_of(timeline: Timeline, size: int) -> tuple[list[str], list[str], str]:
    """A class of `size` pupils, each with a parent who has an e-mail address, and their teacher."""
    t = tag()
    pupils = [f"eleve{n}-{t}" for n in range(size)]
    parents = [f"parent{n}-{t}" for n in range(size)]
    teacher = f"prof-{t}"
    await timeline.persons(
        *(person(p, "National_ELV") for p in pupils),
        *(
            person(parents[n], "National_TUT", emails=(f"{parents[n]}@example.org",), children=(pupils[n],))
            for n in range(size)
        ),
        person(teacher, "National_ENS", emails=(f"{teacher}@ac-test.fr",)),
    )
    return pupils, parents, teacher


async def in_feed(timeline: Timeline, ent_id: str, count: int = 1) -> dict:
    headers = timeline.as_person(ent_id)
    found: dict = {}

    async def arrived() -> bool:
        nonlocal found
        found = await timeline.feed(ent_id, headers)
        return len(found["items"]) >= count

    await until(arrived, f"{count} notification(s) in {ent_id}'s feed")
    return found


async def test_a_class_mail_reaches_the_pupils_feeds_and_their_parents_digests(timeline: Timeline) -> None:
    pupils, parents, teacher = await class_of(timeline, 26)
    await timeline.mail(teacher, pupils + parents, subject="Sortie au musée jeudi")

    feed = await in_feed(timeline, pupils[0])
    item = feed["items"][0]
    assert item["title"] == "Nouveau message de M. Dupont"
    assert item["text"] == "« Sortie au musée jeudi »"
    assert item["link"].startswith("/messagerie/message/m-")
    assert feed["unread"] == 1 and item["read"] is False
    assert (await in_feed(timeline, pupils[25]))["items"][0]["title"] == "Nouveau message de M. Dupont"
    assert (await in_feed(timeline, parents[3]))["unread"] == 1

    # Nobody is mailed at once: pupils are told in the ENT, parents in the evening's digest.
    await asyncio.sleep(1)
    assert timeline.mail_to(parents[0]) == []
    counts = await timeline.runtime().parts.get(Mails).send_digests()
    assert counts == {"sent": 26, "skipped": 0, "failed": 0}
    for parent in (parents[0], parents[25]):
        [mail] = await timeline.mailed_to(parent)
        assert mail["Subject"] == "Maille : 1 nouveauté pour vous aujourd'hui"
        body = timeline.mailpit.message(mail["ID"])
        assert "Sortie au musée jeudi" in body["Text"] and "Sortie au musée jeudi" in body["HTML"]
        assert "/messagerie/message/m-" in body["Text"]
        headers = timeline.mailpit.headers(mail["ID"])
        assert headers["List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
        assert headers["List-Unsubscribe"][0].startswith("<http://localhost:8000/api/timeline/v1/unsubscribe?token=")
    # A digest is sent once: the next evening's has nothing from today.
    assert await timeline.runtime().parts.get(Mails).send_digests() == {"sent": 0, "skipped": 0, "failed": 0}


async def test_the_feed_pages_newest_first_and_counts_what_is_unread(timeline: Timeline) -> None:
    pupils, _, teacher = await class_of(timeline, 1)
    for n in range(25):
        await timeline.mail(teacher, pupils, subject=f"Message {n}")
    me = timeline.as_person(pupils[0])
    first = await in_feed(timeline, pupils[0], 20)

    async def all_in() -> bool:
        return (await timeline.feed(pupils[0], me))["unread"] == 25

    await until(all_in, "25 notifications")
    first = await timeline.feed(pupils[0], me)
    assert [i["text"] for i in first["items"]][:2] == ["« Message 24 »", "« Message 23 »"]
    assert len(first["items"]) == 20 and first["next"] == first["items"][-1]["id"]
    second = await timeline.feed(pupils[0], me, before=first["next"])
    assert [i["text"] for i in second["items"]][-1] == "« Message 0 »"
    assert len(second["items"]) == 5 and second["next"] is None

    one = first["items"][0]["id"]
    answer = await timeline.client.post(f"{API}/read", json={"ids": [one]}, headers=me)
    assert answer.json() == {"unread": 24}
    assert (await timeline.feed(pupils[0], me))["items"][0]["read"] is True
    assert (await timeline.client.get(f"{API}/unread", headers=me)).json() == {"unread": 24}
    answer = await timeline.client.post(f"{API}/read", json={}, headers=me)
    assert answer.json() == {"unread": 0}

    wrong = await timeline.client.post(f"{API}/read", json={"ids": ["not-an-id"]}, headers=me)
    assert wrong.status_code == 422 and "not a notification id" in wrong.json()["detail"]
    unknown = await timeline.client.post(f"{API}/read", json={"ids": ["1" * 16 + "a" * 12]}, headers=me)
    assert unknown.status_code == 404
    page = await timeline.client.get(f"{API}/feed", params={"before": "x"}, headers=me)
    assert page.status_code == 422
    assert (await timeline.client.get(f"{API}/feed")).status_code == 401


async def test_an_event_handled_twice_tells_once(timeline: Timeline) -> None:
    pupils, _, teacher = await class_of(timeline, 1)
    await timeline.mail(teacher, pupils)
    await in_feed(timeline, pupils[0])
    told = timeline.runtime().parts.get(Notifications)
    feed = await told.feed(pupils[0])
    [note] = feed.items
    # the same event again (a redelivery): the same notification id, nothing added
    same = {
        "source": "same",
        "at": datetime.fromisoformat("2026-12-01T08:00:00+00:00"),
        "kind": "mail",
        "data": {"sender": "x", "subject": "y", "message": "m"},
        "persons": pupils,
        "tenant": "t",
    }
    again = await told.notify(**same)
    twice = await told.notify(**same)
    assert again == twice
    assert (await told.feed(pupils[0])).unread == 2
    assert note["id"] in [i["id"] for i in (await told.feed(pupils[0])).items]


async def test_preferences_choose_how_one_is_told(timeline: Timeline) -> None:
    _, parents, teacher = await class_of(timeline, 1)
    parent = timeline.as_person(parents[0])
    mine = (await timeline.client.get(f"{API}/preferences", headers=parent)).json()
    kinds = {k["kind"]: k for k in mine["kinds"]}
    assert kinds["mail"]["channel"] == "digest" and kinds["mail"]["chosen"] is False
    assert "admin" not in kinds and mine["email"] == f"{parents[0]}@example.org"
    prof = (await timeline.client.get(f"{API}/preferences", headers=timeline.as_person(teacher))).json()
    assert {k["kind"]: k["channel"] for k in prof["kinds"]}["mail"] == "portal"

    # at once by e-mail: the mail arrives without waiting for the evening
    answer = await timeline.client.put(f"{API}/preferences", json={"kinds": {"mail": "immediate"}}, headers=parent)
    assert {k["kind"]: k["channel"] for k in answer.json()["kinds"]}["mail"] == "immediate"
    await timeline.mail(teacher, parents, subject="Réunion parents-professeurs")

    async def mailed() -> bool:
        return bool(timeline.mail_to(parents[0]))

    await until(mailed, "the e-mail sent at once")
    [mail] = timeline.mail_to(parents[0])
    assert mail["Subject"] == "Maille : Nouveau message de M. Dupont"

    # not at all: not even in the feed
    await timeline.client.put(f"{API}/preferences", json={"kinds": {"mail": "off"}}, headers=parent)
    await timeline.mail(teacher, parents, subject="Encore")
    await asyncio.sleep(1.5)
    assert [i["text"] for i in (await timeline.feed(parents[0], parent))["items"]] == [
        "« Réunion parents-professeurs »"
    ]

    wrong = await timeline.client.put(f"{API}/preferences", json={"kinds": {"mail": "pigeon"}}, headers=parent)
    assert wrong.status_code == 422 and wrong.json()["field"] == "kinds.mail"
    unknown = await timeline.client.put(f"{API}/preferences", json={"kinds": {"weather": "off"}}, headers=parent)
    assert unknown.status_code == 422 and "weather" in unknown.json()["detail"]


async def test_the_unsubscribe_link_stops_the_mails_without_signing_in(timeline: Timeline) -> None:
    pupils, parents, teacher = await class_of(timeline, 1)
    await timeline.mail(teacher, parents, subject="Premier")
    await in_feed(timeline, parents[0])
    mails = timeline.runtime().parts.get(Mails)
    assert (await mails.send_digests())["sent"] == 1
    [mail] = await timeline.mailed_to(parents[0])
    link = timeline.mailpit.headers(mail["ID"])["List-Unsubscribe"][0].strip("<>")
    token = link.split("token=")[1]

    what = await timeline.client.get(f"{API}/unsubscribe", params={"token": token})
    assert what.status_code == 200 and "tous les e-mails" in what.json()["message"]
    # RFC 8058: a POST of List-Unsubscribe=One-Click, no cookie, no token of a person
    done = await timeline.client.post(
        f"{API}/unsubscribe",
        params={"token": token},
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and done.json()["message"].startswith("C'est fait")
    await timeline.mail(teacher, parents, subject="Second")
    await in_feed(timeline, parents[0], 2)  # still told in the ENT
    assert (await mails.send_digests())["sent"] == 0
    assert len(timeline.mail_to(parents[0])) == 1

    damaged = await timeline.client.post(f"{API}/unsubscribe", params={"token": token[:-4] + "AAAA"})
    assert damaged.status_code == 422 and "damaged" in damaged.json()["detail"]


async def test_an_address_the_relay_refuses_is_counted_and_left_alone(timeline: Timeline) -> None:
    t = tag()
    parent = f"parent-{t}"
    await timeline.persons(person(parent, "National_TUT", emails=(f"{parent}@ecole.invalid",)))
    mails = timeline.runtime().parts.get(Mails)
    for n in range(4):
        await timeline.mail(f"prof-{t}", [parent], subject=f"Message {n}")
        await in_feed(timeline, parent, n + 1)
        counts = await mails.send_digests()
        assert counts["sent"] == (1 if n < 3 else 0)  # refused by the relay three times: then not tried
    bounced = await timeline.runtime().docstore.db["addresses"].find_one({"_id": f"{parent}@ecole.invalid"})
    assert bounced["bounces"] == 3 and bounced["reason"].startswith("550")


async def test_a_new_notification_is_heard_live(timeline: Timeline) -> None:
    pupils, _, teacher = await class_of(timeline, 1)
    settings = timeline.runtime().settings
    heard: asyncio.Queue[bytes] = asyncio.Queue()
    nc = await nats.connect(settings.nats_url)
    try:

        async def hear(msg: nats.aio.msg.Msg) -> None:
            heard.put_nowait(msg.data)

        await nc.subscribe(live_subject(pupils[0]), cb=hear)
        await timeline.mail(teacher, pupils, subject="En direct")
        signal = json.loads(await asyncio.wait_for(heard.get(), 10))
        assert signal["event"] == "notification" and signal["data"]["title"] == "Nouveau message de M. Dupont"
        await timeline.client.post(f"{API}/read", json={}, headers=timeline.as_person(pupils[0]))
        assert json.loads(await asyncio.wait_for(heard.get(), 10)) == {"event": "unread", "data": {"unread": 0}}
    finally:
        await nc.close()


async def test_a_licence_assigned_tells_of_the_resource(timeline: Timeline) -> None:
    pupils, _, _ = await class_of(timeline, 2)
    sub = subscriptions_pb2.Subscription(id="ab-1", resource_id="ark:/1/r", resource_label="Manuel de SVT 5e")
    await timeline.publish("catalog.subscription.created.v1", subscriptions_pb2.SubscriptionCreated(subscription=sub))
    await timeline.publish(
        "catalog.assignment.changed.v1",
        subscriptions_pb2.AssignmentChanged(subscription_id="ab-1", resource_id="ark:/1/r", assigned_ids=pupils),
    )
    item = (await in_feed(timeline, pupils[1]))["items"][0]
    assert item["title"] == "Nouvelle ressource dans votre médiacentre"
    assert item["text"] == "Manuel de SVT 5e" and item["link"] == "/mediacentre"


def test_live_subjects_cannot_name_a_wildcard_or_another_person() -> None:
    assert live_subject("p-123_ab") == "timeline.live.p-123_ab"
    odd = live_subject("a.b>*")
    assert odd.count(".") == 2 and ">" not in odd and "*" not in odd
    assert live_subject("~61") != live_subject("a")


async def test_admins_are_told_of_an_imports_report_and_a_failed_gar_export(timeline: Timeline) -> None:
    operator = f"ops-{tag()}"
    await timeline.publish(
        "identity.import.reported.v1",
        operations_pb2.ImportReported(
            job_id="j1", state="done", file="aaf.tar.gz", records=1512, created=1500, rejected=2, requested_by=operator
        ),
    )
    for who in (ADMIN, operator):
        item = (await in_feed(timeline, who))["items"][0]
        assert item["title"] == "Le rapport d'import de l'annuaire est prêt" and item["link"] == "/administration"
        assert item["text"].startswith("aaf.tar.gz : 1512 fiches lues, 1500 créées")
    await timeline.publish(
        "identity.export.failed.v1", operations_pb2.ExportFailed(night="2026-12-06", reason="SFTP refused")
    )
    item = (await in_feed(timeline, ADMIN, 2))["items"][0]
    assert item["title"] == "L'export vers le GAR de la nuit du 2026-12-06 a échoué" and item["text"] == "SFTP refused"
    assert len((await timeline.feed(operator))["items"]) == 1  # the GAR's failure goes to the admins only


async def test_a_loan_due_or_late_tells_the_pupil_and_their_parents(timeline: Timeline) -> None:
    pupils, parents, _ = await class_of(timeline, 1)
    # (the class's pupils were made without their relatives: this one has a parent)
    await timeline.persons(
        pb.Person(
            id=pupils[0],
            first_name="Léa",
            last_name="Martin",
            profiles=[pb.Profile(structure_id="S1", uai="0350001L", code="National_ELV")],
            relatives=[pb.Relative(person_id=parents[0], legal=True)],
        )
    )
    await until(lambda: _has_parent(timeline, pupils[0], parents[0]), "the pupil's parent known")
    the_loan = loans_pb2.Loan(person_id=pupils[0], uai="0350001L", title="Le Petit Prince", due="2026-12-08")
    await timeline.publish("library.loan.due.v1", loans_pb2.LoanDue(loan=the_loan))
    for who in (pupils[0], parents[0]):
        item = (await in_feed(timeline, who))["items"][0]
        assert item["title"] == "Un prêt du CDI est à rendre bientôt" and item["link"] == "/cdi"
        assert item["text"] == "« Le Petit Prince » est à rendre le 08/12/2026."
    await timeline.publish("library.loan.late.v1", loans_pb2.LoanLate(loan=the_loan))
    assert (await in_feed(timeline, pupils[0], 2))["items"][0]["title"] == "Un prêt du CDI est en retard"
    await timeline.publish(
        "library.reservation.ready.v1",
        loans_pb2.ReservationReady(person_id=pupils[0], uai="0350001L", until="2026-12-11", reservation_id=4),
    )
    item = (await in_feed(timeline, pupils[0], 3))["items"][0]
    assert item["title"] == "Une réservation vous attend au CDI" and "jusqu'au 11/12/2026" in item["text"]


async def test_a_help_request_tells_its_person_and_who_takes_it(timeline: Timeline) -> None:
    pupil, referent = f"lea-{tag()}", f"rita-{tag()}"
    about = requests_pb2.Request(id="r1765000000000abcdef0123456789ab", subject="Le manuel ne s'ouvre pas")
    await timeline.publish("support.request.opened.v1", requests_pb2.RequestOpened(request=about, tell=[referent]))
    item = (await in_feed(timeline, referent))["items"][0]
    assert item["title"] == "Nouvelle demande d'aide dans votre établissement"
    assert item["link"] == f"/aide/demandes/{about.id}" and item["text"] == "« Le manuel ne s'ouvre pas »"
    await timeline.publish(
        "support.request.replied.v1",
        requests_pb2.RequestReplied(request=about, person_id=pupil, by="Support de l'académie"),
    )
    item = (await in_feed(timeline, pupil))["items"][0]
    assert item["title"] == "Support de l'académie a répondu à votre demande d'aide"
    await timeline.publish(
        "support.request.status_changed.v1",
        requests_pb2.RequestStatusChanged(request=about, person_id=pupil, status="resolved"),
    )
    assert (await in_feed(timeline, pupil, 2))["items"][0]["title"] == "Votre demande d'aide est résolue"
    # The person who closed it themselves is not told of it.
    await timeline.publish(
        "support.request.status_changed.v1", requests_pb2.RequestStatusChanged(request=about, status="closed")
    )
    await timeline.publish(
        "support.request.overdue.v1", requests_pb2.RequestOverdue(request=about, clock="first_answer", tell=[referent])
    )
    item = (await in_feed(timeline, referent, 2))["items"][0]
    assert item["title"] == "Une demande d'aide n'a pas reçu de première réponse dans les délais"
    assert len((await timeline.feed(pupil))["items"]) == 2


async def _has_parent(timeline: Timeline, pupil: str, parent: str) -> bool:
    doc = await timeline.runtime().docstore.db["persons"].find_one({"_id": pupil})
    return doc is not None and parent in doc.get("parents", [])


async def test_a_subscription_for_whole_schools_tells_its_public(timeline: Timeline) -> None:
    pupils, parents, teacher = await class_of(timeline, 2)
    sub = subscriptions_pb2.Subscription(
        id="ab-2",
        resource_id="ark:/1/atlas",
        resource_label="Atlas numérique",
        uais=["0350001L"],
        assignment_type="ETABL",
        publics=["ELEVE", "ENSEIGNANT"],
    )
    await timeline.publish("catalog.subscription.created.v1", subscriptions_pb2.SubscriptionCreated(subscription=sub))
    for who in (pupils[0], pupils[1], teacher):
        item = (await in_feed(timeline, who))["items"][0]
        assert item["title"] == "Nouvelle ressource dans votre médiacentre" and item["text"] == "Atlas numérique"
    assert (await timeline.feed(parents[0]))["items"] == []  # not its public


async def test_a_recalled_mail_leaves_the_feeds_and_digests_it_was_taken_from(timeline: Timeline) -> None:
    pupils, parents, teacher = await class_of(timeline, 2)
    message = f"m-{tag()}"
    await timeline.publish(
        "messaging.message.delivered.v1",
        messages_pb2.MessageDelivered(
            message_id=message,
            thread_id="t-1",
            sender_id=teacher,
            sender_name="M. Dupont",
            subject="Message envoyé par erreur",
            recipient_ids=pupils + parents,
        ),
    )
    for who in (*pupils, *parents):
        assert (await in_feed(timeline, who))["unread"] == 1
    # Recalled from the copies still unread: pupil 0's and parent 0's (the others had read theirs).
    await timeline.publish(
        "messaging.message.recalled.v1",
        messages_pb2.MessageRecalled(message_id=message, sender_id=teacher, recipient_ids=[pupils[0], parents[0]]),
    )

    async def withdrawn() -> bool:
        return (await timeline.feed(pupils[0]))["items"] == []

    await until(withdrawn, "the recalled mail's notification withdrawn")
    assert (await timeline.feed(pupils[0]))["unread"] == 0
    assert (await timeline.feed(parents[0]))["items"] == []
    assert (await timeline.feed(pupils[1]))["unread"] == 1
    # The evening's digest tells only the parent who still has the mail.
    counts = await timeline.runtime().parts.get(Mails).send_digests()
    assert counts["sent"] == 1 and counts["failed"] == 0
    assert timeline.mail_to(parents[0]) == [] and len(timeline.mail_to(parents[1])) == 1
