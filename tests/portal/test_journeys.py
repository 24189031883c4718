"""What people do in the portal, in Debian's Chromium on `make run`'s platform, on a desktop and on a 360 px phone:
a teacher writes to a class with a file, pupils of that class read it and answer, open their médiacentre and a
resource, search their CDI and reserve a book; a parent sees their children. axe-core checks every screen."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from .conftest import DESKTOP, PHONE, Stack, axe, new_page, shared_parent, sign_in_educonnect, sign_in_keycloak

pytestmark = pytest.mark.keycloak
SUBJECT = "Sortie au musée jeudi"
FILE = {"name": "autorisation-sortie.txt", "mimeType": "text/plain", "buffer": b"Autorisation de sortie.\n"}
shared: dict[str, str] = {}  # what the teacher's test tells the pupils' (the class written to)


def accessible(page: Page, screen: str) -> None:
    violations = axe(page)
    assert not violations, f"{screen}: {violations}"
    assert not page.csp_errors, f"{screen}: the page's policy refused {page.csp_errors}"  # type: ignore[attr-defined]


def open_section(page: Page, name: str) -> None:
    """Follow the header's link to a section; on a phone, through the menu button first."""
    menu = page.get_by_role("button", name="Menu")
    if menu.is_visible():
        menu.click()
    page.get_by_role("navigation", name="Menu principal").get_by_role("link", name=name).first.click()


def mail_folders(page: Page):
    """The mail's folders; on a phone, unfolded from under their "Dossiers" button first."""
    folders = page.get_by_role("navigation", name="Dossiers de la messagerie")
    button = folders.get_by_role("button", name="Dossiers")
    if button.is_visible() and button.get_attribute("aria-expanded") != "true":
        button.click()
    return folders


