"""The timeline on `make run`'s whole platform, in Debian's Chromium: a pupil's open page hears of a class's mail
within a second (the bell's count, through the gateway's live stream), the feed leads to the mail; the pupils'
parents get it in the evening's digest through the SMTP server (Mailpit), whose unsubscribe link works without
signing in and stops the next ones. axe-core checks every screen."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from pymongo import MongoClient

from maille_devstack.browser import Browser

from .conftest import PHONE, Stack, axe, new_page, sign_in_educonnect, sign_in_keycloak

pytestmark = pytest.mark.keycloak
SUBJECT = "Conseil de classe du trimestre"


def accessible(page, screen: str) -> None:
    violations = axe(page)
    assert not violations, f"{screen}: {violations}"
    assert not page.csp_errors, f"{screen}: the page's policy refused {page.csp_errors}"


def send_to_class(stack: Stack, group: str, subject: str) -> float:
    """The demo teacher writes to a class's pupils and their parents (the API, as the portal calls it); when the send
    was answered."""
    teacher = Browser()
    teacher.sign_in(teacher.go(f"{stack.gateway}/login?next=/"), "demo-enseignant", "demo")
    csrf = teacher.site_cookies(stack.gateway)["maille_csrf"]
    to = [{"type": "group", "id": f"{group}/ELV"}, {"type": "group", "id": f"{group}/TUT"}]
    sent = teacher.request(
        "POST",
        f"{stack.gateway}/api/messaging/v1/messages",
        headers={"x-csrf-token": csrf},
        json={"to": to, "subject": subject, "body": "<p>Le conseil de classe aura lieu mardi.</p>"},
    )
    assert sent.status_code == 201, sent.text
    return time.monotonic()


def send_digests(stack: Stack) -> str:
    """The evening's digests, sent now: the operator's command, on this platform's docstore and SMTP server."""
    env = {
        **os.environ,
        "MAILLE_TIMELINE_ENVIRONMENT": "development",
        "MAILLE_TIMELINE_MONGODB_URL": stack.docstore,
        "MAILLE_TIMELINE_SMTP_PORT": str(stack.ports.smtp),
        "MAILLE_TIMELINE_PUBLIC_URL": stack.gateway,
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "maille-timeline"), "send-digests"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def mails_to(stack: Stack, address: str) -> list[dict]:
    answer = httpx.get(
        f"http://127.0.0.1:{stack.ports.mailpit}/api/v1/search", params={"query": f"to:{address}"}, timeout=10
    )
    return list(answer.raise_for_status().json()["messages"])


def test_a_parent_chooses_how_to_be_told(chromium, stack: Stack) -> None:
    page = new_page(chromium)
    sign_in_keycloak(page, stack, "demo-parent")
    page.goto(stack.gateway + "/notifications/preferences")
    expect(page.get_by_role("heading", name="Comment être prévenu")).to_be_visible()
    mail = page.get_by_label(re.compile("^Un message reçu dans la messagerie"))
    expect(mail).to_have_value("digest")  # a parent's default: the evening's digest
    accessible(page, "comment être prévenu (parent)")
    mail.select_option("immediate")
    expect(page.get_by_role("status")).to_contain_text("Votre choix est enregistré")
    page.reload()
    expect(page.get_by_label(re.compile("^Un message reçu dans la messagerie"))).to_have_value("immediate")
    expect(page.get_by_text("Votre choix")).to_be_visible()
    # back to the evening's digest (the next journey's parent may be this one)
    page.get_by_label(re.compile("^Un message reçu dans la messagerie")).select_option("digest")
    expect(page.get_by_role("status")).to_contain_text("Votre choix est enregistré")


