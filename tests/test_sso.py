"""Single sign-on end to end, through the gateway: persons of the directory sign in through the EduConnect
peer, the académie's agent IdP peer and a partner collectivité's OIDC IdP, brokered by the real Keycloak;
identity matches and links their accounts; the GAR peer receives their assertions. Real NATS, docstore,
Keycloak, identity and gateway processes; the peers speak SAML (pysaml2) and OIDC (a Keycloak realm)."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from samlpeer.idp import DIRECTORY_SECONDS

from maille_devstack.browser import Browser
from maille_devstack.keycloak_admin import admin_client, ensure_service_client
from maille_devstack.paths import bin_of
from maille_devstack.processes import DocstoreServer, KeycloakServer
from maille_devstack.sso import PASSWORD, SCHOOL_A, SCHOOL_B, Platform, sso_platform, write_feed

pytestmark = pytest.mark.keycloak


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, keycloak_server: KeycloakServer, docstore_server: DocstoreServer
) -> Iterator[Platform]:
    with sso_platform(tmp_path_factory.mktemp("sso"), keycloak_server, docstore_server) as started:
        yield started


def test_a_pupil_signs_in_through_educonnect_and_sees_their_class_and_school(platform: Platform) -> None:
    browser, me = platform.sign_in("educonnect", "E1")
    assert me.status_code == 200, me.text[:500]
    person = me.json()
    assert person["kind"] == "pupil" and person["first_name"] == "Léa"
    assert person["classes"] == [f"{SCHOOL_A}$6A"]
    assert person["profiles"] == [{"structure": SCHOOL_A, "code": "National_ELV"}]
    assert [s["uai"] for s in person["schools"]] == [SCHOOL_A]
    # The link on Keycloak's side: the account is EduConnect's, and names the ENT id.
    with admin_client(platform.keycloak.url, platform.keycloak.admin_user, platform.keycloak.admin_password) as admin:
        users = admin.get("/users", params={"q": f"ent_id:{person['id']}"}).raise_for_status().json()
        assert len(users) == 1
        links = admin.get(f"/users/{users[0]['id']}/federated-identity").raise_for_status().json()
        assert [link["identityProvider"] for link in links] == ["educonnect"]
        assert users[0]["attributes"]["profiles"] == ["National_ELV"] and users[0]["attributes"]["uai"] == [SCHOOL_A]
    # Without the session, the same route asks to sign in.
    refused = httpx.get(f"{platform.gateway}/api/identity/v1/me")
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")


def test_a_parent_with_children_in_two_schools_chooses_once(platform: Platform) -> None:
    browser, page = platform.sign_in("educonnect", "R1")
    assert "/auth/choose" in str(page.url), page.text[:500]
    assert "COLLEGE ANNE DE BRETAGNE" in page.text and "COLLEGE DU GUESCLIN" in page.text
    choices = re.findall(r'name="choice" value="([0-9a-f]{24})"', page.text)
    assert len(choices) == 2
    # The one whose child is Hugo, in the second school.
    chosen = next(c for c in choices if re.search(rf'value="{c}"[^<]*>[^<]*GUESCLIN', page.text))
    me = browser.post_form(page, choice=chosen)
    assert me.status_code == 200 and me.json()["id"] == chosen
    assert [child["first_name"] for child in me.json()["children"]] == ["Hugo"]
    # Next time, no question: the choice was remembered.
    _, again = platform.sign_in("educonnect", "R1")
    assert again.status_code == 200 and again.json()["id"] == chosen


def test_a_parent_switches_between_their_accounts_after_signing_in(platform: Platform) -> None:
    browser, page = platform.sign_in("educonnect", "R1")
    if "/auth/choose" in str(page.url):  # not chosen yet (this test run alone): the first, for now
        page = browser.post_form(page, choice=re.findall(r'name="choice" value="([0-9a-f]{24})"', page.text)[0])
    me = page.json()
    listed = browser.go(f"{platform.gateway}/api/identity/v1/accounts")
    assert listed.status_code == 200, listed.text[:300]
    accounts = listed.json()["accounts"]
    assert [a["current"] for a in accounts] == [True, False] and accounts[0]["id"] == me["id"]
    other = accounts[1]
    assert {child for a in accounts for child in a["children"]} == {"Léa MARTIN", "Hugo MARTIN"}

    csrf = browser.site_cookies(platform.gateway)["maille_csrf"]
    switched = browser.go(
        f"{platform.gateway}/auth/choose",
        method="POST",
        data={"csrf": csrf, "choice": other["id"], "next": "/api/identity/v1/me"},
    )
    assert switched.status_code == 200, switched.text[:300]
    assert switched.json()["id"] == other["id"]
    assert [c["first_name"] for c in switched.json()["children"]] == [
        "Léa" if other["children"] == ["Léa MARTIN"] else "Hugo"
    ]
    after = browser.go(f"{platform.gateway}/api/identity/v1/accounts").json()
    assert after["current"] == other["id"] and [a["current"] for a in after["accounts"]] == [True, False]
    # The switch is the account's link now: the next sign-in lands on it without a question.
    _, again = platform.sign_in("educonnect", "R1")
    assert again.status_code == 200 and again.json()["id"] == other["id"]


def test_a_pupil_has_one_account_and_cannot_switch_to_another_persons(platform: Platform) -> None:
    browser, me = platform.sign_in("educonnect", "E1")
    accounts = browser.go(f"{platform.gateway}/api/identity/v1/accounts").json()["accounts"]
    assert [(a["id"], a["current"]) for a in accounts] == [(me.json()["id"], True)]
    parent = platform_person(platform, "R1")
    csrf = browser.site_cookies(platform.gateway)["maille_csrf"]
    refused = browser.request("POST", f"{platform.gateway}/auth/choose", data={"csrf": csrf, "choice": parent})
    assert refused.status_code == 400
    assert browser.go(f"{platform.gateway}/api/identity/v1/me").json()["id"] == me.json()["id"]


def platform_person(platform: Platform, key: str) -> str:
    """The ENT id of the directory entry of join key `key`."""
    from pymongo import MongoClient

    with MongoClient(platform.env["MAILLE_IDENTITY_MONGODB_URL"]) as client:
        return str(client[platform.database]["persons"].find_one({"keys": key})["_id"])


def test_a_teacher_signs_in_through_the_academie(platform: Platform) -> None:
    _, me = platform.sign_in("academie", "T1")
    assert me.status_code == 200, me.text[:500]
    assert me.json()["kind"] == "staff" and me.json()["last_name"] == "DURAND"
    assert {"structure": SCHOOL_A, "code": "National_ENS"} in me.json()["profiles"]


def test_a_pupil_cannot_sign_in_at_the_agents_idp(platform: Platform) -> None:
    browser = Browser()
    page = browser.go(f"{platform.gateway}/login", params={"idp": "academie"})
    page = browser.post_form(page)  # the AuthnRequest to the peer
    refused = browser.post_form(page, username="E1", password=PASSWORD)
    assert refused.status_code == 401 and "incorrect" in refused.text


def test_a_detached_pupil_is_refused_with_a_clear_page(platform: Platform, tmp_path: Path) -> None:
    _, me = platform.sign_in("educonnect", "E3")
    assert me.status_code == 200
    write_feed(tmp_path / "feed", without=("E3",))  # the next full feed no longer has her
    platform.import_feed(tmp_path / "feed")
    # Refused once identity has followed the import's events onto her account's link (what a sign-in reads of her).
    page = _eventually(lambda: (answer := platform.sign_in("educonnect", "E3")[1]).status_code == 403 and answer)
    assert page, "still signed in 20 s after the import detached her"
    assert "Compte détaché" in page.text and "secrétariat" in page.text


def test_a_person_unknown_to_the_directory_is_told_what_to_do(platform: Platform) -> None:
    # An account of the same database but of another tenant: EduConnect knows them, this ENT does not.
    from pymongo import MongoClient

    with MongoClient(platform.env["MAILLE_IDENTITY_MONGODB_URL"]) as client:
        persons = client[platform.database]["persons"]
        stranger = persons.find_one({"keys": "E2"})
        persons.insert_one({**stranger, "_id": "f" * 24, "keys": ["X9"], "tenant": "elsewhere", "first_name": "Ana"})
    time.sleep(DIRECTORY_SECONDS + 0.2)  # the peer reads the directory again on a miss, at most once a second
    _, page = platform.sign_in("educonnect", "X9")
    assert page.status_code == 403
    assert "Aucune fiche de l'annuaire" in html.unescape(page.text) and "secrétariat" in page.text
    # The account Keycloak made for this sign-in stands for nobody: it is gone, and the next try makes it afresh
    # from what EduConnect says then (its attributes are imported once, when the account is made).
    from educonnect.profiles import educonnect_id

    subject = educonnect_id({"tenant": "elsewhere", "keys": ["X9"]})
    with admin_client(platform.keycloak.url, platform.keycloak.admin_user, platform.keycloak.admin_password) as admin:
        left = admin.get("/users", params={"idpAlias": "educonnect", "idpUserId": subject}).raise_for_status().json()
        assert left == []
        assert admin.get("/users", params={"username": f"educonnect.{subject}", "exact": "true"}).json() == []


def test_a_collectivite_agent_signs_in_through_a_registered_idp(platform: Platform) -> None:
    keycloak = platform.keycloak
    realm, client_id, client_secret = f"cd35-{uuid.uuid4().hex[:6]}", "maille-broker", uuid.uuid4().hex
    alias = realm
    token = (
        httpx.post(
            f"{keycloak.url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": keycloak.admin_user,
                "password": keycloak.admin_password,
            },
        )
        .raise_for_status()
        .json()["access_token"]
    )
    with httpx.Client(
        base_url=f"{keycloak.url}/admin/realms", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as admin:
        # The collectivité's own IdP: a realm of its own, an agent, a client for Maille's broker.
        admin.post("", json={"realm": realm, "enabled": True}).raise_for_status()
        admin.post(
            f"/{realm}/clients",
            json={
                "clientId": client_id,
                "secret": client_secret,
                "publicClient": False,
                "standardFlowEnabled": True,
                "redirectUris": [f"{keycloak.url}/realms/maille/broker/{alias}/endpoint"],
            },
        ).raise_for_status()
        admin.post(
            f"/{realm}/users",
            json={
                "username": "alegal",
                "enabled": True,
                "firstName": "Anne",
                "lastName": "Legal",
                "email": "anne.legal@cd35.example",
                "emailVerified": True,
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            },
        ).raise_for_status()
    # An operator of Maille (a client-credentials client with the role operator) registers it.
    operator = _operator_token(platform)
    body = {
        "alias": alias,
        "name": "Département d'Ille-et-Vilaine",
        "issuer": f"{keycloak.url}/realms/{realm}",
        "client_id": client_id,
        "client_secret": client_secret,
        "claims": {"email": "email"},
        "structures": [SCHOOL_B],
    }
    bad = httpx.post(
        f"{platform.gateway}/api/identity/v1/federations",
        json={**body, "structures": ["0000000A"]},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert bad.status_code == 422 and "structures" in bad.json()["detail"]
    created = httpx.post(
        f"{platform.gateway}/api/identity/v1/federations", json=body, headers={"Authorization": f"Bearer {operator}"}
    )
    assert created.status_code == 201, created.text
    assert "client_secret" not in created.json()
    again = httpx.post(
        f"{platform.gateway}/api/identity/v1/federations", json=body, headers={"Authorization": f"Bearer {operator}"}
    )
    assert again.status_code == 409
    # The agent signs in at the collectivité's own login page, and lands as herself.
    browser = Browser()
    page = browser.go(f"{platform.gateway}/login", params={"idp": alias, "next": "/api/identity/v1/me"})
    assert 'id="kc-form-login"' in page.text and realm in str(page.url), (
        page.url,
        re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.text)))[-800:],
    )
    me = browser.sign_in(page, "alegal", PASSWORD)
    assert me.status_code == 200, me.text[:500]
    assert me.json()["last_name"] == "LEGAL" and me.json()["profiles"][0]["structure"] == SCHOOL_B


def test_the_gar_receives_a_signed_assertion_for_a_teacher_and_a_pupil(platform: Platform) -> None:
    for idp, username, profile, school in (
        ("academie", "T1", "National_ens", SCHOOL_A),
        ("educonnect", "E2", "National_elv", SCHOOL_B),
    ):
        browser, me = platform.sign_in(idp, username)
        assert me.status_code == 200, me.text[:300]
        page = browser.go(f"{platform.gar.url}/sp/login")  # already signed in: Keycloak answers at once
        received = browser.post_form(page)
        assert received.status_code == 200, received.text
        assertion = received.json()
        assert assertion["assertion_signed"] is True
        attributes = assertion["attributes"]
        assert attributes["GARPersonIdentifiant"] == [me.json()["id"]] and assertion["name_id"] == me.json()["id"]
        assert attributes["idEnt"] == ["ENT-SSO-TEST"]
        assert attributes["UAI"] == [school] and attributes["PRO"] == [profile]


def test_a_teacher_opens_the_cdi_catalogue_already_signed_in(platform: Platform, keycloak_clients) -> None:
    operator = {"Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=('operator',)))}"}
    database = f"cdi{SCHOOL_A}"
    connection = {
        "url": platform.pmb.url,
        "sourceId": 1,
        "user": "maille",
        "password": "secret-ws",
        "database": database,
        "opacUrl": platform.pmb.opac_url(database),
    }
    registered = httpx.put(
        f"{platform.gateway}/api/library/v1/operator/schools/{SCHOOL_A}/pmb", json=connection, headers=operator
    )
    assert registered.status_code in (200, 201), registered.text
    # School B's CDI is registered without an OPAC.
    httpx.put(
        f"{platform.gateway}/api/library/v1/operator/schools/{SCHOOL_B}/pmb",
        headers=operator,
        json={**connection, "database": f"cdi{SCHOOL_B}", "opacUrl": None},
    ).raise_for_status()
    browser, me = platform.sign_in("academie", "T1")
    assert me.status_code == 200, me.text[:300]
    link = f"{platform.gateway}/api/library/v1/schools/{SCHOOL_A}/opac"
    # The library learns the teacher's schools from identity's events, and identity lets Keycloak send readers back
    # to the new OPAC from the library's: both in the background.
    deadline, page = time.monotonic() + 90, None
    while time.monotonic() < deadline:
        page = browser.go(link)
        if page.status_code == 200:
            break
        time.sleep(1)
    assert page is not None and page.status_code == 200, (page.status_code, page.text[:500])
    # The OPAC's own page, signed in through Keycloak: no PMB password asked, the reader is the ENT person.
    assert str(page.url).startswith(platform.pmb.opac_url(database)) and "Connecté : Paul DURAND" in page.text
    assert f"({me.json()['id']})" in page.text
    # A school of hers with no OPAC registered, and a school that is not hers, are each named.
    no_opac = browser.go(f"{platform.gateway}/api/library/v1/schools/{SCHOOL_B}/opac")
    assert no_opac.status_code in (403, 404) and no_opac.headers["content-type"].startswith("application/problem+json")
    pupil, _ = platform.sign_in("educonnect", "E2")  # in school B only
    not_hers = pupil.go(link)
    assert not_hers.status_code == 403 and SCHOOL_A in not_hers.json()["detail"]
    # A school's connection forgotten: Keycloak no longer sends anyone back to its OPAC.
    httpx.delete(
        f"{platform.gateway}/api/library/v1/operator/schools/{SCHOOL_A}/pmb", headers=operator
    ).raise_for_status()
    with admin_client(platform.keycloak.url, platform.keycloak.admin_user, platform.keycloak.admin_password) as admin:
        client_id = platform.env["MAILLE_IDENTITY_PMB_OPAC_CLIENT_ID"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            uris = admin.get("/clients", params={"clientId": client_id}).raise_for_status().json()[0]["redirectUris"]
            if f"{platform.pmb.opac_url(database)}/*" not in uris:
                break
            time.sleep(0.5)
        assert f"{platform.pmb.opac_url(database)}/*" not in uris
    fresh, _ = platform.sign_in("academie", "T1")
    refused = fresh.go(f"{platform.pmb.opac_url(database)}/empr.php")
    assert refused.status_code == 400 and "redirect_uri" in refused.text.lower()


def test_an_opac_keycloak_refuses_is_left_out_without_blocking_the_others(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from maille_identity.federation.repository import FederationRepository
    from maille_identity.federation.service import Federation
    from maille_identity.settings import IdentitySettings
    from maille_kit.docstore import Docstore

    for name, value in platform.env.items():
        monkeypatch.setenv(name, value)
    good, refused = (
        f"{platform.pmb.url}/opac/cdi{SCHOOL_B}",
        "http://cdi.example.org/" + "x" * 300,
    )  # past Keycloak's 255 characters

    async def register() -> list[str]:
        docstore = Docstore(platform.env["MAILLE_IDENTITY_MONGODB_URL"], platform.database, app_name="test-opac")
        settings = IdentitySettings()
        federation = Federation(settings, FederationRepository(docstore, settings.secret_box()))
        try:
            await federation.opac_changed(SCHOOL_B, good)
            await federation.opac_changed("0351099A", refused)  # Keycloak answers 500: left out, logged
            return await federation.federations.opac_redirect_uris()
        finally:
            await federation.keycloak.close()
            await docstore.close()

    kept = asyncio.run(register())
    assert f"{good}/*" in kept and not any(uri.startswith("http://cdi.example.org/") for uri in kept)
    with admin_client(platform.keycloak.url, platform.keycloak.admin_user, platform.keycloak.admin_password) as admin:
        client = (
            admin.get("/clients", params={"clientId": platform.env["MAILLE_IDENTITY_PMB_OPAC_CLIENT_ID"]})
            .raise_for_status()
            .json()[0]
        )
    assert f"{good}/*" in client["redirectUris"]


def test_sign_out_ends_the_session_here_and_at_keycloak(platform: Platform) -> None:
    browser, me = platform.sign_in("educonnect", "E1")
    assert me.status_code == 200
    browser.through_saml(
        browser.post_form(browser.go(f"{platform.gateway}/logout"))
    )  # through EduConnect's single logout
    assert browser.go(f"{platform.gateway}/api/identity/v1/me").status_code == 401
    # Keycloak's session is gone too: signing in again asks EduConnect again.
    page = browser.go(f"{platform.gateway}/login", params={"idp": "educonnect"})
    assert 'name="password"' in page.text and "/idp/sso/redirect" in str(page.url)  # EduConnect's own form


def test_a_second_reconcile_changes_nothing_and_a_hand_made_change_is_put_back(platform: Platform) -> None:
    sync = [str(bin_of("maille-identity")), "sync-keycloak", "--check"]
    clean = subprocess.run(sync, env={**os.environ, **platform.env}, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "nothing to change" in clean.stdout
    with admin_client(platform.keycloak.url, platform.keycloak.admin_user, platform.keycloak.admin_password) as admin:
        idp = admin.get("/identity-provider/instances/educonnect").raise_for_status().json()
        idp["config"]["validateSignature"] = "false"  # someone weakens the broker by hand
        admin.put("/identity-provider/instances/educonnect", json=idp).raise_for_status()
        drifted = subprocess.run(sync, env={**os.environ, **platform.env}, capture_output=True, text=True)
        assert drifted.returncode == 1
        assert "identity provider educonnect: config put back" in drifted.stdout
        assert admin.get("/identity-provider/instances/educonnect").json()["config"]["validateSignature"] == "true"


async def _forged_sign_in(
    platform: Platform, *, lifetime_minutes: int = 5, audience: str | None = None, tamper=lambda xml: xml
) -> tuple[Browser, str, dict[str, str]]:
    """Start a sign-in at the gateway through EduConnect, and answer Keycloak's AuthnRequest with a response
    made here (with the EduConnect peer's own key), as the test wants it; (browser, ACS URL, the form)."""
    from educonnect.profiles import EDUCONNECT
    from lxml import etree
    from samlpeer.idp import Directory, Pending, SamlIdp

    browser = Browser()
    page = browser.go(f"{platform.gateway}/login", params={"idp": "educonnect", "next": "/api/identity/v1/me"})
    # Keycloak sent the AuthnRequest by HTTP-Redirect: deflated, in the query of the peer's sign-on address.
    sent = httpx.URL(str(page.url))
    assert sent.path == "/idp/sso/redirect" and sent.params.get("Signature"), "the AuthnRequest comes signed"
    request = etree.fromstring(zlib.decompress(base64.b64decode(sent.params["SAMLRequest"]), -15))
    issuer = request.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer").text
    acs = request.get("AssertionConsumerServiceURL")
    peer_url = f"{sent.scheme}://{sent.netloc.decode()}"
    fields = {"RelayState": sent.params.get("RelayState", "")}
    idp = SamlIdp(
        profile=EDUCONNECT,
        base_url=peer_url,
        work_dir=platform.peers_dir,
        directory=Directory(platform.env["MAILLE_IDENTITY_MONGODB_URL"], platform.database),
        sp_metadata_urls=[f"{platform.keycloak.url}/realms/maille/broker/educonnect/endpoint/descriptor"],
        password=PASSWORD,
        xmlsec_binary=platform.xmlsec,
        lifetime_minutes=lifetime_minutes,
    )
    if audience:  # another SP the IdP knows: its response is addressed to that SP, and signed as valid for it
        from saml2.server import Server

        descriptor = httpx.get(idp.sp_metadata_urls[0]).text
        server = Server(
            config=idp.config([descriptor, descriptor.replace(f'entityID="{issuer}"', f'entityID="{audience}"')])
        )
        server.config.getattr("policy", "idp").restrict = lambda ava, sp_entity_id, metadata=None: ava
        idp._server, idp._server_built = server, time.monotonic()
    pending = Pending(
        request_id=request.get("ID"),
        sp_entity_id=audience or issuer,
        destination=acs,
        relay_state=fields["RelayState"],
    )
    form = await idp.respond(pending, idp.directory.find("E1"))
    answer = {k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)}
    answer["SAMLResponse"] = base64.b64encode(
        tamper(base64.b64decode(answer["SAMLResponse"]).decode()).encode()
    ).decode()
    return browser, acs, answer


