"""Subscriptions as a vendor's GAR tooling sends them (the abonnement XML) and as JSON, and licences assigned by
a school's direction: never more than bought, even with requests in parallel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from maille_catalog.abonnements import NS

pytestmark = pytest.mark.keycloak

A, B = "0750001A", "0750002B"
ARK = "ark:/12345/maths-6e"
VENDOR = "/api/catalog/v1/vendor"
XML = {"content-type": "application/xml"}


def abonnement(fields: dict, root: str = "abonnement") -> bytes:
    element = etree.Element(f"{{{NS}}}{root}", nsmap={None: NS})
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            etree.SubElement(element, f"{{{NS}}}{name}").text = str(item)
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def texts(body: bytes, name: str) -> list[str]:
    return [e.text for e in etree.fromstring(body).iter(f"{{{NS}}}{name}")]


async def test_a_vendor_manages_a_subscription_with_the_gar_abonnement_xml(catalog, catalog_helpers) -> None:
    h = catalog_helpers
    await catalog.schools(A, B)
    await catalog.known("schools", B)
    editor, auth = catalog.vendor()
    assert (await catalog.client.post(f"{VENDOR}/resources", json=h.resource(ARK), headers=auth)).status_code == 201
    fields = h.subscription(
        "ABO-2026-0001", ARK, [A, B], typeAffectation="INDIV", nbLicenceGlobale=100, nbLicenceEleve="ILLIMITE"
    )

    created = await catalog.client.put(
        "/api/catalog/v1/abonnements/ABO-2026-0001", content=abonnement(fields), headers={**auth, **XML}
    )
    assert created.status_code == 201, created.text
    assert created.headers["content-type"].startswith("application/xml")
    assert texts(created.content, "uaiEtab") == [A, B] and texts(created.content, "nbLicenceEleve") == ["ILLIMITE"]
    again = await catalog.client.put(
        "/api/catalog/v1/abonnements/ABO-2026-0001", content=abonnement(fields), headers={**auth, **XML}
    )
    assert again.status_code == 409 and "existe deja" in again.json()["detail"]

    # The GAR's update: no uaiEtab, and the start kept whatever the body says.
    change = {k: v for k, v in fields.items() if k != "uaiEtab"} | {
        "finValidite": "2031-08-31T23:59:59",
        "debutValidite": "2027-01-01T00:00:00",
    }
    updated = await catalog.client.post(
        "/api/catalog/v1/abonnements/ABO-2026-0001", content=abonnement(change), headers={**auth, **XML}
    )
    assert updated.status_code == 200, updated.text
    assert texts(updated.content, "finValidite") == ["2031-08-31T23:59:59"]
    assert texts(updated.content, "debutValidite") == ["2026-09-01T00:00:00"]

    filtre = lambda uai: (  # noqa: E731
        f'<filtres xmlns="{NS}"><filtre><filtreNom>uaiEtab</filtreNom><filtreValeur>{uai}</filtreValeur></filtre></filtres>'.encode()  # noqa: E501
    )
    listed = await catalog.client.request(
        "GET", "/api/catalog/v1/abonnements?debut=0&fin=5000", content=filtre(B), headers={**auth, **XML}
    )
    assert listed.status_code == 200 and texts(listed.content, "idAbonnement") == ["ABO-2026-0001"]
    none = await catalog.client.request(
        "GET", "/api/catalog/v1/abonnements", content=filtre("0750003C"), headers={**auth, **XML}
    )
    assert texts(none.content, "idAbonnement") == []
    json_view = (await catalog.client.get(f"{VENDOR}/subscriptions/ABO-2026-0001", headers=auth)).json()
    assert (
        json_view["version"] == 2 and json_view["licencesAffectees"]["total"] == 0 and json_view["idEditeur"] == editor
    )

    # Another vendor sees nothing of it and cannot touch it.
    _, other = catalog.vendor()
    assert (await catalog.client.delete("/api/catalog/v1/abonnements/ABO-2026-0001", headers=other)).status_code == 403
    assert texts((await catalog.client.get("/api/catalog/v1/abonnements", headers=other)).content, "idAbonnement") == []

    assert (await catalog.client.delete("/api/catalog/v1/abonnements/ABO-2026-0001", headers=auth)).status_code == 204
    assert (await catalog.client.get(f"{VENDOR}/subscriptions/ABO-2026-0001", headers=auth)).status_code == 404
    assert await catalog.events("catalog.subscription.") == [
        "catalog.subscription.created.v1",
        "catalog.subscription.updated.v1",
        "catalog.subscription.deleted.v1",
    ]


async def test_bad_subscriptions_are_refused_naming_what_is_wrong(catalog, catalog_helpers) -> None:
    h = catalog_helpers
    await catalog.schools(A)
    await catalog.known("schools", A)
    _, auth = catalog.vendor()
    await catalog.client.post(f"{VENDOR}/resources", json=h.resource(ARK), headers=auth)
    _, other = catalog.vendor()
    await catalog.client.post(f"{VENDOR}/resources", json=h.resource("ark:/12345/autre"), headers=other)

    async def refused(body: dict, status: int = 422) -> str:
        answer = await catalog.client.post(f"{VENDOR}/subscriptions", json=body, headers=auth)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        return str(answer.json())

    assert "finValidite must be after debutValidite" in await refused(
        h.subscription("S1", ARK, [A], finValidite="2026-08-01T00:00:00")
    )
    assert "0750009J" in await refused(h.subscription("S2", ARK, [A, "0750009J"]))
    assert "idRessource" in await refused(h.subscription("S3", "ark:/1234/too-short-naan", [A]))
    assert "uaiEtab" in await refused(h.subscription("S4", ARK, ["75000A"]))
    assert "nbLicenceGlobale" in await refused(
        h.subscription("S5", ARK, [A], typeAffectation="INDIV", nbLicenceGlobale=None)
    )
    assert "nbLicenceEleve" in await refused(h.subscription("S6", ARK, [A], nbLicenceEleve=-3))
    assert "another vendor" in await refused(h.subscription("S7", "ark:/12345/autre", [A]), 403)
    assert "publish it first" in await refused(h.subscription("S8", "ark:/12345/inconnue", [A]))

    async def xml_refused(body: bytes, status: int) -> str:
        answer = await catalog.client.put("/api/catalog/v1/abonnements/S9", content=body, headers={**auth, **XML})
        assert answer.status_code == status, answer.text
        return answer.json()["detail"]

    assert "not well-formed" in await xml_refused(b"<abonnement><idAbonnement>S9</abonnement>", 400)
    entities = (
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<abonnement xmlns="' + NS.encode() + b'"><idAbonnement>&x;</idAbonnement></abonnement>'
    )
    assert "DOCTYPE" in await xml_refused(entities, 400)
    assert "root element" in await xml_refused(b"<autre/>", 400)
    assert "nbLicenceEleve" in await xml_refused(
        abonnement(h.subscription("S9", ARK, [A]) | {"nbLicenceEleve": "beaucoup"}), 400
    )
    json_body = await catalog.client.put(
        "/api/catalog/v1/abonnements/S9", json=h.subscription("S9", ARK, [A]), headers=auth
    )
    assert json_body.status_code == 415
    assert (await catalog.client.get(f"{VENDOR}/subscriptions", headers=auth)).json()[
        "abonnements"
    ] == []  # nothing written
    assert await catalog.events("catalog.subscription.") == []


async def test_licences_are_never_assigned_beyond_what_was_bought(catalog, catalog_helpers) -> None:
    h = catalog_helpers
    await catalog.schools(A, B)
    klass = f"S{A}$6A"
    await catalog.directory(
        (
            "identity.group.created.v1",
            h.pb.GroupCreated(
                group=h.pb.Group(id=klass, structure_id=f"S{A}", code="6A", label="6e A", kind=h.pb.GROUP_KIND_CLASS)
            ),
        )
    )
    pupils = [h.person(f"pupil-{n:02d}", (A, "National_ELV"), groups=(klass,)) for n in range(30)]
    await catalog.persons(
        h.person("head", (A, "National_DIR")),
        h.person("teacher", (A, "National_ENS")),
        h.person("parent", (A, "National_TUT")),
        *pupils,
    )
    await catalog.known("persons", "pupil-29")
    await catalog.known("groups", klass)
    _, auth = catalog.vendor()
    await catalog.client.post(f"{VENDOR}/resources", json=h.resource(ARK), headers=auth)
    body = h.subscription(
        "INDIV-1",
        ARK,
        [A, B],
        typeAffectation="INDIV",
        nbLicenceGlobale=None,
        nbLicenceEleve=10,
        nbLicenceEnseignant=1,
        categorieAffectation="transferable",
    )
    assert (await catalog.client.post(f"{VENDOR}/subscriptions", json=body, headers=auth)).status_code == 201
    head = catalog.as_person("head")
    base = f"/api/catalog/v1/schools/{A}/subscriptions/INDIV-1/assignments"

    # 15 requests at once, 2 pupils each, 10 licences: exactly 5 succeed, whole; the others are refused whole.
    answers = await asyncio.gather(
        *(
            catalog.client.post(
                base, json={"personnes": [f"pupil-{2 * n:02d}", f"pupil-{2 * n + 1:02d}"]}, headers=head
            )
            for n in range(15)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 5 + [409] * 10, [a.text for a in answers if a.status_code not in (200, 409)]
    assert all("left of 10" in a.json()["detail"] for a in answers if a.status_code == 409)
    held = (await catalog.client.get(base, headers=head)).json()
    assert len(held) == 10 and {a["public"] for a in held} == {"ELEVE"}
    subscription = (await catalog.client.get(f"{VENDOR}/subscriptions/INDIV-1", headers=auth)).json()
    assert subscription["licencesAffectees"] == {
        "total": 10,
        "ELEVE": 10,
        "ENSEIGNANT": 0,
        "DOCUMENTALISTE": 0,
        "AUTRE PERSONNEL": 0,
    }
    again = await catalog.client.post(
        base, json={"personnes": [held[0]["personne"]]}, headers=head
    )  # holds one already
    assert (
        again.status_code == 200
        and again.json()["affectees"] == []
        and again.json()["dejaAffectees"] == [held[0]["personne"]]
    )

    # The vendor cannot take away licences in use; a parent is no public of it; nor can a teacher assign.
    lower = {k: v for k, v in body.items() if k != "uaiEtab"} | {"nbLicenceEleve": 5}
    refused = await catalog.client.put(f"{VENDOR}/subscriptions/INDIV-1", json=lower, headers=auth)
    assert refused.status_code == 409 and "10 licences already assigned" in refused.json()["detail"]
    assert (await catalog.client.post(base, json={"personnes": ["parent"]}, headers=head)).status_code == 422
    assert (await catalog.client.post(base, json={"personnes": ["ghost"]}, headers=head)).json()[
        "detail"
    ] == "unknown persons: ghost"
    assert (
        await catalog.client.post(base, json={"personnes": ["teacher"]}, headers=catalog.as_person("teacher"))
    ).status_code == 403
    # A teacher holding identity's role gar_resp_aff assigns in their own school.
    manager = catalog.as_person("teacher", "gar_resp_aff")
    assert (await catalog.client.get(f"/api/catalog/v1/schools/{A}/subscriptions", headers=manager)).json()[0][
        "idAbonnement"
    ] == "INDIV-1"
    assert (
        await catalog.client.post(
            f"/api/catalog/v1/schools/{B}/subscriptions/INDIV-1/assignments",
            json={"personnes": ["teacher"]},
            headers=head,
        )
    ).status_code == 403  # the head of A is nobody in B

    # Releasing gives licences back; a whole class is then assigned as far as it goes (all or none: too many).
    # Which five requests won is the race's: give back two of the licences that were assigned.
    holders = sorted(a["personne"] for a in held)
    released = await catalog.client.post(f"{base}/release", json={"personnes": holders[:2]}, headers=head)
    assert released.json() == {"liberees": holders[:2]}
    too_many = await catalog.client.post(base, json={"groupes": [klass]}, headers=head)
    assert too_many.status_code == 409 and "22 licences asked for ELEVE, 2 left of 10" in too_many.json()["detail"]
    teacher = await catalog.client.post(base, json={"personnes": ["teacher"]}, headers=head)
    assert teacher.json()["affectees"] == ["teacher"]

    # A pupil who leaves the school loses their licence there.
    holder = holders[-1]
    await catalog.persons(h.person(holder, (B, "National_ELV")), fact="updated")

    async def released_by_directory() -> bool:
        return holder not in [a["personne"] for a in (await catalog.client.get(base, headers=head)).json()]

    await h.until(released_by_directory, "the licence of a pupil who left")
    counts = (await catalog.client.get(f"{VENDOR}/subscriptions/INDIV-1", headers=auth)).json()["licencesAffectees"]
    assert counts["ELEVE"] == 7 and counts["ENSEIGNANT"] == 1 and counts["total"] == 8
    assert (await catalog.events("catalog.assignment.")).count("catalog.assignment.changed.v1") == 5 + 1 + 1 + 1

    # A non transferable licence, once assigned, is spent: released, it does not come back for another pupil.
    spent = h.subscription(
        "SPENT", ARK, [A], typeAffectation="INDIV", nbLicenceGlobale=1, categorieAffectation="non transferable"
    )
    assert (await catalog.client.post(f"{VENDOR}/subscriptions", json=spent, headers=auth)).status_code == 201
    spent_base = f"/api/catalog/v1/schools/{A}/subscriptions/SPENT/assignments"
    assert (await catalog.client.post(spent_base, json={"personnes": ["pupil-02"]}, headers=head)).status_code == 200
    assert (
        await catalog.client.post(f"{spent_base}/release", json={"personnes": ["pupil-02"]}, headers=head)
    ).status_code == 200
    again = await catalog.client.post(spent_base, json={"personnes": ["pupil-03"]}, headers=head)
    assert again.status_code == 409 and "0 left of 1" in again.json()["detail"]
    counts = (await catalog.client.get(f"{VENDOR}/subscriptions/SPENT", headers=auth)).json()
    assert counts["licencesAffectees"]["total"] == 1 and counts["licencesDepensees"]["total"] == 1


async def test_a_school_leaving_flags_its_subscriptions_and_an_ended_one_is_announced_expired(
    catalog, catalog_helpers
) -> None:
    h = catalog_helpers
    await catalog.schools(A, B)
    await catalog.known("schools", B)
    _, auth = catalog.vendor()
    await catalog.client.post(f"{VENDOR}/resources", json=h.resource(ARK), headers=auth)
    paris = ZoneInfo("Europe/Paris")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).astimezone(paris).strftime("%Y-%m-%dT%H:%M:%S")
    for sub_id, end in (("LONG", "2030-08-31T23:59:59"), ("SHORT", soon)):
        created = await catalog.client.post(
            f"{VENDOR}/subscriptions", json=h.subscription(sub_id, ARK, [A, B], finValidite=end), headers=auth
        )
        assert created.status_code == 201, created.text
    await catalog.directory(("identity.structure.deleted.v1", h.pb.StructureDeleted(id=f"S{B}", uai=B)))

    async def flagged() -> bool:
        return (await catalog.client.get(f"{VENDOR}/subscriptions/LONG", headers=auth)).json()[
            "etablissementsRetires"
        ] == [B]

    async def expired() -> bool:
        return (await catalog.client.get(f"{VENDOR}/subscriptions/SHORT", headers=auth)).json()["expiree"]

    await h.until(flagged, "the subscription flagged")
    await h.until(expired, "the short subscription expired")
    assert (await catalog.client.get(f"{VENDOR}/subscriptions/LONG", headers=auth)).json()["expiree"] is False
    events = await catalog.events("catalog.subscription.")
    assert events.count("catalog.subscription.expired.v1") == 1
    assert events.count("catalog.subscription.updated.v1") == 2  # each covered B
    refused = await catalog.client.post(f"{VENDOR}/subscriptions", json=h.subscription("NEW", ARK, [B]), headers=auth)
    assert refused.status_code == 422 and B in refused.json()["detail"]


async def test_a_class_is_assigned_with_its_members_of_now_whichever_event_came_first(catalog, catalog_helpers) -> None:
    h = catalog_helpers
    await catalog.schools(A)
    klass, other = f"S{A}$6B", f"S{A}$6C"
    # The pupils' events before their class's: the class still learns its members.
    await catalog.persons(
        h.person("head", (A, "National_DIR")),
        *(h.person(f"b-{n}", (A, "National_ELV"), groups=(klass,)) for n in range(3)),
    )
    await catalog.known("persons", "b-2")
    await catalog.directory(
        (
            "identity.group.created.v1",
            h.pb.GroupCreated(
                group=h.pb.Group(id=klass, structure_id=f"S{A}", code="6B", label="6e B", kind=h.pb.GROUP_KIND_CLASS)
            ),
        )
    )
    await catalog.known("groups", klass, lambda doc: doc is not None and doc.get("code") == "6B")
    await catalog.persons(h.person("b-2", (A, "National_ELV"), groups=(other,)), fact="updated")  # changes class
    await catalog.known("persons", "b-2", lambda doc: doc is not None and doc["groupes"] == [other])
    _, auth = catalog.vendor()
    await catalog.client.post(f"{VENDOR}/resources", json=h.resource(ARK), headers=auth)
    body = h.subscription(
        "CLASS", ARK, [A], typeAffectation="INDIV", nbLicenceGlobale="ILLIMITE", categorieAffectation="transferable"
    )
    assert (await catalog.client.post(f"{VENDOR}/subscriptions", json=body, headers=auth)).status_code == 201
    answer = await catalog.client.post(
        f"/api/catalog/v1/schools/{A}/subscriptions/CLASS/assignments",
        json={"groupes": [klass]},
        headers=catalog.as_person("head"),
    )
    assert answer.status_code == 200 and answer.json()["affectees"] == ["b-0", "b-1"]