def test_a_class_mail_rings_the_bell_live_and_reaches_the_parents_digest(chromium, stack: Stack) -> None:
    pupil = stack.persons().find_one({"kind": "pupil", "keys.0": {"$exists": True}, "classes.0": {"$exists": True}})
    group = pupil["classes"][0]
    timeline = MongoClient(stack.docstore, serverSelectionTimeoutMS=5000)["maille_timeline"]
    parent = timeline["persons"].find_one({"children": pupil["_id"], "emails.0": {"$exists": True}})
    assert parent is not None, "the demo pupil's parent has an e-mail address in the directory"

    # The pupil's page is open, on a phone; the teacher writes to the class.
    page = new_page(chromium, PHONE)
    sign_in_educonnect(page, stack, pupil["keys"][0])
    bell = page.get_by_role("link", name=re.compile("^Notifications"))
    badge = page.get_by_test_id("non-lues")  # (twice: the header's and the phone menu's copy of the bell)
    expect(badge).to_have_count(0)
    page.wait_for_timeout(1000)  # the stream is open (the page opened it as it loaded)
    sent = send_to_class(stack, group, SUBJECT)
    expect(badge.first).to_contain_text("1", timeout=10_000)
    heard = time.monotonic() - sent
    assert heard <= 1.0, f"the bell rang {heard:.2f} s after the send"

    # The bell leads to the feed, the feed to the mail; read, the count goes.
    menu = page.get_by_role("button", name="Menu")
    if not bell.is_visible() and menu.is_visible():
        menu.click()
    bell.first.click()
    expect(page.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
    item = page.get_by_role("link", name=re.compile(r"^Nouveau message de .*\(non lue\)$"))
    expect(item).to_be_visible()
    expect(page.get_by_text(f"« {SUBJECT} »")).to_be_visible()
    accessible(page, "notifications (élève)")
    item.click()
    expect(page.get_by_role("heading", name=SUBJECT)).to_be_visible()
    expect(badge).to_have_count(0)

    # The parent is told in the evening's digest, in French, with a link that stops them without signing in.
    assert re.search(r"digests: sent [1-9]", send_digests(stack))
    [mail] = mails_to(stack, parent["emails"][0])
    assert mail["Subject"] == "Maille : 1 nouveauté pour vous aujourd'hui"
    text = httpx.get(f"http://127.0.0.1:{stack.ports.mailpit}/api/v1/message/{mail['ID']}", timeout=10).json()["Text"]
    assert SUBJECT in text
    link = re.search(r"(http\S+/desabonnement\?jeton=\S+)", text).group(1)
    stranger = new_page(chromium)  # a browser nobody signed in to
    stranger.goto(link)
    expect(stranger.get_by_role("heading", name="Ne plus recevoir d'e-mails de l'ENT")).to_be_visible()
    expect(stranger.get_by_text("Ce lien arrête tous les e-mails de l'ENT")).to_be_visible()
    accessible(stranger, "désabonnement")
    stranger.get_by_role("button", name="Confirmer").click()
    expect(stranger.get_by_role("status")).to_contain_text("C'est fait")
    send_to_class(stack, group, "Une autre nouvelle")
    for _ in range(20):  # the new mail in the parent's feed, then the digests
        if timeline["feeds"].count_documents({"person": parent["_id"]}) and timeline["notes"].count_documents(
            {"text": "« Une autre nouvelle »"}
        ):
            break
        time.sleep(0.5)
    time.sleep(1)
    send_digests(stack)
    assert len(mails_to(stack, parent["emails"][0])) == 1  # nothing more since the link was followed


PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def test_a_teacher_publishes_news_to_a_classs_parents_and_sees_who_read_it(chromium, stack: Stack) -> None:
    teacher = new_page(chromium)
    sign_in_keycloak(teacher, stack, "demo-enseignant")
    teacher.goto(stack.gateway + "/actualites")
    teacher.get_by_role("link", name="Publier une actualité").click()
    expect(teacher.get_by_role("heading", name="Publier une actualité")).to_be_visible()
    where = teacher.get_by_label("Où publier")
    where.select_option(label="Classe ou groupe 6e A")
    teacher.locator("label[for=pour-National_TUT]").click()  # (DSFR draws the box over the hidden input)
    expect(teacher.get_by_label("Les parents")).to_be_checked()
    teacher.get_by_label("Titre").fill("Sortie scolaire au planétarium")
    teacher.get_by_label(re.compile("^Texte")).fill("La classe ira au planétarium vendredi.\n\nPrévoir un pique-nique.")
    teacher.set_input_files("#fichiers", files=[{"name": "affiche.png", "mimeType": "image/png", "buffer": PNG}])
    accessible(teacher, "publier une actualité")
    teacher.get_by_role("button", name="Publier").click()
    expect(teacher.get_by_role("heading", name="Sortie scolaire au planétarium")).to_be_visible()
    expect(teacher.get_by_text(re.compile(r"^Lue par 0 % des parents \(0 sur [1-9]\d*\)$"))).to_be_visible()
    accessible(teacher, "une actualité (auteur)")

    # A parent of the class: told (the bell), reads it on a phone with its image.
    timeline = MongoClient(stack.docstore, serverSelectionTimeoutMS=5000)["maille_timeline"]
    item = timeline["news"].find_one({"title": "Sortie scolaire au planétarium"})
    assert item["state"] == "published" and list(item["reached"]) == ["National_TUT"]
    parent_id = item["reached"]["National_TUT"][0]
    parent = stack.persons().find_one({"_id": parent_id})
    page = new_page(chromium, PHONE)
    sign_in_educonnect(page, stack, parent["keys"][0])
    expect(page.get_by_test_id("non-lues").first).not_to_have_count(0)
    page.goto(stack.gateway + "/actualites")
    expect(page.get_by_role("heading", name="Actualités", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Pages d'actualités").get_by_role("link", name=re.compile("6e A")).click()
    page.get_by_role("link", name="Sortie scolaire au planétarium").click()
    expect(page.get_by_role("heading", name="Sortie scolaire au planétarium")).to_be_visible()
    expect(page.get_by_text("Prévoir un pique-nique.")).to_be_visible()
    expect(page.get_by_role("img", name="affiche.png")).to_be_visible()
    accessible(page, "une actualité (parent)")

    teacher.reload()
    expect(teacher.get_by_text(re.compile(r"^Lue par \d+ % des parents \(1 sur [1-9]\d*\)$"))).to_be_visible()
