"""The platform's screens for an operator, on `make run`'s whole platform in Debian's Chromium: a person with the
realm's `operator` role finds the platform's administration (an AAF delivery, the GAR export, the federations, the
CDIs), runs the GAR export now and reads its result in words. axe-core checks the screen."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from maille_devstack.keycloak_admin import admin_client, grant_roles

from .conftest import Stack, axe, new_page, sign_in_keycloak
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
    for section in ("Exports de l'annuaire vers le GAR", "CDI reliés (PMB)"):
        expect(page.get_by_role("heading", name=section)).to_be_visible()
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