def _signed_in(landed: httpx.Response) -> bool:
    return landed.status_code == 200 and landed.headers.get("content-type", "").startswith("application/json")


async def test_a_genuine_forged_here_response_signs_in_but_not_twice(platform: Platform) -> None:
    browser, acs, answer = await _forged_sign_in(platform)
    assert _signed_in(browser.go(acs, method="POST", data=answer))  # the helper itself makes valid responses
    replayed = browser.go(acs, method="POST", data=answer)
    assert not _signed_in(replayed) and replayed.status_code >= 400


async def test_a_response_without_its_signatures_is_refused(platform: Platform) -> None:
    strip = lambda xml: re.sub(r"(?s)<ns\d+:Signature .*?</ns\d+:Signature>", "", xml)  # noqa: E731
    browser, acs, answer = await _forged_sign_in(platform, tamper=strip)
    assert "Signature" not in base64.b64decode(answer["SAMLResponse"]).decode()
    refused = browser.go(acs, method="POST", data=answer)
    assert not _signed_in(refused) and refused.status_code >= 400


async def test_a_response_for_another_audience_is_refused(platform: Platform) -> None:
    browser, acs, answer = await _forged_sign_in(platform, audience="https://another-sp.example/saml")
    refused = browser.go(acs, method="POST", data=answer)
    assert not _signed_in(refused) and refused.status_code >= 400


