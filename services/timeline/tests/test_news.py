"""News on real NATS, docstore and Keycloak: who may publish where (the directory says), who an item reaches, read
counts by profile, drafts, times, files and comments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from maille.identity.v1 import directory_pb2 as pb
from maille_contracts import PERSON_UPDATED
from maille_devstack.pytest_plugin import make_person_login, until
from maille_timeline.news import News

from .conftest import API, Timeline

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def someone(pid: str, school: str, code: str, *, groups=(), children=(), relatives=(), emails=()) -> pb.Person:
    return pb.Person(
        id=pid,
        first_name=pid.split("-")[0].capitalize(),
        last_name="Durand",
        profiles=[pb.Profile(structure_id=f"S{school}", uai=school, code=code)],
        group_ids=[f"S{school}${g}" for g in groups],
        children=list(children),
        relatives=[pb.Relative(person_id=r, legal=True) for r in relatives],
        emails=list(emails),
    )


async def schools(timeline: Timeline, *uais: str) -> None:
    for uai in uais:
        await timeline.publish(
            "identity.structure.created.v1",
            pb.StructureCreated(structure=pb.Structure(id=f"S{uai}", uai=uai, name=f"École {uai}", type="ECOLE")),
        )


def uais(n: int) -> list[str]:
    base = uuid.uuid4().int % 9_000_000 + 1_000_000
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return [f"{base + i:07d}{letters[(base + i) % 23]}" for i in range(n)]


async def a_class(timeline: Timeline, school: str, size: int = 3) -> dict[str, list[str]]:
    """A class 6A of `size` pupils, a parent each, its teacher, and the school's head."""
    t = uuid.uuid4().hex[:6]
    pupils = [f"eleve{n}-{t}" for n in range(size)]
    parents = [f"parent{n}-{t}" for n in range(size)]
    teacher, head = f"prof-{t}", f"direction-{t}"
    await timeline.persons(
        *(someone(pupils[n], school, "National_ELV", groups=["6A"], relatives=[parents[n]]) for n in range(size)),
        *(someone(parents[n], school, "National_TUT", children=[pupils[n]]) for n in range(size)),
        someone(head, school, "National_DIR"),
        someone(teacher, school, "National_ENS", groups=["6A"]),
    )
    return {"pupils": pupils, "parents": parents, "teacher": [teacher], "head": [head]}


