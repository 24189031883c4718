"""Help requests on real NATS, docstore, Keycloak and Redmine: a pupil's request reaches their school's referent, goes
up to the académie's desk, becomes a Redmine issue, and a comment made in Redmine comes back to the pupil; nobody
else reads it; bad input gets a clear 4xx."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from maille.identity.v1 import directory_pb2 as pb
from maille.support.v1 import requests_pb2
from maille_contracts import (
    PERSON_UPDATED,
    REQUEST_ANSWERED,
    REQUEST_ESCALATED,
    REQUEST_OPENED,
    REQUEST_OVERDUE,
    REQUEST_REPLIED,
    REQUEST_STATUS_CHANGED,
)
from maille_devstack.pytest_plugin import until
from maille_kit.secretbox import SecretBox
from maille_support.desks import Desks
from maille_support.redmine import Trackers
from maille_support.repository import SupportRepository
from maille_support.requests import Requests

from .conftest import COLLEGE, LYCEE, Support, person

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def school_with_people(support: Support) -> None:
    await support.school(COLLEGE, "Collège Anne de Bretagne")
    await support.school(LYCEE, "Lycée Chateaubriand")
    await support.persons(
        person("lea-eleve", "National_ELV"),
        person("paul-eleve", "National_ELV"),
        person("marc-principal", "National_DIR"),
        person("rita-referente", "National_ENS"),
        person("yves-autre", "National_DIR", LYCEE),
        person("anna-academie", "National_ENS", LYCEE),
    )
    await support.ok("PUT", f"/schools/{COLLEGE}/referents", "marc-principal", json={"persons": ["rita-referente"]})


def asking(**changes: Any) -> dict[str, Any]:
    return {
        "category": "resource",
        "uai": COLLEGE,
        "subject": "Le manuel de maths ne s'ouvre pas",
        "description": "Quand je clique sur Ouvrir, l'éditeur dit « accès refusé ».",
        "context": {"page": "/mediacentre", "browser": "Firefox 128 (Android)", "failed_requests": ["req-1a2b"]},
        **changes,
    }


async def declare_academie(support: Support, **changes: Any) -> None:
    desk = support.redmine.desk
    body = {
        "name": "Support de l'académie",
        "kind": "academie",
        "schools": [COLLEGE, LYCEE],
        "agents": ["anna-academie"],
        "first_answer_hours": 4,
        "resolution_hours": 48,
        "redmine": {
            "url": desk["url"],
            "project": desk["project"],
            "tracker_id": desk["tracker_id"],
            "uai_field": desk["uai_field"],
            "reference_field": desk["reference_field"],
            "api_key": desk["api_key"],
        },
        **changes,
    }
    await support.ok("PUT", "/operator/desks/academie", "ops", "operator", json=body)


def redmine_issues(support: Support, reference: str) -> list[dict[str, Any]]:
    desk = support.redmine.desk
    found = httpx.get(
        f"{desk['url']}/issues.json",
        params={"project_id": desk["project"], "status_id": "*", f"cf_{desk['reference_field']}": reference},
        headers=support.redmine.headers,
        timeout=10,
    )
    return list(found.raise_for_status().json()["issues"])


async def test_a_pupil_request_reaches_the_referent_then_the_academie_and_redmine_and_back(support: Support) -> None:
    await school_with_people(support)
    await declare_academie(support)
    opened = await support.ok("POST", "/requests", "lea-eleve", json=asking())
    rid = opened["id"]
    assert opened["status"] == "new" and opened["desk_name"] == "Référents numériques de l'établissement"
    assert opened["school_name"] == "Collège Anne de Bretagne"

    # The referent named by the principal is told, and finds it in the school's queue with the context.
    told = await until(lambda: _async(support.events(REQUEST_OPENED)), "the opened event")
    opened_event = requests_pb2.RequestOpened()
    told[0].payload.Unpack(opened_event)
    assert list(opened_event.tell) == ["rita-referente"] and opened_event.request.category == "resource"
    queue = await support.ok("GET", "/queue", "rita-referente", params={"status": "new"})
    assert [r["id"] for r in queue["items"]] == [rid] and queue["counts"] == {"new": 1}
    seen = await support.ok("GET", f"/requests/{rid}", "rita-referente")
    assert seen["context"]["failed_requests"] == ["req-1a2b"] and seen["can"]["escalate"]

    # Nobody else: another school's direction, another pupil (an id known or guessed says nothing).
    for stranger in ("yves-autre", "paul-eleve"):
        assert (await support.call("GET", f"/requests/{rid}", stranger)).status_code == 404
    assert (await support.call("GET", "/queue", "yves-autre", params={"uai": COLLEGE})).status_code == 403
    other_school = await support.ok("GET", "/queue", "yves-autre")
    assert other_school["items"] == []
    guessed = rid[:-1] + ("0" if rid[-1] != "0" else "1")
    assert (await support.call("GET", f"/requests/{guessed}", "lea-eleve")).status_code == 404

    # The referent notes (the pupil never sees it), then sends it up to the académie's desk: a Redmine issue.
    await support.ok(
        "POST", f"/requests/{rid}/messages", "rita-referente", json={"text": "Licence ?", "internal": True}
    )
    up = await support.ok(
        "POST", f"/requests/{rid}/escalate", "rita-referente", json={"note": "Licence absente du GAR"}
    )
    assert up["desk"] == "academie" and up["desk_name"] == "Support de l'académie"
    escalated = support.events(REQUEST_ESCALATED)
    assert escalated, "no escalation event"
    issues = await until(lambda: _async(redmine_issues(support, rid)), "the Redmine issue")
    assert len(issues) == 1
    issue = issues[0]
    assert issue["subject"] == "[ENT] Le manuel de maths ne s'ouvre pas"
    assert {f["name"]: f["value"] for f in issue["custom_fields"]}["UAI"] == COLLEGE
    assert "Firefox 128 (Android)" in issue["description"]
    agent_queue = await support.ok("GET", "/queue", "anna-academie", params={"desk": "academie"})
    assert [r["id"] for r in agent_queue["items"]] == [rid]
    assert agent_queue["items"][0]["tracker_issue"] == issue["id"]

    # The pupil adds a word: it reaches the issue as a note, once however many times it is pushed.
    await support.ok("POST", f"/requests/{rid}/messages", "lea-eleve", json={"text": "C'est pour demain !"})
    trackers = support.runtime().parts.get(Trackers)
    await trackers.push()
    await trackers.push()
    journals = _journals(support, issue["id"])
    assert sum("C'est pour demain !" in (j.get("notes") or "") for j in journals) == 1
    # Two pushes at once (the escalation's and the periodic one, or an operator's) note it once too.
    await support.ok("POST", f"/requests/{rid}/messages", "lea-eleve", json={"text": "Merci d'avance"})
    await asyncio.gather(trackers.push(), trackers.push(), trackers.push())
    journals = _journals(support, issue["id"])
    assert sum("Merci d'avance" in (j.get("notes") or "") for j in journals) == 1
    # And two replicas pushing at once (each with its own turns; the lease in the docstore between them).
    other = Trackers(
        trackers.repository,
        trackers.requests,
        trackers.queue,
        trackers.desks,
        public_url=trackers.public_url,
        timeout=trackers.timeout,
        transport=trackers.transport,
    )
    await support.ok("POST", f"/requests/{rid}/messages", "lea-eleve", json={"text": "Je réessaie ce soir"})
    await asyncio.gather(trackers.push(), other.push(), trackers.push(), other.push())
    await trackers.push()  # what a replica left to the other, or to the next round
    journals = _journals(support, issue["id"])
    assert sum("Je réessaie ce soir" in (j.get("notes") or "") for j in journals) == 1

    # The académie answers in Redmine (a public comment, and a private one): the public one reaches the pupil.
    _comment(support, issue["id"], "La licence est ajoutée : réessayez dans une heure.")
    _comment(support, issue["id"], "Note interne du support", private=True)

    async def answered() -> Any:
        seen = await support.ok("GET", f"/requests/{rid}", "lea-eleve")
        return seen if any(m["role"] == "tracker" for m in seen["messages"]) else None

    seen = await until(answered, "the Redmine comment in the request", timeout=30)
    texts = [m["text"] for m in seen["messages"]]
    assert "La licence est ajoutée : réessayez dans une heure." in texts
    assert "Note interne du support" not in texts and "Licence ?" not in texts
    replied = [e for e in support.events(REQUEST_REPLIED)]
    message = requests_pb2.RequestReplied()
    replied[-1].payload.Unpack(message)
    assert message.person_id == "lea-eleve" and message.by == "Support de l'académie"
    # Read again, nothing comes twice.
    await trackers.pull()
    again = await support.ok("GET", f"/requests/{rid}", "lea-eleve")
    assert [m["text"] for m in again["messages"]].count("La licence est ajoutée : réessayez dans une heure.") == 1

    # Resolved in Redmine: resolved here, the pupil told.
    _status(support, issue["id"], "Résolu")

    async def resolved() -> Any:
        return (await support.ok("GET", f"/requests/{rid}", "lea-eleve"))["status"] == "resolved"

    await until(resolved, "the resolution coming back", timeout=30)
    changed = requests_pb2.RequestStatusChanged()
    support.events(REQUEST_STATUS_CHANGED)[-1].payload.Unpack(changed)
    assert changed.status == "resolved" and changed.person_id == "lea-eleve"
    assert support.events(REQUEST_ANSWERED), "the first answer is counted"


async def test_a_request_is_taken_to_its_tracker_by_one_replica_at_a_time(support: Support) -> None:
    """The lease on a request's push: one holder at a time; free again when dropped, or once past (its replica
    died while it pushed)."""
    repository = support.runtime().parts.get(SupportRepository)
    assert await repository.take_push("req-lease", "replica-a", 60)
    assert not await repository.take_push("req-lease", "replica-b", 60)
    await repository.drop_push("req-lease", "replica-b")  # not b's to drop
    assert not await repository.take_push("req-lease", "replica-b", 60)
    await repository.drop_push("req-lease", "replica-a")
    assert await repository.take_push("req-lease", "replica-b", 60)
    assert await repository.take_push("req-dead", "replica-a", 0.2)  # a replica that dies while it pushes
    assert not await repository.take_push("req-dead", "replica-b", 60)
    await asyncio.sleep(0.3)
    assert await repository.take_push("req-dead", "replica-b", 60)


async def test_an_issue_made_before_a_crash_is_found_not_made_again(support: Support) -> None:
    await school_with_people(support)
    await declare_academie(support)
    rid = (await support.ok("POST", "/requests", "lea-eleve", json=asking(subject="Mot de passe perdu")))["id"]
    await support.ok("POST", f"/requests/{rid}/escalate", "rita-referente", json={})
    await until(lambda: _async(redmine_issues(support, rid)), "the Redmine issue")
    # As if the replica died after Redmine made the issue and before the request noted it.
    db = support.runtime().docstore.db
    await db["requests"].update_one({"_id": rid}, {"$set": {"tracker.issue": None}})
    await support.runtime().parts.get(Requests).queue.heard(rid)
    await support.runtime().parts.get(Trackers).push()
    assert len(redmine_issues(support, rid)) == 1
    doc = await db["requests"].find_one({"_id": rid})
    assert doc["tracker"]["issue"] == redmine_issues(support, rid)[0]["id"]


async def test_statuses_clocks_and_reopening(support: Support) -> None:
    await school_with_people(support)
    rid = (await support.ok("POST", "/requests", "lea-eleve", json=asking(category="account")))["id"]
    asked = await support.ok(
        "POST", f"/requests/{rid}/messages", "rita-referente", json={"text": "Quel identifiant ?", "status": "waiting"}
    )
    assert asked["status"] == "waiting"
    # The pupil answers: open again, and the waiting time does not count against the referents.
    answered = await support.ok("POST", f"/requests/{rid}/messages", "lea-eleve", json={"text": "lea.martin"})
    assert answered["status"] == "open"
    doc = await support.runtime().docstore.db["requests"].find_one({"_id": rid})
    assert doc["paused"] > 0 and doc["first_answer_at"] is not None
    # The pupil may not take the referents' part.
    note = await support.call("POST", f"/requests/{rid}/messages", "lea-eleve", json={"text": "x", "internal": True})
    assert note.status_code == 403
    assert (
        await support.call("PUT", f"/requests/{rid}/status", "lea-eleve", json={"status": "waiting"})
    ).status_code == 422
    resolved = await support.ok("PUT", f"/requests/{rid}/status", "rita-referente", json={"status": "resolved"})
    assert resolved["status"] == "resolved" and resolved["status_label"] == "Résolue"
    # A reply within 7 days reopens it.
    reopened = await support.ok("POST", f"/requests/{rid}/messages", "lea-eleve", json={"text": "Ça recommence"})
    assert reopened["status"] == "open"
    # Resolved 8 days ago: the daily look closes it, and a closed request stays closed.
    await support.ok("PUT", f"/requests/{rid}/status", "rita-referente", json={"status": "resolved"})
    db = support.runtime().docstore.db
    await db["requests"].update_one({"_id": rid}, {"$set": {"resolved_at": datetime.now(UTC) - timedelta(days=8)}})
    requests = support.runtime().parts.get(Requests)
    await requests.queue.heard(rid)
    assert await requests.close_resolved() == 1
    late = await support.call("POST", f"/requests/{rid}/messages", "lea-eleve", json={"text": "Encore"})
    assert late.status_code == 409 and "open a new one" in late.json()["detail"]


async def test_queue_filters_bulk_assignment_and_overdue(support: Support) -> None:
    await school_with_people(support)
    ids = []
    for n, category in enumerate(["account", "mail", "account", "equipment"]):
        made = await support.ok(
            "POST",
            "/requests",
            "lea-eleve" if n % 2 == 0 else "paul-eleve",
            json=asking(category=category, subject=f"Souci numéro {n} cahier"),
        )
        ids.append(made["id"])
    page = await support.ok("GET", "/queue", "rita-referente", params={"category": "account"})
    assert [r["id"] for r in page["items"]] == [ids[2], ids[0]]
    page = await support.ok("GET", "/queue", "rita-referente", params={"q": "numero 3"})
    assert [r["id"] for r in page["items"]] == [ids[3]]
    first = await support.ok("GET", "/queue", "rita-referente", params={"size": 3})
    second = await support.ok("GET", "/queue", "rita-referente", params={"size": 3, "before": first["next"]})
    assert [r["id"] for r in first["items"] + second["items"]] == ids[::-1] and second["next"] is None
    # Bulk: three to the referent herself; one she may not give to a pupil.
    done = await support.ok("POST", "/assign", "rita-referente", json={"ids": ids[:3], "assignee": "rita-referente"})
    assert done == {"assigned": 3, "refused": {}}
    refused = await support.ok("POST", "/assign", "rita-referente", json={"ids": [ids[3]], "assignee": "paul-eleve"})
    assert refused["assigned"] == 0 and "does not handle" in refused["refused"][ids[3]]
    mine = await support.ok("GET", "/queue", "rita-referente", params={"assignee": "me", "status": "open"})
    assert {r["id"] for r in mine["items"]} == set(ids[:3])
    # The school's service level passed (as if opened 9 hours ago, no answer): flagged, and told once.
    db = support.runtime().docstore.db
    await db["requests"].update_one({"_id": ids[3]}, {"$set": {"level_since": datetime.now(UTC) - timedelta(hours=9)}})
    requests = support.runtime().parts.get(Requests)
    await requests.queue.heard(ids[3])
    late = await support.ok("GET", "/queue", "rita-referente", params={"overdue": "true"})
    assert [r["id"] for r in late["items"]] == [ids[3]] and late["items"][0]["overdue"] == "first_answer"
    assert await requests.look_overdue() == 1
    assert await requests.look_overdue() == 0
    overdue = requests_pb2.RequestOverdue()
    await until(lambda: _async(support.events(REQUEST_OVERDUE)), "the overdue event")
    support.events(REQUEST_OVERDUE)[0].payload.Unpack(overdue)
    assert list(overdue.tell) == ["rita-referente"] and overdue.clock == "first_answer"


async def test_bad_input_gets_clear_errors(support: Support) -> None:
    await school_with_people(support)
    unknown = await support.call("POST", "/requests", "lea-eleve", json=asking(category="licorne"))
    assert unknown.status_code == 422 and "unknown category 'licorne'" in unknown.json()["detail"]
    huge = await support.call("POST", "/requests", "lea-eleve", json=asking(description="x" * 20_001))
    assert huge.status_code == 422 and "description" in huge.text
    elsewhere = await support.call("POST", "/requests", "lea-eleve", json=asking(uai=LYCEE))
    assert elsewhere.status_code == 422 and "not one of yours" in elsewhere.json()["detail"]
    extra = await support.call("POST", "/requests", "lea-eleve", json={**asking(), "priority": "urgent"})
    assert extra.status_code == 422
    rid = (await support.ok("POST", "/requests", "lea-eleve", json=asking()))["id"]
    files = f"/requests/{rid}/files"
    empty = await support.call("POST", files, "lea-eleve", params={"name": "vide.png"}, content=b"")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    program = await support.call(
        "POST", files, "lea-eleve", params={"name": "a.exe"}, content=b"MZ\x90\x00" + b"\x00" * 64
    )
    assert program.status_code == 415
    big = await support.call(
        "POST", files, "lea-eleve", params={"name": "b.png"}, content=PNG + b"\x00" * (10 * 1024 * 1024)
    )
    assert big.status_code == 413
    shot = await support.ok("POST", files, "lea-eleve", params={"name": "capture.png"}, content=PNG)
    assert shot["type"] == "image/png"
    got = await support.call("GET", f"{files}/{shot['id']}", "rita-referente")
    assert got.status_code == 200 and got.content == PNG
    assert (await support.call("GET", f"{files}/{shot['id']}", "yves-autre")).status_code == 404
    assert (await support.call("GET", "/requests/not-an-id", "lea-eleve")).status_code == 422
    assert (await support.call("GET", "/queue", "lea-eleve")).status_code == 403
    no_desk = await support.call("POST", f"/requests/{rid}/escalate", "rita-referente", json={"to": "collectivite"})
    assert no_desk.status_code == 409 and "no desk" in no_desk.json()["detail"]
    assert (await support.call("PUT", "/operator/desks/x1", "lea-eleve", json={})).status_code == 403


@pytest.mark.parametrize("who", ["paul-eleve"])
async def test_mine_lists_only_ones_own(support: Support, who: str) -> None:
    await school_with_people(support)
    await support.ok("POST", "/requests", "lea-eleve", json=asking())
    theirs = await support.ok("POST", "/requests", who, json=asking(subject="Mon casier numérique"))
    page = await support.ok("GET", "/requests", who)
    assert [r["id"] for r in page["items"]] == [theirs["id"]]


async def _async(value: Any) -> Any:
    return value


def _journals(support: Support, issue: int) -> list[dict[str, Any]]:
    found = httpx.get(
        f"{support.redmine.url}/issues/{issue}.json",
        params={"include": "journals"},
        headers=support.redmine.headers,
        timeout=10,
    )
    return list(found.raise_for_status().json()["issue"]["journals"])


def _comment(support: Support, issue: int, text: str, *, private: bool = False) -> None:
    httpx.put(
        f"{support.redmine.url}/issues/{issue}.json",
        json={"issue": {"notes": text, "private_notes": private}},
        headers=support.redmine.headers,
        timeout=10,
    ).raise_for_status()


def _status(support: Support, issue: int, name: str) -> None:
    statuses = httpx.get(f"{support.redmine.url}/issue_statuses.json", headers=support.redmine.headers, timeout=10)
    status_id = next(s["id"] for s in statuses.json()["issue_statuses"] if s["name"] == name)
    httpx.put(
        f"{support.redmine.url}/issues/{issue}.json",
        json={"issue": {"status_id": status_id}},
        headers=support.redmine.headers,
        timeout=10,
    ).raise_for_status()


async def test_a_desks_redmine_key_is_sealed_and_sealed_again_after_a_rotation(support: Support) -> None:
    await declare_academie(support)
    db = support.runtime().docstore.db
    kept = (await db["desks"].find_one({"_id": "academie"}))["redmine"]["api_key"]
    assert kept.startswith("enc1:") and support.redmine.desk["api_key"] not in kept
    shown = await support.ok("GET", "/operator/desks", "ops", "operator")
    assert "api_key" not in shown[0]["redmine"]
    # The key rotated: the old one listed as old, the desks sealed again at start, the Redmine key unchanged.
    old = support.runtime().parts.get(Requests).desks
    rotated = Desks(
        old.repository,
        SecretBox("a-brand-new-secrets-key-0123", ["maille-support-dev-secrets-key"]),
        school=old.school,
        referent_functions=[],
    )
    assert await rotated.seal_again() == 1
    desk = (await rotated.load())["academie"]
    assert desk["redmine"]["api_key"] != kept and rotated.redmine_key(desk) == support.redmine.desk["api_key"]
    assert await rotated.seal_again() == 0


async def test_a_desk_declared_wrong_is_refused_clearly(support: Support) -> None:
    desk = {"name": "Support", "kind": "academie"}
    huge = {"url": "https://redmine.example.org", "project": "p", "reference_field": 10**36, "api_key": "k"}
    answer = await support.call("PUT", "/operator/desks/academie", "ops", "operator", json={**desk, "redmine": huge})
    assert answer.status_code == 422 and "reference_field" in answer.text
    no_key = {"url": "https://redmine.example.org", "project": "p", "reference_field": 3}
    answer = await support.call("PUT", "/operator/desks/academie", "ops", "operator", json={**desk, "redmine": no_key})
    assert answer.status_code == 422 and "API key" in answer.json()["detail"]
    wrong = await support.call("PUT", "/operator/desks/academie", "ops", "operator", json={**desk, "kind": "mairie"})
    assert wrong.status_code == 422


async def test_the_direction_names_referents_among_its_staff(support: Support) -> None:
    await school_with_people(support)
    staff = await support.ok("GET", f"/schools/{COLLEGE}/staff", "marc-principal")
    assert {s["id"]: s["named"] for s in staff} == {"marc-principal": False, "rita-referente": True}
    overview = await support.ok("GET", "/me", "marc-principal")
    assert [s["uai"] for s in overview["directs"]] == [COLLEGE]
    for stranger in ("yves-autre", "rita-referente", "lea-eleve"):
        assert (await support.call("GET", f"/schools/{COLLEGE}/staff", stranger)).status_code == 403
    pupil = await support.call(
        "PUT", f"/schools/{COLLEGE}/referents", "marc-principal", json={"persons": ["lea-eleve"]}
    )
    assert pupil.status_code == 422 and "not on the staff" in pupil.json()["detail"]
    # Nobody named: the direction takes the requests (and is told of them).
    await support.ok("PUT", f"/schools/{COLLEGE}/referents", "marc-principal", json={"persons": []})
    rid = (await support.ok("POST", "/requests", "lea-eleve", json=asking()))["id"]
    assert (await support.call("GET", f"/requests/{rid}", "rita-referente")).status_code == 404
    assert (await support.ok("GET", f"/requests/{rid}", "marc-principal"))["can"]["escalate"]


async def test_a_referent_renamed_by_the_night_import_stays_on_the_staff(support: Support) -> None:
    """The AAF's update names what changed: a new last name is written to support's copy without a look at what it
    held, and the referent is still on the staff — under their new name."""
    await school_with_people(support)
    renamed = person("rita-referente", "National_ENS")
    renamed.last_name = "Martin-Leroy"
    await support.publish(PERSON_UPDATED, pb.PersonUpdated(person=renamed, changed=["last_name"]))

    async def staff() -> dict[str, tuple[str, bool]] | None:
        found = await support.ok("GET", f"/schools/{COLLEGE}/staff", "marc-principal")
        named = {s["id"]: (s["name"], s["named"]) for s in found}
        return named if named.get("rita-referente", ("",))[0].endswith("Martin-Leroy") else None

    assert await until(staff, "the new name") == {
        "marc-principal": ("Marc Martin", False),
        "rita-referente": ("Rita Martin-Leroy", True),
    }