async def test_an_expired_response_is_refused(platform: Platform) -> None:
    browser, acs, answer = await _forged_sign_in(platform, lifetime_minutes=-15)
    refused = browser.go(acs, method="POST", data=answer)
    assert not _signed_in(refused) and refused.status_code >= 400


def _account(platform: Platform, person_id: str) -> dict | None:
    with admin_client(platform.keycloak.url, platform.keycloak.admin_user, platform.keycloak.admin_password) as admin:
        found = admin.get("/users", params={"q": f"ent_id:{person_id}"}).raise_for_status().json()
    return found[0] if found else None


def _eventually(check, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_a_change_in_the_directory_reaches_the_linked_account(platform: Platform, tmp_path: Path) -> None:
    _, me = platform.sign_in("academie", "T1")
    teacher = me.json()["id"]
    assert _account(platform, teacher)["attributes"]["uai"] == [SCHOOL_A]
    write_feed(tmp_path / "feed", without=("E3",), teacher_in=("900001", "900002"))  # now teaching in both collèges
    platform.import_feed(tmp_path / "feed")
    assert _eventually(lambda: sorted(_account(platform, teacher)["attributes"]["uai"]) == [SCHOOL_A, SCHOOL_B])
    assert _account(platform, teacher)["attributes"]["profiles"] == ["National_ENS"]


def test_an_erased_person_loses_their_account_and_cannot_sign_in(platform: Platform) -> None:
    _, me = platform.sign_in("educonnect", "E2")
    pupil = me.json()["id"]
    assert _account(platform, pupil) is not None
    erased = subprocess.run(
        [str(bin_of("maille-identity")), "erase", pupil, "--yes"],
        env={**os.environ, **platform.env},
        capture_output=True,
        text=True,
    )
    assert erased.returncode == 0, erased.stderr
    assert _eventually(lambda: _account(platform, pupil) is None)
    _, page = platform.sign_in("educonnect", "E2")  # EduConnect still knows her; this ENT no longer does
    assert page.status_code == 403 and "Aucune fiche" in page.text


def _operator_token(platform: Platform) -> str:
    keycloak = platform.keycloak
    client_id, secret = f"ops-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    with admin_client(keycloak.url, keycloak.admin_user, keycloak.admin_password) as admin:
        ensure_service_client(admin, client_id, secret, roles=("operator",))
    return (
        httpx.post(
            f"{keycloak.url}/realms/maille/protocol/openid-connect/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        .raise_for_status()
        .json()["access_token"]
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"issuer": "http://idp.cd35.example/realms/x"}, "issuer"),  # not https, not this machine
        ({"claims": {"first_name": "given_name"}}, "claims"),  # nothing to match accounts by
        ({"alias": "Bad Alias!"}, "alias"),
        ({"alias": "educonnect"}, None),  # Maille's own IdP: 409
        ({"structures": []}, "structures"),
        ({"client_secret": ""}, "client_secret"),
    ],
)
def test_a_malformed_federation_is_refused_naming_what_is_wrong(
    platform: Platform, change: dict, field: str | None
) -> None:
    body = {
        "alias": "cd22",
        "name": "Côtes-d'Armor",
        "issuer": "https://idp.cd22.example/realms/agents",
        "client_id": "maille",
        "client_secret": "s3cret",
        "claims": {"email": "email"},
        "structures": [SCHOOL_A],
        **change,
    }
    answer = httpx.post(
        f"{platform.gateway}/api/identity/v1/federations",
        json=body,
        headers={"Authorization": f"Bearer {_operator_token(platform)}"},
    )
    assert answer.headers["content-type"].startswith("application/problem+json")
    if field is None:
        assert answer.status_code == 409
    else:
        assert answer.status_code == 422 and field in answer.json()["detail"], answer.text
    listed = httpx.get(
        f"{platform.gateway}/api/identity/v1/federations",
        headers={"Authorization": f"Bearer {_operator_token(platform)}"},
    )
    assert "cd22" not in [f["alias"] for f in listed.json()]  # nothing half-made


