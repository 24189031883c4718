"""The directory as a pupil, a parent and a teacher see it, signed in through the real Keycloak."""

from pathlib import Path

import pytest

from maille_devstack.pytest_plugin import KeycloakClients, make_person_login, running
from maille_identity.main import app
from maille_identity.settings import IdentitySettings

from ..directory.test_import import feed, parent, pupil, request, school, uai_for
from .conftest import Import

pytestmark = pytest.mark.keycloak
A, B = uai_for(1), uai_for(2)


async def test_who_sees_what(
    tmp_path: Path,
    imported: Import,
    keycloak_clients: KeycloakClients,
    settings: IdentitySettings,
) -> None:
    folder = tmp_path / "feed"
    feed(folder, "EtabEducNat", school("S1", A, ["6A", "5B"]), school("S2", B))
    feed(
        folder,
        "PersEducNat",
        request(
            "T1",
            {
                "ENTPersonJointure": "T1",
                "sn": "Éluard",
                "givenName": "Paul",
                "mail": "paul@ac.fr",
                "ENTPersonStructRattach": "S1",
                "ENTPersonFonctions": "S1$ENS$ENS",
                "PersEducNatPresenceDevantEleves": "O",
                "ENTAuxEnsClassesMatieres": "S1$6A$030201",
            },
        ),
    )
    feed(
        folder,
        "Eleve",
        pupil("E1", "S1", adults=["P1"], sn="Dupont"),
        pupil("E2", "S1", sn="Durand"),
        pupil("E3", "S1", cls="5B", sn="Martin"),
        pupil("E9", "S2", sn="Ailleurs"),
    )
    feed(folder, "PersRelEleve", parent("P1", sn="Dupont"))
    ids = await imported(folder)
    as_pupil = {"Authorization": f"Bearer {make_person_login(keycloak_clients, ent_id=ids['E1'])}"}
    as_parent = {"Authorization": f"Bearer {make_person_login(keycloak_clients, ent_id=ids['P1'])}"}
    as_teacher = {"Authorization": f"Bearer {make_person_login(keycloak_clients, ent_id=ids['T1'])}"}
    nobody = {"Authorization": f"Bearer {make_person_login(keycloak_clients, ent_id='0' * 24)}"}
    async with running(app(settings)) as client:
        me = (await client.get("/api/identity/v1/me", headers=as_parent)).json()
        assert me["id"] == ids["P1"] and me["schools"] == [{"uai": A, "name": "COLLEGE S1"}]
        assert [c["id"] for c in me["children"]] == [ids["E1"]]

        # A classmate: names and class, not their birth date; someone of another school: not at all.
        classmate = (await client.get(f"/api/identity/v1/persons/{ids['E2']}", headers=as_pupil)).json()
        assert classmate["last_name"] == "Durand" and "birth_date" not in classmate
        assert (await client.get(f"/api/identity/v1/persons/{ids['E9']}", headers=as_pupil)).status_code == 404
        # A parent sees all of their child; a teacher of the school, all of its pupils.
        assert (await client.get(f"/api/identity/v1/persons/{ids['E1']}", headers=as_parent)).json()[
            "birth_date"
        ] == "2015-09-04"
        assert (await client.get(f"/api/identity/v1/persons/{ids['E3']}", headers=as_teacher)).json()[
            "birth_date"
        ] == "2015-09-04"

        school_view = (await client.get(f"/api/identity/v1/structures/{A}", headers=as_teacher)).json()
        assert [c["code"] for c in school_view["classes"]] == ["5B", "6A"]
        assert (await client.get(f"/api/identity/v1/structures/{B}", headers=as_teacher)).status_code == 404
        members = (await client.get(f"/api/identity/v1/groups/{A}$6A/members", headers=as_teacher)).json()
        assert [m["last_name"] for m in members] == ["Dupont", "Durand", "Éluard"]

        found = (await client.get("/api/identity/v1/persons", params={"q": "eluard"}, headers=as_pupil)).json()
        assert [p["id"] for p in found] == [ids["T1"]]
        assert (await client.get("/api/identity/v1/persons", params={"q": "ailleurs"}, headers=as_pupil)).json() == []

        picker = (await client.get("/api/identity/v1/visibles", headers=as_pupil)).json()
        assert {p["id"] for p in picker} == {ids["E2"], ids["T1"]}  # the class and its teacher; not 5B, not a parent
        assert [
            p["id"]
            for p in (await client.get("/api/identity/v1/visibles", params={"q": "DUR"}, headers=as_pupil)).json()
        ] == [ids["E2"]]

        refused = await client.get("/api/identity/v1/me", headers=nobody)
        assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert (await client.get("/api/identity/v1/me")).status_code == 401
        assert (await client.get("/api/identity/v1/persons/not-an-id", headers=as_pupil)).status_code == 422
