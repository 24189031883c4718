"""The médiacentre as a teacher in two schools sees it: the catalog's subscriptions that are theirs, the GAR's
list of each school merged in once, filters, search and favourites, links that open the resources — and a
GAR that fails or is slow leaves the rest on the page, with a flag."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from maille_kit.usage import Kind

pytestmark = pytest.mark.keycloak

A, B = "0750001A", "0750002B"
VENDOR = "/api/catalog/v1/vendor"
MEDIACENTRE = "/api/catalog/v1/mediacentre"


async def setup(catalog, h) -> dict[str, str]:
    await catalog.schools(A, B)
    await catalog.persons(
        h.person("prof", (A, "National_ENS"), (B, "National_ENS")),
        h.person("head-b", (B, "National_DIR")),
        h.person("pupil", (A, "National_ELV")),
    )
    await catalog.known("persons", "pupil")
    _, auth = catalog.vendor()
    shared = catalog.gar.of_school(A)[0]["idRessource"]  # also in the catalog: listed once
    for ark, name in (
        ("ark:/12345/maths", "Mathématiques 6e"),
        ("ark:/12345/francais", "Français 5e"),
        ("ark:/12345/eleves", "Pour les élèves"),
        (shared, "Ressource partagée"),
    ):
        assert (
            await catalog.client.post(f"{VENDOR}/resources", json=h.resource(ark, name), headers=auth)
        ).status_code == 201
    for body in (
        h.subscription("ETAB-A", "ark:/12345/maths", [A], publicCible=["ENSEIGNANT"]),
        h.subscription("INDIV-B", "ark:/12345/francais", [B], typeAffectation="INDIV", nbLicenceEnseignant=3),
        h.subscription("ELEVES-A", "ark:/12345/eleves", [A], publicCible=["ELEVE"]),
        h.subscription("SHARED-A", shared, [A], publicCible=["ENSEIGNANT"]),
    ):
        assert (await catalog.client.post(f"{VENDOR}/subscriptions", json=body, headers=auth)).status_code == 201, body
    assigned = await catalog.client.post(
        f"/api/catalog/v1/schools/{B}/subscriptions/INDIV-B/assignments",
        json={"personnes": ["prof"]},
        headers=catalog.as_person("head-b"),
    )
    assert assigned.status_code == 200, assigned.text
    return auth


async def test_a_teacher_in_two_schools_gets_one_merged_mediacentre(catalog, catalog_helpers) -> None:
    h = catalog_helpers
    auth = await setup(catalog, h)
    prof = catalog.as_person("prof")
    page = (await catalog.client.get(MEDIACENTRE, headers=prof)).json()
    by_id = {r["idRessource"]: r for r in page["ressources"]}
    gar_a = {r["idRessource"] for r in catalog.gar.of_school(A)}
    gar_b = {r["idRessource"] for r in catalog.gar.of_school(B)}
    assert set(by_id) == {"ark:/12345/maths", "ark:/12345/francais"} | gar_a | gar_b  # not the pupils' resource
    assert page["total"] == len(by_id) == len(page["ressources"]) and page["gar"] == "ok" and page["garManquant"] == {}
    shared = catalog.gar.of_school(A)[0]["idRessource"]
    assert (
        by_id[shared]["sources"] == ["maille", "gar"]
        and by_id[shared]["lien"] == h.resource(shared)["urlAccesRessource"]
    )
    assert by_id["ark:/12345/francais"]["etablissements"] == [B]
    both = gar_a & gar_b
    for ark in both:
        assert sorted(by_id[ark]["etablissements"]) == [A, B]

    # A GAR resource opens through the GAR, with idENT, idEtab and idSrc in base64.
    ark = sorted(gar_b - gar_a - {shared})[0]
    link = urlsplit(by_id[ark]["lien"])
    query = {k: base64.b64decode(v[0]).decode() for k, v in parse_qs(link.query).items()}
    assert link.path.endswith("/domaineGar") and query == {"idENT": "MAILLE", "idEtab": B, "idSrc": ark}
    assert by_id["ark:/12345/maths"]["lien"] == "https://vendor.example/maths"
    # Opened through the catalog: on to the same link, the opening told to the observatory (vendor, resource).
    uses = catalog.service.state.runtime.uses
    uses.key = b"a-usage-key"
    opened = await catalog.client.get(f"{MEDIACENTRE}/ouvrir/{ark}", headers=prof)
    assert opened.status_code == 303 and opened.headers["location"] == by_id[ark]["lien"]
    told = uses.pending[-1]
    assert told.kind == Kind.KIND_RESOURCE_OPENED and told.resource == ark and told.vendor and told.pseudonym
    missing = await catalog.client.get(f"{MEDIACENTRE}/ouvrir/ark:/12345/eleves", headers=prof)
    assert missing.status_code == 404 and "not in your médiacentre" in missing.json()["detail"]
    assert len(uses.pending) == 1

    # Filters and a search that ignores case and accents; favourites.
    names = lambda answer: sorted(r["nomRessource"] for r in answer.json()["ressources"])  # noqa: E731
    assert (
        names(await catalog.client.get(MEDIACENTRE, params={"q": "MATHEMATIQUES 6E"}, headers=prof))[0]
        == "Mathématiques 6e"
    )
    sixth = (await catalog.client.get(MEDIACENTRE, params={"niveau": "6e"}, headers=prof)).json()["ressources"]
    assert sixth and all(any(n["nom"] == "6e" for n in r["niveauEducatif"]) for r in sixth) and len(sixth) < len(by_id)
    francais = await catalog.client.get(MEDIACENTRE, params={"domaine": "français"}, headers=prof)
    assert francais.json()["total"] == sum(
        1 for r in by_id.values() if any(d["nom"] == "français" for d in r.get("domaineEnseignement", []))
    )
    assert (await catalog.client.put(f"{MEDIACENTRE}/favoris/ark:/12345/maths", headers=prof)).status_code == 204
    assert (await catalog.client.put(f"{MEDIACENTRE}/favoris/ark:/12345/eleves", headers=prof)).status_code == 404
    favourites = (await catalog.client.get(MEDIACENTRE, params={"favoris": "true"}, headers=prof)).json()["ressources"]
    assert [(r["idRessource"], r["favori"]) for r in favourites] == [("ark:/12345/maths", True)]
    assert "catalog.favourite.changed.v1" in await catalog.events("catalog.favourite.")
    assert (await catalog.client.delete(f"{MEDIACENTRE}/favoris/ark:/12345/maths", headers=prof)).status_code == 204
    assert (await catalog.client.get(MEDIACENTRE, params={"favoris": "true"}, headers=prof)).json()["ressources"] == []
    assert (await catalog.client.put(f"{MEDIACENTRE}/favoris/ark:/12345/maths", headers=prof)).status_code == 204

    # The person's list is kept, and follows the catalog's events: a withdrawn resource leaves it.
    asked = len(catalog.gar.asked)
    await catalog.client.get(MEDIACENTRE, headers=prof)
    assert len(catalog.gar.asked) == asked  # from the cache, the GAR not asked again
    # A subscription of another school changes nothing of theirs: their list is kept.
    await catalog.schools("0750003C")
    await catalog.known("schools", "0750003C")
    other = h.subscription("ETAB-C", "ark:/12345/eleves", ["0750003C"])
    assert (await catalog.client.post(f"{VENDOR}/subscriptions", json=other, headers=auth)).status_code == 201
    await catalog.events("catalog.subscription.")  # heard by now
    await catalog.client.get(MEDIACENTRE, headers=prof)
    assert len(catalog.gar.asked) == asked
    assert (await catalog.client.delete(f"{VENDOR}/resources/ark:/12345/maths", headers=auth)).status_code == 204

    async def withdrawn() -> bool:
        answer = (await catalog.client.get(MEDIACENTRE, headers=prof)).json()
        return "ark:/12345/maths" not in {r["idRessource"] for r in answer["ressources"]}

    await h.until(withdrawn, "the withdrawn resource to leave the médiacentre")

    # The pupil sees the pupils' resource and the GAR's list of A only; a vendor's token is no person.
    pupil = (await catalog.client.get(MEDIACENTRE, headers=catalog.as_person("pupil"))).json()
    assert {r["idRessource"] for r in pupil["ressources"]} == {"ark:/12345/eleves"} | gar_a
    refused = await catalog.client.get(MEDIACENTRE, headers=auth)
    assert refused.status_code == 403 and "no person" in refused.json()["detail"]


async def test_a_failing_or_slow_gar_leaves_the_local_resources_with_a_flag(catalog, catalog_helpers) -> None:
    h = catalog_helpers
    await setup(catalog, h)
    catalog.gar.failing = {B}
    page = (await catalog.client.get(MEDIACENTRE, headers=catalog.as_person("prof"))).json()
    assert page["gar"] == "incomplet" and page["garManquant"] == {B: "answered 400: Établissement non trouvé"}
    ids = {r["idRessource"] for r in page["ressources"]}
    assert {"ark:/12345/maths", "ark:/12345/francais"} <= ids and {
        r["idRessource"] for r in catalog.gar.of_school(A)
    } <= ids

    catalog.gar.failing = set()
    catalog.gar.delay = 3.0  # beyond the catalog's 0.5 s
    await catalog.persons(
        h.person("prof", (A, "National_ENS"), (B, "National_ENS")), fact="updated"
    )  # their list is computed again
    await catalog.known("persons", "prof")
    slow_token = catalog.as_person("prof")
    started = time.monotonic()
    answer = await catalog.client.get(MEDIACENTRE, headers=slow_token)
    took = time.monotonic() - started
    assert answer.status_code == 200 and took < 2.0
    body = answer.json()
    assert body["gar"] == "incomplet" and set(body["garManquant"]) <= {A, B}
    assert {"ark:/12345/maths", "ark:/12345/francais"} <= {r["idRessource"] for r in body["ressources"]}