def test_federations_are_for_operators_only(platform: Platform) -> None:
    browser, me = platform.sign_in("academie", "T1")
    answer = browser.go(f"{platform.gateway}/api/identity/v1/federations")
    assert answer.status_code == 403


def test_a_malformed_or_foreign_choice_is_refused(platform: Platform) -> None:
    browser, me = platform.sign_in("educonnect", "E1")
    csrf = browser.site_cookies(platform.gateway)["maille_csrf"]
    for choice in ("not-an-id", "0" * 24):  # not an id; an id that is not one of this account's entries
        answer = browser.request("POST", f"{platform.gateway}/auth/choose", data={"csrf": csrf, "choice": choice})
        assert answer.status_code == 400 and answer.headers["content-type"].startswith("application/problem+json")
    forged = browser.request(
        "POST", f"{platform.gateway}/auth/choose", data={"csrf": "wrong", "choice": me.json()["id"]}
    )
    assert forged.status_code == 403
    assert browser.go(f"{platform.gateway}/api/identity/v1/me").json()["id"] == me.json()["id"]  # still herself


def test_the_login_page_offers_each_way_in(platform: Platform) -> None:
    page = Browser().go(f"{platform.gateway}/login")  # no IdP named: Keycloak's page, in French
    text = html.unescape(page.text)
    assert "Élève ou parent — ÉduConnect" in text and "Personnel de l'Éducation nationale" in text


