"""Support on `make run`'s whole platform, in Debian's Chromium, with Debian's Redmine as the académie's tracker: a
pupil on a phone finds the help pages from the header, is offered articles as they type, asks for help with a
screenshot; their principal (the school's referent) finds it in their queue with its context and sends it up to the
académie's support, whose Redmine gets an issue; a comment made in Redmine reaches the pupil's bell and their
request within a minute. axe-core checks every screen."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from pymongo import MongoClient

from maille_devstack.keycloak_admin import admin_client, ensure_service_client
from maille_devstack.processes import RedmineServer

from .conftest import PHONE, Stack, axe, new_page, sign_in_educonnect, sign_in_keycloak

pytestmark = pytest.mark.keycloak
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
SUBJECT = "Le manuel de maths ne s'ouvre pas"


def accessible(page: Any, screen: str) -> None:
    violations = axe(page)
    assert not violations, f"{screen}: {violations}"
    assert not page.csp_errors, f"{screen}: the page's policy refused {page.csp_errors}"


def operator_token(stack: Stack) -> str:
    client_id, secret = "test-support-operator", os.urandom(16).hex()
    with admin_client(stack.keycloak, "admin", "admin") as api:
        ensure_service_client(api, client_id, secret, roles=("operator",))
    answer = httpx.post(
        f"{stack.keycloak}/realms/maille/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30,
    )
    return str(answer.raise_for_status().json()["access_token"])


def declare_academie_desk(stack: Stack, redmine: RedmineServer) -> None:
    """The académie's support, connected to its Redmine, as an operator declares it (through the gateway)."""
    desk = redmine.desk
    body = {
        "name": "Support de l'académie",
        "kind": "academie",
        "redmine": {k: desk[k] for k in ("url", "project", "tracker_id", "uai_field", "reference_field", "api_key")},
    }
    answer = httpx.put(
        f"{stack.gateway}/api/support/v1/operator/desks/academie",
        json=body,
        headers={"Authorization": f"Bearer {operator_token(stack)}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def pupil_of_the_principals_school(stack: Stack) -> dict[str, Any]:
    """A pupil with an EduConnect key in the school whose principal is `demo-direction`."""
    identity = MongoClient(stack.docstore, serverSelectionTimeoutMS=5000)["maille_identity"]
    principal = next(
        p
        for p in identity["persons"].find({"kind": "staff"}).limit(500)
        if any(f.get("code") == "DIR" for f in p.get("functions", []))
    )
    structure = next(f["structure"] for f in principal["functions"] if f.get("code") == "DIR")
    for pupil in identity["persons"].find({"kind": "pupil", "keys.0": {"$exists": True}}).limit(2000):
        if any(p.get("structure") == structure for p in pupil.get("profiles", [])):
            return dict(pupil)
    raise AssertionError(f"no pupil with an EduConnect key in the principal's school {structure}")


def redmine_issue(redmine: RedmineServer, reference: str) -> dict[str, Any] | None:
    found = httpx.get(
        f"{redmine.url}/issues.json",
        params={
            "project_id": redmine.desk["project"],
            "status_id": "*",
            f"cf_{redmine.desk['reference_field']}": reference,
        },
        headers=redmine.headers,
        timeout=10,
    ).raise_for_status()
    issues = found.json()["issues"]
    return issues[0] if issues else None


def test_a_pupils_request_goes_up_to_the_academies_redmine_and_its_answer_comes_back(
    chromium, stack: Stack, redmine_server: RedmineServer
) -> None:
    declare_academie_desk(stack, redmine_server)
    pupil = pupil_of_the_principals_school(stack)

    # The pupil, on a phone: "Aide" in the header, articles as they type.
    page = new_page(chromium, PHONE)
    sign_in_educonnect(page, stack, pupil["keys"][0])
    help_link = page.get_by_role("link", name="Aide", exact=True)
    menu = page.get_by_role("button", name="Menu")
    if not help_link.first.is_visible() and menu.is_visible():
        menu.click()
    help_link.first.click()
    expect(page.get_by_role("heading", name="Aide", exact=True)).to_be_visible()
    page.get_by_label("Décrivez votre question").fill("mot de pas")
    expect(page.get_by_role("link", name=re.compile("ÉduConnect"))).to_be_visible()
    accessible(page, "aide (élève)")
    page.get_by_role("link", name="Demander de l'aide", exact=True).click()
    expect(page.get_by_role("heading", name="Demander de l'aide")).to_be_visible()
    page.get_by_label("C'est à propos de").select_option(label="Une ressource ou le médiacentre")
    page.get_by_label(re.compile("^Objet")).fill(SUBJECT)
    expect(page.get_by_role("link", name="Retrouver ses manuels et ressources dans le médiacentre")).to_be_visible()
    page.get_by_label(re.compile("^Description")).fill("L'éditeur affiche « accès refusé » quand je clique sur Ouvrir.")
    page.set_input_files("#demande-fichiers", files=[{"name": "capture.png", "mimeType": "image/png", "buffer": PNG}])
    accessible(page, "demander de l'aide")
    page.get_by_role("button", name="Envoyer la demande").click()
    expect(page.get_by_role("heading", name=SUBJECT)).to_be_visible()
    expect(page.get_by_text("Nouvelle", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="capture.png")).to_be_visible()
    request_id = page.url.rstrip("/").rsplit("/", 1)[1]
    accessible(page, "une demande (élève)")

    # The principal, the school's referent: the queue, the request with its context, sent up to the académie.
    principal = new_page(chromium)
    sign_in_keycloak(principal, stack, "demo-direction")
    principal.goto(stack.gateway + "/aide/file")
    expect(principal.get_by_role("heading", name="Demandes à traiter")).to_be_visible()
    # (the direction names its referents here; none named, the principal takes the requests)
    expect(principal.get_by_role("heading", name=re.compile("^Référents numériques"))).to_be_visible()
    expect(principal.get_by_role("button", name="Enregistrer les référents")).to_be_visible()
    accessible(principal, "demandes à traiter (direction)")
    principal.get_by_role("link", name=SUBJECT).first.click()
    expect(principal.get_by_role("heading", name=SUBJECT)).to_be_visible()
    principal.get_by_text("Contexte ajouté par l'ENT").click()
    expect(principal.get_by_text(re.compile("^Navigateur : .*Chrome"))).to_be_visible()
    accessible(principal, "une demande (référent)")
    principal.get_by_label(re.compile("^Ce que vous avez déjà vérifié")).fill("La licence n'apparaît pas dans le GAR.")
    principal.get_by_role("button", name="Transmettre").click()
    expect(principal.get_by_role("status")).to_contain_text("Demande transmise")
    expect(principal.get_by_text(re.compile("Support de l'académie ·"))).to_be_visible()

    # Redmine has the issue; the académie answers there.
    deadline = time.monotonic() + 30
    while (issue := redmine_issue(redmine_server, request_id)) is None:
        assert time.monotonic() < deadline, "no Redmine issue for the request"
        time.sleep(0.5)
    httpx.put(
        f"{redmine_server.url}/issues/{issue['id']}.json",
        json={"issue": {"notes": "La licence est attribuée : réessayez dans une heure."}},
        headers=redmine_server.headers,
        timeout=10,
    ).raise_for_status()
    commented = time.monotonic()

    # Within a minute it is in the pupil's feed (their bell rings); the notification leads to the answer.
    while True:
        feed = page.request.get(f"{stack.gateway}/api/timeline/v1/feed").json()
        if any(i["link"] == f"/aide/demandes/{request_id}" and "a répondu" in i["title"] for i in feed["items"]):
            break
        assert time.monotonic() - commented < 90, "the Redmine comment never reached the pupil's feed"
        time.sleep(0.5)
    took = time.monotonic() - commented
    expect(page.get_by_test_id("non-lues").first).not_to_have_count(0)
    page.goto(stack.gateway + "/notifications")
    item = page.get_by_role("link", name=re.compile("Support de l'académie a répondu à votre demande d'aide"))
    expect(item.first).to_be_visible(timeout=30_000)
    item.first.click()
    expect(page.get_by_text("La licence est attribuée : réessayez dans une heure.")).to_be_visible()
    accessible(page, "une demande répondue (élève)")
    assert took <= 60, f"the Redmine comment reached the pupil after {took:.0f} s"
