"""A school administered by its own: its principal (and whom they delegate to) manages its communication rules and
sees its imports — and nothing of another school's; a teacher or a pupil does not; an operator does everywhere.
Real Keycloak tokens (the `ent_id` claim, which identity alone writes), the real docstore and NATS."""

from pathlib import Path

import pytest

from maille_devstack.pytest_plugin import KeycloakClients, make_person_login, running
from maille_identity.main import app
from maille_identity.settings import IdentitySettings

from ..directory.test_import import feed, pupil, request, school, uai_for
from .conftest import Import

pytestmark = pytest.mark.keycloak


def staff(key: str, school_key: str, function: str) -> str:
    return request(
        key,
        {
            "ENTPersonJointure": key,
            "sn": f"NOM{key}",
            "givenName": "Anne",
            "ENTPersonStructRattach": school_key,
            "ENTPersonFonctions": f"{school_key}${function}$X$X$X",
        },
    )


async def test_a_principal_administers_their_school_and_no_other(
    tmp_path: Path,
    imported: Import,
    keycloak_clients: KeycloakClients,
    settings: IdentitySettings,
) -> None:
    mine, theirs = uai_for(1), uai_for(2)
    feed(tmp_path / "feed", "EtabEducNat", school("S1", mine), school("S2", theirs))
    feed(tmp_path / "feed", "PersEducNat", staff("D1", "S1", "DIR"), staff("T1", "S1", "ENS"), staff("D2", "S2", "DIR"))
    feed(tmp_path / "feed", "Eleve", pupil("E1", "S1"))
    ids = await imported(tmp_path / "feed")
    as_ = {
        key: {
            "Authorization": f"Bearer {make_person_login(keycloak_clients, ent_id=ids[key], audience='maille-identity')}"  # noqa: E501
        }
        for key in ("D1", "T1", "D2", "E1")
    }
    operator = {
        "Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=('operator',), audience='maille-identity'))}"  # noqa: E501
    }
    rules = f"/api/identity/v1/structures/{mine}/communication-rules"
    async with running(app(settings)) as client:
        current = await client.get(rules, headers=as_["D1"])
        assert current.status_code == 200, current.text
        changed = current.json()["rules"]
        changed["structure"].append(["ELV", "ELV"])
        assert (await client.put(rules, json=changed, headers=as_["D1"])).status_code == 200
        for stranger in ("T1", "E1", "D2"):  # a teacher, a pupil, another school's principal
            refused = await client.put(rules, json=changed, headers=as_[stranger])
            assert refused.status_code == 403 and mine in refused.json()["detail"], stranger
        assert (
            await client.get(f"/api/identity/v1/structures/{theirs}/communication-rules", headers=as_["D1"])
        ).status_code == 403
        assert (
            await client.get(f"/api/identity/v1/structures/{theirs}/communication-rules", headers=operator)
        ).status_code == 200

        # The principal makes the teacher an administrator of the school (the digital referent, say), then withdraws it.
        admins = f"/api/identity/v1/structures/{mine}/administrators"
        assert (await client.put(f"{admins}/{ids['T1']}", headers=as_["D1"])).status_code == 204
        # What the portal shows: who administers which school (its administration screen appears for them).
        administers = (await client.get("/api/identity/v1/me", headers=as_["T1"])).json()["administers"]
        assert administers == [mine]
        listed = (await client.get(admins, headers=as_["T1"])).json()
        assert [p["id"] for p in listed["principals"]] == [ids["D1"]] and [d["id"] for d in listed["delegates"]] == [
            ids["T1"]
        ]
        assert (await client.delete(rules, headers=as_["T1"])).status_code == 204  # a delegate manages the rules
        assert (await client.put(f"{admins}/{ids['E1']}", headers=as_["T1"])).status_code == 403  # but delegates no one
        outsider = await client.put(f"{admins}/{ids['D2']}", headers=as_["D1"])
        assert outsider.status_code == 422 and "not a person of" in outsider.json()["detail"]
        assert (await client.delete(f"{admins}/{ids['T1']}", headers=as_["D1"])).status_code == 204
        assert (await client.get(rules, headers=as_["T1"])).status_code == 403
        assert (await client.get("/api/identity/v1/me", headers=as_["T1"])).json()["administers"] == []
        principal = (await client.get("/api/identity/v1/me", headers=as_["D1"])).json()
        assert principal["administers"] == [mine] and principal["operator"] is False
        assert (await client.get("/api/identity/v1/me", headers=as_["E1"])).json()["administers"] == []

        # The school's imports: seen by its principal, not by a teacher.
        seen = await client.get(f"/api/identity/v1/structures/{mine}/imports", headers=as_["D1"])
        assert seen.status_code == 200 and isinstance(seen.json(), list)
        assert (await client.get(f"/api/identity/v1/structures/{mine}/imports", headers=as_["T1"])).status_code == 403
