"""A reader's CDI account through the library service: PMB's server-side sign-on (`login_token`, HMAC-SHA512 keyed
by the OPAC's salt) — never the person's PMB password —, loans and reservations per school, placing and cancelling a
reservation; a reader without a PMB account, a school without a connection, a PMB refusing are named."""

from __future__ import annotations

from .conftest import API, SCHOOLS, Library, person

A, B, C = SCHOOLS
# A loan two weeks late, as PMB lists it.
LATE = {
    "kind": "late",
    "notice_id": 3,
    "expl_cb": "cdi-00003-0",
    "expl_libelle": "L'Étranger",
    "expl_location_caption": "CDI",
    "loan_startdate": "2026-11-02",
    "loan_returndate": "2026-11-16",
}


async def test_a_pupil_sees_their_loans_and_reservations_and_reserves_without_a_pmb_password(library: Library) -> None:
    operator = library.operator()
    for uai in (A, B):
        answer = await library.client.put(
            f"{API}/operator/schools/{uai}/pmb", headers=operator, json=library.connection(uai, loginSalt="sel-opac")
        )
        assert (
            answer.status_code == 201 and answer.json()["readerAccounts"] is True and "loginSalt" not in answer.json()
        )
    cdi = library.pmb.databases[f"cdi{A}"]
    cdi.readers["eleve-1"] = {"id": 7, "cb": "E0007", "login": "eleve-1", "mail": "", "nom": "Martin", "prenom": "Léa"}
    cdi.loans["eleve-1"] = [
        LATE,
        {
            "kind": "current",
            "notice_id": 1,
            "expl_cb": "cdi-00001-0",
            "expl_libelle": "Le Petit Prince",
            "expl_location_caption": "CDI",
            "loan_startdate": "2026-11-30",
            "loan_returndate": "2026-12-14",
        },
        {
            "kind": "past",
            "notice_id": 6,
            "expl_cb": "cdi-00006-1",
            "expl_libelle": "Germinal",
            "expl_location_caption": "CDI",
            "loan_startdate": "2026-09-10",
            "loan_returndate": "2026-09-24",
        },
    ]
    await library.persons(person("eleve-1", (A, "National_ELV"), (B, "National_ELV"), (C, "National_ELV")))
    me = library.as_person("eleve-1")

    mine = (await library.client.get(f"{API}/account", headers=me)).json()
    assert [s["uai"] for s in mine["schools"]] == [A]
    loans = mine["schools"][0]["loans"]
    assert [x["title"] for x in loans["late"]] == ["L'Étranger"] and loans["late"][0]["due"] == "2026-11-16"
    assert [x["recordId"] for x in loans["current"]] == [1] and [x["barcode"] for x in loans["past"]] == ["cdi-00006-1"]
    assert mine["missing"] == [
        {"uai": B, "reason": "you have no reader account in this school's CDI"},
        {"uai": C, "reason": "no PMB connection is registered for this school"},
    ]
    assert not any(
        method.startswith("pmbesOPACEmpr_login") and method != "pmbesOPACEmpr_login_token"
        for _, method in library.pmb.calls
    )

    placed = await library.client.post(f"{API}/schools/{A}/reservations", headers=me, json={"recordId": 12})
    assert placed.status_code == 201, placed.text
    again = await library.client.post(f"{API}/schools/{A}/reservations", headers=me, json={"recordId": 12})
    assert again.status_code == 409 and "déjà réservé" in again.json()["detail"]
    resas = (await library.client.get(f"{API}/account", headers=me)).json()["schools"][0]["reservations"]
    assert [(r["id"], r["recordId"]) for r in resas] == [(placed.json()["id"], 12)]
    unknown = await library.client.post(f"{API}/schools/{A}/reservations", headers=me, json={"recordId": 99999})
    assert unknown.status_code == 422 and "Notice inconnue" in unknown.json()["detail"]
    no_account = await library.client.post(f"{API}/schools/{B}/reservations", headers=me, json={"recordId": 12})
    assert (
        no_account.status_code == 409
        and no_account.json()["detail"] == "you have no reader account in this school's CDI"
    )
    not_mine = await library.client.post(f"{API}/schools/0750009Z/reservations", headers=me, json={"recordId": 12})
    assert not_mine.status_code == 403
    assert (
        await library.client.post(f"{API}/schools/{C}/reservations", headers=me, json={"recordId": 12})
    ).status_code == 404
    assert (
        await library.client.post(f"{API}/schools/{A}/reservations", headers=me, json={"recordId": "x"})
    ).status_code == 422

    assert (
        await library.client.delete(f"{API}/schools/{A}/reservations/{placed.json()['id']}", headers=me)
    ).status_code == 204
    assert (
        await library.client.delete(f"{API}/schools/{A}/reservations/{placed.json()['id']}", headers=me)
    ).status_code == 404
    assert (await library.client.get(f"{API}/account", headers=me)).json()["schools"][0]["reservations"] == []

    library.pmb.delay = 3.0  # a PMB slower than the wait: the account answers without it, naming it
    slow = (await library.client.get(f"{API}/account", headers=me)).json()
    assert slow["schools"] == [] and "did not answer within" in slow["missing"][0]["reason"]


