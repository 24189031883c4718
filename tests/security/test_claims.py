"""Attacks on who a person is: a pupil rewriting the claims that name them, a token for a password outside
the browser flow, an account changed behind identity's back. The real Keycloak, identity and gateway, the
EduConnect and académie peers, the GAR peer (`maille_devstack.sso`)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from pymongo import MongoClient

from maille_devstack.browser import Browser
from maille_devstack.keycloak_admin import admin_client, ensure_user
from maille_devstack.paths import bin_of
from maille_devstack.processes import DocstoreServer, KeycloakServer
from maille_devstack.sso import SCHOOL_B, Platform, sso_platform

pytestmark = pytest.mark.keycloak
PROTECTED = (
    "ent_id",
    "profiles",
    "uai",
    "gar_profiles",
    "id_ent",
    "ec_ref_ids",
    "ec_birth_date",
    "agent_join_key",
    "agent_email",
)


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keycloak_server: KeycloakServer, docstore_server: DocstoreServer
) -> Iterator[Platform]:
    with sso_platform(
        tmp_path_factory.mktemp("claims"), keycloak_server, docstore_server, tenant="ac-claims"
    ) as started:
        yield started


def _person(platform: Platform, join_key: str) -> str:
    with MongoClient(platform.env["MAILLE_IDENTITY_MONGODB_URL"]) as mongo:
        return mongo[platform.database]["persons"].find_one({"keys": join_key})["_id"]


def _admin(platform: Platform) -> httpx.Client:
    return admin_client(platform.keycloak.url, platform.keycloak.admin_user, platform.keycloak.admin_password)


def _account_of(platform: Platform, username: str) -> dict:
    with _admin(platform) as admin:
        return admin.get("/users", params={"username": username, "exact": "true"}).raise_for_status().json()[0]


def _account_console_token(platform: Platform, browser: Browser) -> str:
    """What anyone signed in can get: a token of Keycloak's own account console (public client, code flow)."""
    realm = f"{platform.keycloak.url}/realms/maille"
    verifier = "v" * 64
    landed = browser.go(
        f"{realm}/protocol/openid-connect/auth",
        params={
            "client_id": "account-console",
            "response_type": "code",
            "scope": "openid",
            "redirect_uri": f"{realm}/account/",
            "response_mode": "query",
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
            "state": "s",
            "nonce": "n",
        },
    )
    code = parse_qs(urlsplit(str(landed.url)).query)["code"][0]
    return (
        httpx.post(
            f"{realm}/protocol/openid-connect/token",
            data={
                "grant_type": "authorization_code",
                "client_id": "account-console",
                "code": code,
                "redirect_uri": f"{realm}/account/",
                "code_verifier": verifier,
            },
            timeout=30,
        )
        .raise_for_status()
        .json()["access_token"]
    )


def test_a_pupil_cannot_write_who_they_are_through_keycloaks_account_api(platform: Platform) -> None:
    browser, me = platform.sign_in("educonnect", "E1")
    assert me.status_code == 200, me.text[:300]
    pupil, teacher = me.json()["id"], _person(platform, "T1")
    token = _account_console_token(platform, browser)
    account_api = f"{platform.keycloak.url}/realms/maille/account/"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    own = httpx.get(account_api, headers=headers, timeout=30).raise_for_status().json()
    assert not set(own.get("attributes") or {}) & set(PROTECTED)  # not even shown to the person
    username = own["username"]
    forged = {
        "ent_id": [teacher],
        "profiles": ["National_ENS"],
        "uai": [SCHOOL_B],
        "gar_profiles": ["National_ens"],
        "id_ent": ["ENT-OTHER"],
        "ec_ref_ids": ["{AAF}ac|x|T1"],
        "ec_birth_date": ["1970-01-01"],
        "agent_join_key": ["T1"],
        "agent_email": ["paul.durand@ac-test.fr"],
    }
    for name, value in forged.items():  # one at a time: each must be refused on its own
        httpx.post(
            account_api,
            headers=headers,
            json={**own, "attributes": {**(own.get("attributes") or {}), name: value}},
            timeout=30,
        )
        held = _account_of(platform, username)["attributes"]
        assert held.get(name) != value, f"the account API let the pupil write {name}"
    assert _account_of(platform, username)["attributes"]["ent_id"] == [pupil]
    # Signing in again on the same Keycloak session (no new EduConnect round trip), the pupil is still herself.
    again = browser.go(f"{platform.gateway}/login", params={"idp": "educonnect", "next": "/api/identity/v1/me"})
    assert again.status_code == 200 and again.json()["id"] == pupil and again.json()["kind"] == "pupil"