async def draft(timeline: Timeline, author: str, audience: dict, **fields) -> dict:
    answer = await timeline.client.post(
        f"{API}/news",
        json={"audience": audience, "title": "Fête de l'école", "body": "Samedi 14 juin.", **fields},
        headers=timeline.as_person(author),
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def test_a_teachers_news_reaches_the_class_and_its_parents_with_read_counts(timeline: Timeline) -> None:
    [school] = uais(1)
    await schools(timeline, school)
    people = await a_class(timeline, school)
    teacher = timeline.as_person(people["teacher"][0])
    targets = (await timeline.client.get(f"{API}/news/targets", headers=teacher)).json()
    assert {"scope": "group", "id": f"S{school}$6A", "name": "6A", "school": school} in targets

    item = await draft(timeline, people["teacher"][0], {"scope": "group", "id": f"S{school}$6A"})
    assert item["state"] == "draft"
    published = await timeline.client.post(f"{API}/news/{item['id']}/publish", json={}, headers=teacher)
    assert published.status_code == 200 and published.json()["state"] == "published"

    parent = people["parents"][1]
    feed = (await timeline.feed(parent))["items"]
    assert feed[0]["title"] == "Actualité : Fête de l'école" and feed[0]["link"] == f"/actualites/{item['id']}"
    boards = (await timeline.client.get(f"{API}/news/boards", headers=timeline.as_person(parent))).json()
    assert {b["key"] for b in boards} == {f"school:{school}", f"group:S{school}$6A"}  # their child's class's page too
    page = (
        await timeline.client.get(
            f"{API}/news", params={"board": f"group:S{school}$6A"}, headers=timeline.as_person(parent)
        )
    ).json()
    assert [i["title"] for i in page["items"]] == ["Fête de l'école"] and page["items"][0]["read"] is False
    read = await timeline.client.get(f"{API}/news/{item['id']}", headers=timeline.as_person(parent))
    assert read.status_code == 200 and read.json()["body"] == "Samedi 14 juin." and read.json()["stats"] is None

    stats = {
        r["profile"]: r for r in (await timeline.client.get(f"{API}/news/{item['id']}/stats", headers=teacher)).json()
    }
    assert stats["National_TUT"] == {"profile": "National_TUT", "reached": 3, "read": 1}
    assert stats["National_ELV"]["reached"] == 3 and stats["National_ELV"]["read"] == 0
    # the head is not in 6A: not reached, and does not see it
    head_read = await timeline.client.get(f"{API}/news/{item['id']}", headers=timeline.as_person(people["head"][0]))
    assert head_read.status_code == 404


async def test_a_circonscriptions_news_reaches_exactly_its_three_schools(timeline: Timeline) -> None:
    four = uais(4)
    await schools(timeline, *four)
    classes = [await a_class(timeline, uai, size=2) for uai in four]
    advisor = f"conseiller-{uuid.uuid4().hex[:6]}"
    await timeline.persons(someone(advisor, four[0], "National_ENS"))
    operator_id, secret = timeline.keycloak.make(roles=("operator",), audience="maille-timeline")
    operator = {"authorization": f"Bearer {timeline.keycloak.token(operator_id, secret)}"}
    code = f"circo-{uuid.uuid4().hex[:6]}"
    declared = await timeline.client.put(
        f"{API}/operator/circonscriptions/{code}",
        json={"name": "Circonscription de Vitré", "schools": four[:3], "advisors": [advisor]},
        headers=operator,
    )
    assert declared.status_code == 200, declared.text
    refused = await timeline.client.put(
        f"{API}/operator/circonscriptions/{code}",
        json={"name": "x", "schools": []},
        headers=timeline.as_person(advisor),
    )
    assert refused.status_code == 403
    bad = await timeline.client.put(
        f"{API}/operator/circonscriptions/{code}", json={"name": "x", "schools": ["123"]}, headers=operator
    )
    assert bad.status_code == 422 and "UAI" in bad.text

    item = await draft(timeline, advisor, {"scope": "circonscription", "id": code})
    done = await timeline.client.post(f"{API}/news/{item['id']}/publish", json={}, headers=timeline.as_person(advisor))
    assert done.status_code == 200
    news = timeline.runtime().parts.get(News)
    reached = {p for ids in (await news.repository.news(item["id"]))["reached"].values() for p in ids}
    inside = {p for c in classes[:3] for ids in c.values() for p in ids}
    outside = {p for ids in classes[3].values() for p in ids}
    assert reached == inside | {advisor}  # (the advisor teaches in one of the three) and nobody else
    assert not (outside & reached)
    assert (await timeline.feed(classes[2]["parents"][0]))["items"][0]["title"] == "Actualité : Fête de l'école"
    assert (await timeline.feed(classes[3]["parents"][0]))["items"] == []


async def test_a_publisher_who_left_the_school_can_no_longer_publish(timeline: Timeline) -> None:
    [school] = uais(1)
    await schools(timeline, school)
    people = await a_class(timeline, school)
    head = people["head"][0]
    first = await draft(timeline, head, {"scope": "school", "id": school, "profiles": ["National_TUT"]})
    second = await draft(timeline, head, {"scope": "school", "id": school})
    ok = await timeline.client.post(f"{API}/news/{first['id']}/publish", json={}, headers=timeline.as_person(head))
    assert ok.status_code == 200 and set(ok.json()["audience"]["profiles"]) == {"National_TUT"}
    # the next night's AAF: the head has moved to another school
    [other] = uais(1)
    await timeline.publish("identity.person.updated.v1", pb.PersonUpdated(person=someone(head, other, "National_DIR")))
    news = timeline.runtime().parts.get(News)

    async def moved() -> bool:
        return other in ((await news.repository.person(head)) or {}).get("schools", {})

    await until(moved, "the head's move")
    refused = await timeline.client.post(
        f"{API}/news/{second['id']}/publish", json={}, headers=timeline.as_person(head)
    )
    assert refused.status_code == 403 and "may not publish" in refused.json()["detail"]
    again = await timeline.client.post(
        f"{API}/news",
        json={"audience": {"scope": "school", "id": school}, "title": "x"},
        headers=timeline.as_person(head),
    )
    assert again.status_code == 403


async def test_a_compte_ecole_publishes_for_its_school_once_an_operator_names_it(timeline: Timeline) -> None:
    [school] = uais(1)
    await schools(timeline, school)
    await a_class(timeline, school)
    account = f"ecole-{uuid.uuid4().hex[:6]}"
    await timeline.persons(someone(account, school, "National_ETA"))
    headers = timeline.as_person(account)
    before = await timeline.client.post(
        f"{API}/news", json={"audience": {"scope": "school", "id": school}, "title": "x"}, headers=headers
    )
    assert before.status_code == 403
    operator_id, secret = timeline.keycloak.make(roles=("operator",), audience="maille-timeline")
    operator = {"authorization": f"Bearer {timeline.keycloak.token(operator_id, secret)}"}
    named = await timeline.client.put(
        f"{API}/operator/schools/{school}/accounts", json={"persons": [account]}, headers=operator
    )
    assert named.status_code == 204
    targets = (await timeline.client.get(f"{API}/news/targets", headers=headers)).json()
    assert {"scope": "school", "id": school, "name": f"École {school}", "school": None} in targets
    item = await draft(timeline, account, {"scope": "school", "id": school})
    assert (await timeline.client.post(f"{API}/news/{item['id']}/publish", json={}, headers=headers)).status_code == 200


async def test_drafts_times_files_and_comments(timeline: Timeline) -> None:
    [school] = uais(1)
    await schools(timeline, school)
    people = await a_class(timeline, school)
    head = people["head"][0]
    me = timeline.as_person(head)
    pupil = timeline.as_person(people["pupils"][0])
    item = await draft(timeline, head, {"scope": "school", "id": school}, comments=True)

    # files: an image kept, a file of no allowed type refused, a draft only
    image = await timeline.client.post(
        f"{API}/news/{item['id']}/files", params={"name": "affiche.png"}, content=PNG, headers=me
    )
    assert image.status_code == 201 and image.json()["type"] == "image/png"
    exe = await timeline.client.post(
        f"{API}/news/{item['id']}/files", params={"name": "x.exe"}, content=b"MZ\x90\x00" + bytes(200), headers=me
    )
    assert exe.status_code == 415
    changed = await timeline.client.patch(f"{API}/news/{item['id']}", json={"title": "Fête de fin d'année"}, headers=me)
    assert changed.json()["title"] == "Fête de fin d'année"
    assert [d["id"] for d in (await timeline.client.get(f"{API}/news/mine", headers=me)).json()] == [item["id"]]

    # scheduled: published when its time comes
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    scheduled = await timeline.client.post(f"{API}/news/{item['id']}/publish", json={"at": soon}, headers=me)
    assert scheduled.json()["state"] == "scheduled"
    assert (await timeline.client.get(f"{API}/news/{item['id']}", headers=pupil)).status_code == 404
    news = timeline.runtime().parts.get(News)

    async def published() -> bool:
        await news.publish_due()
        return (await timeline.client.get(f"{API}/news/{item['id']}", headers=pupil)).status_code == 200

    await until(published, "the scheduled item published")
    late = await timeline.client.patch(f"{API}/news/{item['id']}", json={"title": "x"}, headers=me)
    assert late.status_code == 409
    got = await timeline.client.get(f"{API}/news/{item['id']}/files/{image.json()['id']}", headers=pupil)
    assert got.status_code == 200 and got.content == PNG and got.headers["content-disposition"].startswith("inline")

    # comments: a pupil's waits for the head's approval
    said = await timeline.client.post(f"{API}/news/{item['id']}/comments", json={"text": "Super !"}, headers=pupil)
    assert said.status_code == 201 and said.json()["approved"] is False
    other = timeline.as_person(people["parents"][0])
    assert (await timeline.client.get(f"{API}/news/{item['id']}", headers=other)).json()["comments_list"] == []
    assert [
        c["text"] for c in (await timeline.client.get(f"{API}/news/{item['id']}", headers=me)).json()["comments_list"]
    ] == ["Super !"]
    approve = await timeline.client.put(
        f"{API}/news/{item['id']}/comments/{said.json()['id']}", json={"approved": True}, headers=me
    )
    assert approve.status_code == 204
    assert [
        c["text"]
        for c in (await timeline.client.get(f"{API}/news/{item['id']}", headers=other)).json()["comments_list"]
    ] == ["Super !"]
    by_other = await timeline.client.put(
        f"{API}/news/{item['id']}/comments/{said.json()['id']}", json={"approved": False}, headers=other
    )
    assert by_other.status_code == 404

    # withdrawn: off the page, and unreadable
    assert (await timeline.client.delete(f"{API}/news/{item['id']}", headers=me)).status_code == 204
    assert (await timeline.client.get(f"{API}/news/{item['id']}", headers=pupil)).status_code == 404
    page = await timeline.client.get(f"{API}/news", params={"board": f"school:{school}"}, headers=pupil)
    assert page.json()["items"] == []


async def test_bad_news_input_is_named(timeline: Timeline) -> None:
    [school] = uais(1)
    await schools(timeline, school)
    people = await a_class(timeline, school)
    me = timeline.as_person(people["head"][0])
    cases = [
        ({"audience": {"scope": "planet", "id": "x"}, "title": "x"}, "audience"),
        ({"audience": {"scope": "school", "id": school, "profiles": ["parents"]}, "title": "x"}, "profile code"),
        ({"audience": {"scope": "school", "id": school}, "title": "   "}, "title"),
        ({"audience": {"scope": "school", "id": school}, "title": "x", "expires_at": "2020-01-01T00:00:00Z"}, "past"),
        (
            {"audience": {"scope": "school", "id": school}, "title": "x", "expires_at": "2030-01-01T00:00:00"},
            "expires_at",
        ),
    ]
    for body, named in cases:
        answer = await timeline.client.post(f"{API}/news", json=body, headers=me)
        assert answer.status_code == 422 and named in answer.text, (body, answer.text)
    unknown = await timeline.client.get(f"{API}/news/n0000000000000aaaaaaaaaa", headers=me)
    assert unknown.status_code == 404
    assert (await timeline.client.get(f"{API}/news", params={"board": "nowhere"}, headers=me)).status_code == 422
    _ = make_person_login


async def test_a_renamed_pupil_keeps_their_class_and_a_pupil_who_changes_class_moves(timeline: Timeline) -> None:
    """The night's AAF names what changed: a new first name leaves the pupil's class as it was, a change of class
    moves them from one class's audience to the other's."""
    [school] = uais(1)
    await schools(timeline, school)
    people = await a_class(timeline, school)
    renamed, moved = people["pupils"][:2]
    news = timeline.runtime().parts.get(News)
    six_a, six_b = f"group:S{school}$6A", f"group:S{school}$6B"

    new_name = someone(renamed, school, "National_ELV", groups=["6A"], relatives=[people["parents"][0]])
    new_name.first_name = "Maëlys"
    await timeline.publish(PERSON_UPDATED, pb.PersonUpdated(person=new_name, changed=["first_name"]))
    new_class = someone(moved, school, "National_ELV", groups=["6B"], relatives=[people["parents"][1]])
    await timeline.publish(PERSON_UPDATED, pb.PersonUpdated(person=new_class, changed=["profiles", "group_ids"]))

    async def followed() -> bool:
        copy = (await news.repository.person(renamed)) or {}
        return copy.get("first_name") == "Maëlys" and moved in (await news.repository.members([six_b]))[six_b]

    await until(followed, "the two updates")
    members = await news.repository.members([six_a, six_b])
    assert renamed in members[six_a] and renamed not in members[six_b]
    assert moved not in members[six_a] and members[six_b] == [moved]
    assert (await news.repository.person(renamed))["groups"] == [f"S{school}$6A"]
