"""The portal's tests: `make run`'s whole platform (maille-devstack run, on free ports and a .var of the test's own)
and Debian's Chromium driven by Playwright, with axe-core (the portal's own npm copy) checking each screen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from pymongo import MongoClient

from maille_devstack.started import CHROMIUM, CHROMIUM_ARGS, devstack

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "portal" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


@dataclass
class Stack:
    gateway: str
    keycloak: str
    docstore: str
    ports: Any = None  # maille_devstack.stack.Ports: Mailpit's, the SMTP server's…

    def persons(self) -> Any:
        return MongoClient(self.docstore, serverSelectionTimeoutMS=5000)["maille_identity"]["persons"]


# Module-scoped: Playwright's synchronous API runs an event loop of its own while it lives, which the asynchronous tests
# after these must not find running.
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`make run`'s platform, started once for the portal's tests."""
    if not (ROOT / "portal" / "dist" / "index.html").is_file():
        pytest.fail("the portal is not built: `make setup` builds it")
    with devstack(tmp_path_factory.mktemp("portal") / "var") as started:
        yield Stack(gateway=started.gateway, keycloak=started.keycloak, docstore=started.docstore, ports=started.ports)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make setup` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        yield browser
        browser.close()


def new_page(chromium: Browser, viewport: dict[str, int] = DESKTOP) -> Page:
    """A page of its own browser context (its own cookies: one person), every wait bounded."""
    context = chromium.new_context(viewport=viewport, locale="fr-FR", accept_downloads=True)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.csp_errors = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and page.csp_errors.append(message.text),  # type: ignore[attr-defined]
    )
    return page


def sign_in_keycloak(page: Page, stack: Stack, username: str, password: str = "demo") -> None:
    """A local account of the realm (the demo users) through Keycloak's own form, from the portal's button."""
    page.goto(stack.gateway + "/")
    page.get_by_role("button", name="Se connecter").click()
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#kc-login")
    page.wait_for_url(stack.gateway + "/**")
    page.get_by_role("heading", name="Bonjour", exact=False).wait_for()


def sign_in_educonnect(page: Page, stack: Stack, key: str, password: str = "demo") -> None:
    """A pupil or a parent through the EduConnect peer (its own login form, SAML back to Keycloak)."""
    page.goto(f"{stack.gateway}/login?idp=educonnect&next=/")
    page.fill("input[name=username]", key)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(stack.gateway + "/**", timeout=30_000)
    if "/auth/choose" in page.url:  # an adult of two schools' feeds, first signed in: the entry of `key`, chosen
        person = stack.persons().find_one({"keys": key}, {"_id": 1})
        page.check(f'input[name=choice][value="{person["_id"]}"]')
        page.get_by_role("button", name="Continuer").click()
    page.get_by_role("heading", name="Bonjour", exact=False).wait_for()


def shared_parent(stack: Stack) -> list[dict[str, Any]]:
    """The two directory entries (one per school's feed) of the demo directory's parent with a child in each
    collège (`generate-aaf --shared-parents`), school by school."""
    seen: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for person in stack.persons().find(
        {"kind": "parent"}, {"last_name": 1, "first_name": 1, "mobile": 1, "keys": 1, "children": 1, "profiles": 1}
    ):
        entries = seen.setdefault((person["last_name"], person["first_name"], person.get("mobile", "")), [])
        entries.append(person)
        if len(entries) == 2 and {e["profiles"][0]["structure"] for e in entries} != {
            entries[0]["profiles"][0]["structure"]
        }:
            return sorted(entries, key=lambda e: e["profiles"][0]["structure"])
    raise AssertionError("the demo directory has no parent with a child in each school")


def axe(page: Page) -> list[dict[str, Any]]:
    """The serious and critical accessibility violations axe-core finds on the page as it is."""
    # Evaluated through the DevTools protocol: the page's own policy (no inline script) stays as it is.
    page.evaluate(AXE.read_text())
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".filter(v => ['serious', 'critical'].includes(v.impact))"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
    )
    return list(found)
