"""The platform's screens for an operator, on `make run`'s whole platform in Debian's Chromium: a person with the
realm's `operator` role finds the platform's administration (an AAF delivery, the GAR export, the federations, the
CDIs), runs the GAR export now and reads its result in words; a principal reads the observatory's dashboard of their
school once pupils have signed in. axe-core checks the screens."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from maille_devstack.keycloak_admin import admin_client, grant_roles

from .conftest import PHONE, Stack, axe, new_page, sign_in_educonnect, sign_in_keycloak
from .test_journeys import open_section

pytestmark = pytest.mark.keycloak


@pytest.fixture
def operator(stack: Stack) -> Iterator[str]:
    """`demo-direction` made an operator of the platform for this test (the realm's role), then no longer."""
    with admin_client(stack.keycloak, "admin", "admin") as api:
        user = api.get("/users", params={"username": "demo-direction", "exact": "true"}).raise_for_status().json()[0]
        grant_roles(api, user["id"], ("operator",))
    yield "demo-direction"
    with admin_client(stack.keycloak, "admin", "admin") as api:
        role = api.get("/roles/operator").raise_for_status().json()
        api.request("DELETE", f"/users/{user['id']}/role-mappings/realm", json=[role]).raise_for_status()


def test_an_operator_runs_the_gar_export_from_the_portal(chromium, stack: Stack, operator: str) -> None:
    page = new_page(chromium)
    sign_in_keycloak(page, stack, operator)
    open_section(page, "Administration")
    expect(page.get_by_role("heading", name="Plateforme")).to_be_visible()
    for section in (
        "Exports de l'annuaire vers le GAR",
        "CDI reliés (PMB)",
        "Observatoire des usages : son fonctionnement",
    ):
        expect(page.get_by_role("heading", name=section)).to_be_visible()
    expect(page.get_by_text(re.compile(r"usages comptés depuis son démarrage"))).to_be_visible()
    page.get_by_role("button", name="Exporter maintenant").click()
    expect(page.get_by_role("status")).to_contain_text("L'export vers le GAR est lancé")
    table = page.get_by_role("table", name=re.compile("Derniers exports"))
    row = table.get_by_role("row").nth(1)
    expect(row).to_contain_text("Un exploitant")
    expect(row).to_contain_text("Réussi", timeout=60_000)
    expect(row).to_contain_text(re.compile(r"\d[\d\u202f ]* élèves"))
    expect(row).to_contain_text("non (pas de dépôt configuré)")
    violations = axe(page)
    assert not violations, f"administration (exploitant): {violations}"
    assert not page.csp_errors, page.csp_errors  # type: ignore[attr-defined]


def pupils_of_the_principals_school(stack: Stack, count: int) -> tuple[str, list[dict]]:
    """The UAI of the school `demo-direction` directs, and `count` of its pupils with an EduConnect key (of that school
    only: a person of two schools counts in the first)."""
    persons = stack.persons()
    principal = next(
        p
        for p in persons.find({"kind": "staff"}).limit(500)
        if any(f.get("code") == "DIR" for f in p.get("functions", []))
    )
    uai = next(f["structure"] for f in principal["functions"] if f.get("code") == "DIR")
    found = [
        p
        for p in persons.find({"kind": "pupil", "keys.0": {"$exists": True}}).limit(3000)
        if p.get("profiles") and all(profile.get("structure") == uai for profile in p["profiles"])
    ]
    assert len(found) >= count, f"only {len(found)} pupils with an EduConnect key in {uai}"
    return uai, found[:count]


def table(page: Page, chart: str) -> list[list[str]]:
    """The rows of a chart's data table (folded away under "Voir les données" or not)."""
    page.get_by_test_id(f"donnees-{chart}").wait_for(state="attached")
    rows = page.get_by_test_id(f"donnees-{chart}").evaluate(
        "t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))"
    )
    return [[str(c) for c in row] for row in rows]


def test_a_principal_reads_the_uses_of_their_school_and_a_parent_cannot(chromium, stack: Stack) -> None:
    """Five pupils of the school sign in through EduConnect and open their mail; their principal finds the
    observatory in the header, reads the month's active pupils and the services used (the figures of five persons
    and more), the smaller ones masked, downloads a chart's CSV and prints the page; a parent has no such entry and
    the API refuses them the school's figures."""
    uai, pupils = pupils_of_the_principals_school(stack, 5)
    for pupil in pupils:
        page = new_page(chromium, PHONE)
        sign_in_educonnect(page, stack, pupil["keys"][0])
        with page.expect_response(
            lambda r: r.url.endswith("/api/uses") and "messagerie" in (r.request.post_data or "")
        ) as told:
            open_section(page, "Messagerie")
        assert told.value.status == 204  # the screen opened, told to the gateway
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        # The CDI too: when the principal's own visit of the observatory (one person) is left out, the smallest
        # other figure is left out with it (no subtraction gives it back) — the CDI's, not the mail's.
        with page.expect_response(lambda r: r.url.endswith("/api/uses") and "cdi" in (r.request.post_data or "")):
            open_section(page, "CDI")
        page.context.close()

    principal = new_page(chromium)
    sign_in_keycloak(principal, stack, "demo-direction")
    open_section(principal, "Observatoire")
    expect(principal.get_by_role("heading", name="Observatoire des usages")).to_be_visible()
    expect(principal.get_by_label("Périmètre")).to_have_value(f"school:{uai}")
    # The uses are folded every ten seconds: the page read again until the five pupils show.
    deadline = time.monotonic() + 90
    while True:
        services = table(principal, "services")
        if any(r[0] == "Messagerie" and r[1].isdigit() for r in services):
            break
        assert time.monotonic() < deadline, services
        principal.wait_for_timeout(3000)
        principal.reload()
    assert int(next(r[1] for r in services if r[0] == "Messagerie")) >= 5
    expect(principal.get_by_test_id("graphique-active")).to_be_visible()
    pupils_active = [r for r in table(principal, "active") if r[0] == "Élèves — cette année"]
    assert any(r[2].isdigit() and int(r[2]) >= 5 for r in pupils_active), pupils_active
    violations = axe(principal)
    assert not violations, violations
    assert not principal.csp_errors, principal.csp_errors  # type: ignore[attr-defined]

    with principal.expect_download() as download:
        principal.get_by_role("link", name=re.compile("Télécharger les données \\(CSV\\) — Services utilisés")).click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "clé;libellé;ouvertures" and re.search(r"messagerie;Messagerie;\d+", text), text
    if "observatoire;Observatoire;< 5" in text:  # the principal's own visit, left out — never alone
        assert text.count(";< 5") >= 2, text

    principal.emulate_media(media="print")
    expect(principal.get_by_label("Périmètre")).to_be_hidden()
    expect(principal.get_by_test_id("graphique-services")).to_be_visible()
    principal.emulate_media(media="screen")

    parent = new_page(chromium)
    sign_in_keycloak(parent, stack, "demo-parent")
    expect(parent.get_by_role("link", name="Observatoire")).to_have_count(0)
    refused = parent.request.get(f"{stack.gateway}/api/observatory/v1/dashboards/school:{uai}")
    assert refused.status == 403 and refused.headers["content-type"] == "application/problem+json"