def test_a_teacher_writes_to_a_class_with_a_file(chromium, stack: Stack) -> None:
    page = new_page(chromium)
    sign_in_keycloak(page, stack, "demo-enseignant")
    accessible(page, "tableau de bord (enseignant)")
    open_section(page, "Mes classes")
    expect(page.get_by_role("heading", name="Mes classes et groupes")).to_be_visible()
    accessible(page, "mes classes")
    page.get_by_role("link", name=re.compile("Écrire à la classe")).first.click()
    group = parse_qs(urlsplit(page.url).query)["groupe"][0]  # the class's pupils: <UAI>$<class>/ELV
    assert group.endswith("/ELV")
    expect(page.get_by_role("button", name=re.compile("^Retirer "))).to_have_count(1)  # the class, already chosen
    page.get_by_role("textbox", name="Objet", exact=True).fill(SUBJECT)
    page.get_by_role("textbox", name="Message", exact=True).fill(
        "Bonjour à tous,\n\nNous irons au musée jeudi. Merci de rapporter l'autorisation."
    )
    page.set_input_files("#pieces-jointes", files=[FILE])
    attached = page.get_by_role("list", name="Fichiers joints").or_(page.get_by_role("alert"))
    expect(attached).to_be_visible()
    expect(attached).to_contain_text(FILE["name"])  # (an alert would say why the file was refused)
    accessible(page, "écrire un message")
    page.get_by_role("button", name="Envoyer").click()
    page.wait_for_url(re.compile(r"/messagerie(\?.*)?$"))
    expect(page.get_by_role("status").filter(has_text="Message envoyé")).to_be_visible()
    shared["group"] = group.removesuffix("/ELV")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_pupil_reads_answers_and_uses_the_mediacentre_and_the_cdi(chromium, stack: Stack, viewport) -> None:
    assert "group" in shared, "the teacher's message was not sent"
    pupils = list(stack.persons().find({"kind": "pupil", "classes": shared["group"]}).sort("_id").limit(2))
    pupil = pupils[0] if viewport is DESKTOP else pupils[-1]
    page = new_page(chromium, viewport)
    sign_in_educonnect(page, stack, pupil["keys"][0])
    expect(page.get_by_role("heading", name=f"Bonjour {pupil['first_name']}")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Élève de \d"))).to_be_visible()  # "Élève de 6e A au …", in words
    unread = page.get_by_role("link", name=re.compile(r"^\d+ messages? non lus?$"))
    for _ in range(15):  # the class's copies are delivered as the send goes: the dashboard, read again
        if unread.is_visible():
            break
        page.wait_for_timeout(2000)
        page.reload()
        page.get_by_role("heading", name=re.compile("^Bonjour")).wait_for()
    expect(unread).to_be_visible()
    accessible(page, "tableau de bord (élève)")

    # The mail: the teacher's message, its file, an answer.
    unread.click()
    page.get_by_role("link", name=re.compile(SUBJECT)).first.click()
    expect(page.get_by_role("heading", name=SUBJECT)).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(FILE["name"]))).to_be_visible()
    accessible(page, "lire un message")
    # Filed in a folder of their own.
    folders = mail_folders(page)
    folders.get_by_text("Nouveau dossier").click()
    page.get_by_label("Nom du dossier").fill("Sorties")
    page.get_by_role("button", name="Créer").click()
    expect(folders.get_by_role("link", name="Sorties")).to_be_visible()
    page.get_by_label("Déplacer vers").select_option(label="Sorties")
    page.get_by_role("button", name="Déplacer", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Message déplacé")).to_be_visible()
    expect(folders).to_contain_text("Espace des pièces jointes")
    page.get_by_role("link", name="Répondre", exact=True).click()
    expect(page.get_by_role("textbox", name="Objet", exact=True)).to_have_value(f"RE : {SUBJECT}")
    page.get_by_role("textbox", name="Message", exact=True).press("Control+Home")
    page.get_by_role("textbox", name="Message", exact=True).type("Merci, je l'apporte jeudi.")
    page.get_by_role("button", name="Envoyer").click()
    expect(page.get_by_role("status").filter(has_text="Message envoyé")).to_be_visible()

    # The médiacentre: their resources as tiles, one made a favourite, one opened in a new tab.
    open_section(page, "Médiacentre")
    expect(page.get_by_role("status").filter(has_text=re.compile(r"\d+ ressources?"))).to_be_visible(timeout=30_000)
    accessible(page, "médiacentre")
    page.get_by_role("button", name=re.compile("Ajouter aux favoris")).first.click()
    expect(page.get_by_role("button", name=re.compile("Retirer des favoris")).first).to_be_visible()
    tile = page.get_by_role("list", name="Ressources").get_by_role("link").first
    link = tile.get_attribute("href")
    assert link and link.startswith("/api/catalog/v1/mediacentre/ouvrir/")  # counted by the catalog on its way
    asked: list[str] = []
    page.context.on("request", lambda request: asked.append(request.url))
    with page.expect_popup() as opened:
        tile.click()
    opened.value.wait_for_load_state("commit")
    assert any("/domaineGar?" in url for url in asked)  # the new tab went on to the GAR's link

    # The CDI: a search across their schools' catalogues, a reservation.
    open_section(page, "CDI")
    page.get_by_label("Chercher un livre, un auteur, un sujet").fill("Germinal")
    page.get_by_role("button", name="Chercher").click()
    expect(page.get_by_role("status").filter(has_text=re.compile(r"\d+ résultats?"))).to_be_visible(timeout=30_000)
    accessible(page, "CDI")
    page.get_by_role("button", name=re.compile("^Réserver")).first.click()
    expect(page.get_by_role("status").filter(has_text="est réservé")).to_be_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_parent_sees_their_children(chromium, stack: Stack, viewport) -> None:
    page = new_page(chromium, viewport)
    sign_in_keycloak(page, stack, "demo-parent")
    expect(page.get_by_role("heading", name="Mes enfants")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Élève de"))).not_to_have_count(0)
    accessible(page, "tableau de bord (parent)")
    open_section(page, "Mes enfants")
    accessible(page, "mes enfants")
    # Writing to a child's teachers: the class's teachers already chosen, as the rules let a parent write to them.
    page.get_by_role("link", name=re.compile("^Écrire aux enseignants de")).first.click()
    expect(page.get_by_role("button", name=re.compile("^Retirer Enseignants de"))).to_have_count(1)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_parent_switches_between_two_children(chromium, stack: Stack, viewport) -> None:
    parent = next(
        p
        for p in stack.persons().find({"kind": "parent", "children.1": {"$exists": True}}).sort("_id")
        if stack.persons().count_documents({"kind": "parent", "last_name": p["last_name"], "mobile": p["mobile"]}) == 1
    )
    children = {c["_id"]: c for c in stack.persons().find({"_id": {"$in": parent["children"]}})}
    page = new_page(chromium, viewport)
    sign_in_educonnect(page, stack, parent["keys"][0])
    open_section(page, "Mes enfants")
    chooser = page.get_by_role("navigation", name="Choisir un enfant")
    expect(chooser.get_by_role("link")).to_have_count(len(children))
    for child in sorted(children.values(), key=lambda c: c["_id"], reverse=True):  # the second first, then back
        name = f"{child['first_name']} {child['last_name']}"
        chooser.get_by_role("link", name=name).click()
        page.wait_for_url(f"**/enfants/{child['_id']}")
        expect(page.get_by_role("heading", level=2, name=name)).to_be_visible()
        expect(chooser.get_by_role("link", name=name)).to_have_attribute("aria-current", "page")
        expect(page.get_by_text(re.compile(r"^Élève de \d"))).to_be_visible()  # the child's class, in words
        # The child's CDI loans (a parent may read them) and their class's news: read, not refused.
        cdi = page.get_by_role("region", name="Ses prêts au CDI")
        expect(cdi.get_by_text(re.compile(r"^(Aucun prêt en cours\.|.* — à rendre le .*)$")).first).to_be_visible()
        expect(page.get_by_role("region", name="Actualités de la classe").get_by_role("link").last).to_have_text(
            re.compile(r"^Toutes les actualités de la classe ")
        )
        expect(page.get_by_role("alert")).to_have_count(0)
        accessible(page, f"mes enfants ({name})")
    # Writing to that child's teachers: their class's teachers already chosen.
    page.get_by_role("link", name=re.compile("^Écrire aux enseignants de")).first.click()
    expect(page.get_by_role("button", name=re.compile("^Retirer Enseignants de"))).to_have_count(1)


def test_a_parent_with_two_accounts_chooses_one_then_switches(chromium, stack: Stack) -> None:
    first, second = shared_parent(stack)
    schools = {s["_id"]: s["name"] for s in stack.persons().database["structures"].find()}
    child_of = {e["_id"]: stack.persons().find_one({"_id": e["children"][0]})["first_name"] for e in (first, second)}
    page = new_page(chromium, PHONE)
    page.goto(f"{stack.gateway}/login?idp=educonnect&next=/")
    page.fill("input[name=username]", second["keys"][0])
    page.fill("input[name=password]", "demo")
    page.get_by_role("button", name="Se connecter").click()
    # The gateway's question, once: which of the two entries this sign-in is.
    expect(page.get_by_role("heading", name="Choisissez votre compte")).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(2)
    accessible(page, "choix du compte")
    page.get_by_role("radio", name=re.compile(re.escape(schools[first["profiles"][0]["structure"]]))).check()
    page.get_by_role("button", name="Continuer").click()
    expect(page.get_by_role("heading", name="Mes enfants")).to_be_visible()
    expect(page.get_by_text(re.compile(rf"^{child_of[first['_id']]} "))).to_be_visible()

    # Later, from the account page: the other entry, without signing in again.
    page.goto(stack.gateway + "/compte")
    accounts = page.get_by_role("region", name="Mes comptes")
    expect(accounts.get_by_text("Compte utilisé")).to_have_count(1)
    accessible(page, "mon compte (deux comptes)")
    accounts.get_by_role("button", name=re.compile("^Utiliser ce compte")).click()
    page.wait_for_url(stack.gateway + "/")
    expect(page.get_by_text(re.compile(rf"^{child_of[second['_id']]} "))).to_be_visible()
    expect(page.get_by_text(re.compile(rf"^{child_of[first['_id']]} "))).to_have_count(0)
    expect(page).to_have_title(re.compile("Maille"))
    # The switch is remembered: signed in again, no question, the second entry.
    again = new_page(chromium)
    sign_in_educonnect(again, stack, first["keys"][0])
    me = again.request.get(stack.gateway + "/api/identity/v1/me").json()
    assert me["id"] == second["_id"], (me["id"], first["_id"], second["_id"], again.url)
    expect(again.get_by_text(re.compile(rf"^{child_of[second['_id']]} "))).to_be_visible()


def test_signed_out_the_portal_offers_to_sign_in_and_sends_back_where_one_was(chromium, stack: Stack) -> None:
    page = new_page(chromium)
    answer = page.goto(stack.gateway + "/cdi")
    assert answer is not None and answer.headers["cache-control"] == "no-cache"
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    expect(page.get_by_role("button", name="Se connecter")).to_be_visible()
    accessible(page, "accueil hors connexion")
    page.get_by_role("button", name="Se connecter").click()
    page.fill("#username", "demo-eleve")
    page.fill("#password", "demo")
    page.click("#kc-login")
    page.wait_for_url(stack.gateway + "/cdi")  # back where the person was
    expect(page.get_by_role("heading", name="CDI")).to_be_visible()


def test_a_principal_changes_who_may_write_to_whom(chromium, stack: Stack) -> None:
    page = new_page(chromium)
    sign_in_keycloak(page, stack, "demo-direction")
    open_section(page, "Administration")
    expect(page.get_by_role("heading", name="Qui peut écrire à qui")).to_be_visible()
    accessible(page, "administration")
    pupils_to_parents = page.get_by_label("Dans l'établissement : les élèves peuvent écrire aux parents")
    pupils_to_parents.check()
    page.get_by_role("button", name="Enregistrer les règles").click()
    expect(page.get_by_role("status").filter(has_text="Règles enregistrées")).to_be_visible()
    expect(page.get_by_text("L'établissement a ses propres règles.")).to_be_visible()
    page.reload()
    expect(page.get_by_label("Dans l'établissement : les élèves peuvent écrire aux parents")).to_be_checked()
    page.get_by_role("button", name="Revenir aux règles par défaut").click()
    expect(page.get_by_text("L'établissement suit les règles par défaut.")).to_be_visible()
    expect(page.get_by_role("heading", name="Mises à jour de l'annuaire")).to_be_visible()


def test_the_teacher_recalls_the_copies_still_unread(chromium, stack: Stack) -> None:
    page = new_page(chromium)
    sign_in_keycloak(page, stack, "demo-enseignant")
    open_section(page, "Messagerie")
    mail_folders(page).get_by_role("link", name="Envoyés").click()
    page.get_by_role("link", name=SUBJECT, exact=True).first.click()
    page.get_by_role("button", name="Rappeler le message").click()
    recalled = page.get_by_role("status").filter(has_text="reprise")
    expect(recalled).to_be_visible()
    # Two pupils read it (the journeys above): their copies stay; the class's others were taken back.
    assert re.search(r"[1-9]\d* copies? reprises? ; 2 déjà lues", recalled.inner_text()), recalled.inner_text()