def test_no_client_of_the_realm_hands_out_a_token_for_a_password(platform: Platform) -> None:
    username, password = "claims-local-user", "a-Password-1"
    with _admin(platform) as admin:
        ensure_user(admin, username, password, first="Local", last="User")
        clients = admin.get("/clients").raise_for_status().json()
    # The realm's own clients (admin-cli among them: what the attack used) and Maille's.
    maille = {
        "admin-cli",
        "account",
        "account-console",
        "security-admin-console",
        "broker",
        "realm-management",
        "maille-identity",
        platform.env["MAILLE_IDENTITY_GATEWAY_CLIENT_ID"],
        platform.env["MAILLE_IDENTITY_PMB_OPAC_CLIENT_ID"],
    }
    for client in clients:
        if client["clientId"] in maille:
            assert not client.get("directAccessGrantsEnabled"), f"{client['clientId']} grants tokens for passwords"
    answer = httpx.post(
        f"{platform.keycloak.url}/realms/maille/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli", "username": username, "password": password},
        timeout=30,
    )
    assert answer.status_code in (400, 401) and "access_token" not in answer.text


def _identity_log(platform: Platform) -> list[dict]:
    lines = platform.identity.process.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and '"security_event"' in line]


def test_an_account_changed_behind_identitys_back_signs_nobody_in_as_someone_else(platform: Platform) -> None:
    browser, me = platform.sign_in("educonnect", "E1")
    pupil, teacher = me.json()["id"], _person(platform, "T1")
    with _admin(platform) as admin:
        user = admin.get("/users", params={"q": f"ent_id:{pupil}"}).raise_for_status().json()[0]
        user["attributes"] |= {"ent_id": [teacher], "profiles": ["National_ENS"]}  # by hand, in the admin console
        admin.put(f"/users/{user['id']}", json=user).raise_for_status()
    _, refused = platform.sign_in("educonnect", "E1")
    assert refused.status_code == 403 and "Connexion refusée" in refused.text
    event = next(e for e in reversed(_identity_log(platform)) if e["security_event"] == "claims-tampered")
    assert (
        event["keycloak_user"] == user["id"] and event["claimed_person"] == teacher and event["linked_person"] == pupil
    )
    # Written back from the directory: the next sign-in is the pupil, and so is what the GAR receives.
    assert _account_of(platform, user["username"])["attributes"]["ent_id"] == [pupil]
    browser, me = platform.sign_in("educonnect", "E1")
    assert me.status_code == 200 and me.json()["id"] == pupil
    received = browser.post_form(browser.go(f"{platform.gar.url}/sp/login")).json()
    assert received["name_id"] == pupil and received["attributes"]["GARPersonIdentifiant"] == [pupil]


def test_an_account_identity_never_linked_cannot_claim_a_person(platform: Platform) -> None:
    """A local account given a teacher's ent_id by hand: refused, and the claim taken off the account."""
    username, password, teacher = "claims-forged-local", "a-Password-2", _person(platform, "T1")
    with _admin(platform) as admin:
        ensure_user(admin, username, password, first="Forged", last="Teacher", attributes={"ent_id": [teacher]})
    browser = Browser()
    page = browser.go(f"{platform.gateway}/login", params={"next": "/api/identity/v1/me"})
    refused = browser.sign_in(page, username, password)
    assert refused.status_code == 403 and "Connexion refusée" in refused.text
    assert not _account_of(platform, username).get("attributes", {}).get("ent_id")
    # Linked by identity (an operator's command), the same account is that person — the one supported way.
    linked = subprocess.run(
        [str(bin_of("maille-identity")), "link-account", username, teacher],
        env={**os.environ, **platform.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert linked.returncode == 0, linked.stderr
    browser = Browser()
    me = browser.sign_in(
        browser.go(f"{platform.gateway}/login", params={"next": "/api/identity/v1/me"}), username, password
    )
    assert me.status_code == 200 and me.json()["id"] == teacher
