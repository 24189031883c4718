"""The portal as a pupil meets it, in Debian's Chromium on `make run`'s platform (started here on free ports):

- the dashboard painted with its data after the sign-in's callback: from the browser receiving the gateway's answer to
  /auth/callback to the three sections (mail, favourites, CDI) shown with what the APIs answered — median and p90 of
  `--signins` sign-ins, each in a fresh browser context (nothing cached: the first visit of the morning);
- what the first screen downloads: its JS and CSS, compressed as the gateway sends them;
- an inbox page change: the next page of a 60-message inbox and back, click to the new list painted, p95;
- Lighthouse (npm, `make bench-tools`, on the same Chromium; its default: a phone on a slow 4G network, CPU slowed
  4×) on the dashboard, the mail and the médiacentre, signed in: performance, accessibility, best practices.

Run: .venv/bin/python bench/portal.py [--signins 20] [--pages 20]
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
from common import arguments, machine, pct  # noqa: E402
from maille_devstack.started import CHROMIUM, CHROMIUM_ARGS, devstack  # noqa: E402


def sign_in(page: Page, gateway: str, username: str) -> float:
    """Sign in through Keycloak's form; seconds from the callback's answer to the dashboard painted with its data."""
    called: list[float] = []
    page.on("response", lambda r: "/auth/callback" in r.url and called.append(time.perf_counter()))
    page.goto(f"{gateway}/login?next=/")
    page.fill("#username", username)
    page.fill("#password", "demo")
    page.click("#kc-login")
    page.get_by_role("heading", name=re.compile("^Bonjour")).wait_for(timeout=30_000)
    page.get_by_text("Chargement…").first.wait_for(state="detached", timeout=30_000)  # every section in
    painted = time.perf_counter()
    return painted - called[0]


def first_screen_bytes(browser, gateway: str, username: str) -> tuple[int, list[str]]:
    """The JS and CSS the dashboard loads (the entry, its preloads, the DSFR's script React-DSFR loads at start), as
    sent over the wire (gzip): their bodies' sizes as the browser received them."""
    context = browser.new_context()
    page = context.new_page()
    assets: list = []
    page.on("requestfinished", lambda r: re.search(r"/assets/.+\.(js|css)$", r.url) and assets.append(r))
    sign_in(page, gateway, username)
    sizes = {r.url.rsplit("/", 1)[-1]: r.sizes()["responseBodySize"] for r in assets}
    context.close()
    return sum(sizes.values()), sorted(sizes)


LIGHTHOUSE = Path(__file__).resolve().parents[1] / ".cache" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"


def lighthouse(url: str, cookies: str, out: Path) -> dict[str, int]:
    """Lighthouse's scores (0 – 100) of one signed-in page."""
    import json
    import os
    import subprocess

    report = out / f"{url.rsplit('/', 1)[-1] or 'accueil'}.json"
    subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            "--only-categories=performance,accessibility,best-practices",
            f"--extra-headers={json.dumps({'Cookie': cookies})}",
            "--chrome-flags=--headless=new " + " ".join(CHROMIUM_ARGS),
            "--output=json",
            f"--output-path={report}",
            "--quiet",
        ],
        env={**os.environ, "CHROME_PATH": CHROMIUM},
        check=True,
        timeout=300,
    )
    categories = json.loads(report.read_text())["categories"]
    return {name: round(category["score"] * 100) for name, category in categories.items()}


def main() -> None:
    args = arguments(__doc__, signins=20, pages=20)
    with devstack(Path(tempfile.mkdtemp(prefix="maille-bench-portal-")) / "var") as stack:
        gateway = stack.gateway
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # One sign-in first, not counted: Keycloak's and the services' first answers (JIT, caches).
            warm = browser.new_context()
            sign_in(warm.new_page(), gateway, "demo-eleve")
            warm.close()
            took = []
            for _ in range(args.signins):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                took.append(sign_in(context.new_page(), gateway, "demo-eleve"))
                context.close()
            # Downloads the browser made for the first screen, as sent.
            size, names = first_screen_bytes(browser, gateway, "demo-eleve")
            # An inbox of 60 messages: the demo teacher writes to one of their classes; a pupil of it pages.
            teacher = browser.new_context()
            page = teacher.new_page()
            sign_in(page, gateway, "demo-enseignant")
            page.goto(f"{gateway}/classes")
            page.get_by_role("link", name=re.compile("Écrire à la classe")).first.click()
            group = re.search(r"groupe=([^&]+)", page.url).group(1)  # type: ignore[union-attr]
            csrf = next(c["value"] for c in teacher.cookies() if c["name"] == "maille_csrf")
            from urllib.parse import unquote

            for n in range(60):
                answer = teacher.request.post(
                    f"{gateway}/api/messaging/v1/messages",
                    headers={"x-csrf-token": csrf},
                    data={
                        "to": [{"type": "group", "id": unquote(group)}],
                        "subject": f"Message {n}",
                        "body": "<p>…</p>",
                    },
                )
                assert answer.ok, answer.text()
            teacher.close()
            from pymongo import MongoClient

            with MongoClient(stack.docstore) as client:
                pupil = client["maille_identity"]["persons"].find_one(
                    {"kind": "pupil", "classes": unquote(group).removesuffix("/ELV")}
                )
            reader = browser.new_context(viewport={"width": 1280, "height": 900})
            page = reader.new_page()
            page.goto(f"{gateway}/login?idp=educonnect&next=/messagerie")
            page.fill("input[name=username]", pupil["keys"][0])
            page.fill("input[name=password]", "demo")
            page.get_by_role("button", name="Se connecter").click()
            page.get_by_role("link", name="Messages plus anciens").wait_for(timeout=30_000)
            changes = []
            for _ in range(args.pages):
                for link in ("Messages plus anciens", "Premiers messages"):
                    entries = page.get_by_role("list", name="Messages").get_by_role("link")
                    first = entries.first.inner_text()
                    started = time.perf_counter()
                    page.get_by_role("link", name=link).click()
                    expect(entries.first).not_to_have_text(first, timeout=10_000)
                    changes.append(time.perf_counter() - started)
            cookies = "; ".join(
                f"{c['name']}={c['value']}" for c in reader.cookies() if c["name"].startswith("maille_")
            )
            reader.close()
            browser.close()
        scores = {}
        if LIGHTHOUSE.exists():
            out = Path(tempfile.mkdtemp(prefix="maille-lighthouse-"))
            for path in ("/", "/messagerie", "/mediacentre"):
                scores[path] = lighthouse(gateway + path, cookies, out)
        else:
            print(f"Lighthouse not measured: {LIGHTHOUSE} is missing (make bench-tools)")
    ms = sorted(t * 1000 for t in took)
    print(
        f"dashboard painted with its data after the sign-in callback ({args.signins} sign-ins, fresh contexts): "
        f"median {statistics.median(ms):.0f} ms, p90 {pct(ms, 90):.0f} ms (min {ms[0]:.0f}, max {ms[-1]:.0f})"
    )
    print(f"first screen's JS + CSS as sent (gzip): {size / 1024:.1f} KiB ({', '.join(names)})")
    pages = sorted(t * 1000 for t in changes)
    print(
        f"inbox page change ({len(pages)} changes of a 60-message inbox): "
        f"p50 {pct(pages, 50):.0f} ms, p95 {pct(pages, 95):.0f} ms"
    )
    for path, score in scores.items():
        print(f"Lighthouse {path}: " + ", ".join(f"{name} {value}" for name, value in score.items()))
    print(machine())


if __name__ == "__main__":
    main()