def _token(platform: Platform, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{platform.keycloak.url}/realms/maille/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30,
    )


def test_an_operator_onboards_a_vendor_as_code(platform: Platform) -> None:
    """A vendor's API client made through the API: the roles and audiences its kind needs, its secret shown once
    and working; listed with its last use; rotated with the old secret still valid for the grace period; withdrawn,
    after which its secret gets no token. Mistakes are refused naming what is wrong."""
    operator = {"Authorization": f"Bearer {_operator_token(platform)}"}
    clients = f"{platform.gateway}/api/identity/v1/clients"
    vendor = f"editeur-{uuid.uuid4().hex[:6]}"
    made = httpx.post(clients, json={"client_id": vendor, "kind": "vendor", "name": "Éditions Test"}, headers=operator)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["client"]["roles"] == ["vendor"] and body["client"]["audiences"] == ["maille", "maille-catalog"]
    assert body["token_url"].endswith("/realms/maille/protocol/openid-connect/token")
    first = body["client_secret"]
    token = _token(platform, vendor, first)
    assert token.status_code == 200, token.text
    payload = token.json()["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert {"maille", "maille-catalog"} <= set(claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert "vendor" in claims["realm_access"]["roles"] and claims["azp"] == vendor
    # Listed, never with its secret, with its last use (Keycloak's record of that token).
    listed = httpx.get(clients, headers=operator).json()
    mine = next(client for client in listed if client["client_id"] == vendor)
    assert mine["last_used_at"] is not None and first not in json.dumps(listed)
    # Rotated: a new secret; the old one still valid for the grace period.
    rotated = httpx.post(f"{clients}/{vendor}/secret", headers=operator)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["client_secret"]
    assert second != first and rotated.json()["previous_secret_valid_until"]
    assert _token(platform, vendor, second).status_code == 200
    assert _token(platform, vendor, first).status_code == 200  # the grace period
    # Mistakes, each named.
    again = httpx.post(clients, json={"client_id": vendor, "kind": "vendor", "name": "x"}, headers=operator)
    assert again.status_code == 409 and vendor in again.json()["detail"]
    wrong = httpx.post(clients, json={"client_id": "Bad Id!", "kind": "admin", "name": ""}, headers=operator)
    assert wrong.status_code == 422
    assert {"client_id", "kind", "name"} <= {error["field"].split(".")[-1] for error in wrong.json()["errors"]}
    assert httpx.post(f"{clients}/nobody-here/secret", headers=operator).status_code == 404
    browser, _ = platform.sign_in("educonnect", "E1")
    assert browser.go(clients).status_code == 403  # a pupil is no operator
    # The command line sees it too.
    listed_cli = subprocess.run(
        [str(bin_of("maille-identity")), "clients", "list"],
        env={**os.environ, **platform.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed_cli.returncode == 0 and vendor in listed_cli.stdout, listed_cli.stderr
    # Withdrawn: no token any more, with either secret.
    assert httpx.delete(f"{clients}/{vendor}", headers=operator).status_code == 204
    assert _token(platform, vendor, second).status_code == 401
    assert vendor not in json.dumps(httpx.get(clients, headers=operator).json())