async def test_a_connection_without_the_opac_salt_signs_nobody_on(library: Library) -> None:
    operator = library.operator()
    assert (
        await library.client.put(f"{API}/operator/schools/{A}/pmb", headers=operator, json=library.connection(A))
    ).status_code == 201
    library.pmb.databases[f"cdi{A}"].readers["prof-1"] = {
        "id": 9,
        "cb": "P9",
        "login": "prof-1",
        "nom": "Prof",
        "prenom": "Paul",
    }
    await library.persons(person("prof-1", (A, "National_ENS")))
    mine = (await library.client.get(f"{API}/account", headers=library.as_person("prof-1"))).json()
    assert mine["schools"] == [] and "no OPAC salt" in mine["missing"][0]["reason"]
    assert not [m for _, m in library.pmb.calls if m.startswith("pmbesOPACEmpr")]  # nothing was asked of PMB
    # A salt that is not the OPAC's: PMB refuses the token, and says so.
    await library.client.put(
        f"{API}/operator/schools/{A}/pmb", headers=operator, json=library.connection(A, loginSalt="not-the-salt")
    )
    mine = (await library.client.get(f"{API}/account", headers=library.as_person("prof-1"))).json()
    assert mine["missing"][0]["reason"] == f"PMB cdi{A} refused pmbesOPACEmpr_login_token: Invalid login token"


async def test_a_parent_reads_their_childs_loans_and_no_one_elses(library: Library) -> None:
    child, parent, stranger = "a" * 24, "b" * 24, "c" * 24
    answer = await library.client.put(
        f"{API}/operator/schools/{A}/pmb", headers=library.operator(), json=library.connection(A, loginSalt="sel-opac")
    )
    assert answer.status_code in (200, 201)
    library.pmb.databases[f"cdi{A}"].readers[child] = {
        "id": 9,
        "cb": "E0009",
        "login": child,
        "mail": "",
        "nom": "Roux",
    }
    library.pmb.databases[f"cdi{A}"].loans[child] = [LATE]
    pupil = person(child, (A, "National_ELV"))
    pupil.relatives.add(person_id=parent, legal=True)
    await library.persons(person(parent, (A, "National_TUT")), person(stranger, (A, "National_TUT")), pupil)

    theirs = await library.client.get(f"{API}/account", params={"enfant": child}, headers=library.as_person(parent))
    assert theirs.status_code == 200, theirs.text
    assert [x["title"] for x in theirs.json()["schools"][0]["loans"]["late"]] == ["L'Étranger"]
    # Another parent of the school, the pupil as their own "child", an id of no one: nothing, in the same words.
    for who, asked in ((stranger, child), (parent, parent), (parent, "d" * 24)):
        refused = await library.client.get(f"{API}/account", params={"enfant": asked}, headers=library.as_person(who))
        assert refused.status_code == 404 and refused.json()["detail"] == f"no child {asked} of yours"
    malformed = await library.client.get(f"{API}/account", params={"enfant": "../x"}, headers=library.as_person(parent))
    assert malformed.status_code == 422 and "enfant" in malformed.text
