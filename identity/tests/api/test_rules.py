"""Administrators change a school's communication rules through the API; the visibles service follows at once."""

from pathlib import Path

import pytest

from maille.identity.v1 import rules_pb2 as pb
from maille_devstack.pytest_plugin import KeycloakClients, running, until
from maille_identity.main import app
from maille_identity.rules.responder import CAN_WRITE
from maille_identity.settings import IdentitySettings
from maille_kit.bus import Bus

from ..directory.test_import import TENANT, feed, pupil, school, uai_for
from .conftest import Import

pytestmark = pytest.mark.keycloak


async def refused(bus: Bus, sender: str, recipient: str) -> list[str]:
    reply = await bus.nc.request(
        CAN_WRITE,
        pb.CanWriteRequest(tenant=TENANT, sender_id=sender, recipient_ids=[recipient]).SerializeToString(),
        timeout=10,
    )
    return list(pb.CanWriteResponse.FromString(reply.data).refused_ids)


async def refused_now(bus: Bus, sender: str, recipient: str, expected: list[str]) -> bool:
    return await refused(bus, sender, recipient) == expected


async def test_rules_changed_and_reset(
    tmp_path: Path,
    imported: Import,
    bus: Bus,
    keycloak_clients: KeycloakClients,
    settings: IdentitySettings,
) -> None:
    uai = uai_for(1)
    feed(tmp_path / "feed", "EtabEducNat", school("S1", uai, ["6A", "5B"]))
    feed(tmp_path / "feed", "Eleve", pupil("E1", "S1"), pupil("E3", "S1", cls="5B"))
    ids = await imported(tmp_path / "feed")
    headers = {"Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=('operator',)))}"}
    url = f"/api/identity/v1/structures/{uai}/communication-rules"
    async with running(app(settings)) as client:
        assert (await client.get("/readyz")).status_code == 200
        assert await refused(bus, ids["E1"], ids["E3"]) == [ids["E3"]]  # another class: not by default
        current = (await client.get(url, headers=headers)).json()
        assert current["defaults"] is True
        rules = current["rules"]
        rules["structure"].append(["ELV", "ELV"])  # this school lets its pupils write to each other
        read = await client.get(url, headers=headers)
        assert read.headers["etag"] == '"0"'  # the defaults
        changed = await client.put(url, json=rules, headers=headers | {"If-Match": read.headers["etag"]})
        assert changed.status_code == 200 and changed.json()["defaults"] is False
        assert changed.headers["etag"] == '"1"'
        # A second administrator who read the defaults too is told the rules changed meanwhile.
        late = await client.put(url, json=current["rules"], headers=headers | {"If-Match": read.headers["etag"]})
        assert late.status_code == 412 and late.json()["etag"] == '"1"'
        await until(lambda: refused_now(bus, ids["E1"], ids["E3"], []), "the change to reach the visibles", 5)
        assert (await client.delete(url, headers=headers | {"If-Match": '"0"'})).status_code == 412
        assert (await client.delete(url, headers=headers | {"If-Match": '"1"'})).status_code == 204
        await until(lambda: refused_now(bus, ids["E1"], ids["E3"], [ids["E3"]]), "the reset to reach the visibles", 5)
        assert (await client.get(url, headers=headers)).json()["defaults"] is True

        bad = await client.put(url, json={**rules, "structure": [["ELV", "NOBODY"]]}, headers=headers)
        assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
        assert "ELV->NOBODY" in bad.text
        assert (
            await client.get("/api/identity/v1/structures/0000000A/communication-rules", headers=headers)
        ).status_code == 404
        assert (await client.put(url, json=rules)).status_code == 401
