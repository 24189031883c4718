"""The vendor API behind real Keycloak tokens: a vendor publishes, changes, withdraws and lists its own
resources and loads a whole catalogue; another vendor cannot touch them; bad input is refused by name."""

import json

import pytest

from maille_catalog.main import app
from maille_catalog.settings import CatalogSettings
from maille_devstack.pytest_plugin import KeycloakClients, running
from maille_kit.bus import Bus

pytestmark = pytest.mark.keycloak

BASE = "/api/catalog/v1/vendor/resources"
CONCEPT = "http://data.education.fr/voc/scolomfr/concept/scolomfr-voc-010-num-003"


def resource(ark: str = "ark:/12345/manuel-maths-6e", **changes) -> dict:
    return {
        "idRessource": ark,
        "nomRessource": "Maths 6e",
        "nomEditeur": "Éditions du Test",
        "urlVignette": "https://vendor.example/v/maths6.png",
        "urlAccesRessource": "https://vendor.example/maths6",
        "typePresentation": {"code": "MAN", "nom": "manuel numérique"},
        "typePedagogique": [{"uri": CONCEPT, "nom": "cours"}],
        "niveauEducatif": [],
        "typologieDocument": [],
        "domaineEnseignement": [],
        **changes,
    }


@pytest.fixture
async def catalog(nats_server, docstore_server, database_name: str, keycloak_clients: KeycloakClients):
    settings = CatalogSettings(
        nats_url=nats_server.url,
        mongodb_url=docstore_server.url,
        database=database_name,
        auth_issuer=keycloak_clients.issuer,
        bulk_max_bytes=200_000,
    )
    service = app(settings)
    async with running(service) as client:
        yield client, service


def vendor(keycloak_clients: KeycloakClients, *roles: str) -> tuple[str, dict[str, str]]:
    client_id, secret = keycloak_clients.make(roles=roles, audience="maille-catalog")
    return client_id, {"authorization": f"Bearer {keycloak_clients.token(client_id, secret)}"}


async def catalog_events(service) -> list[str]:
    bus: Bus = service.state.runtime.bus
    outbox = service.state.runtime.outbox
    for _ in range(100):
        if await outbox.pending() == 0:
            break
    sub = await bus.js.pull_subscribe("catalog.>", stream="CATALOG")
    types = []
    try:
        while True:
            for message in await sub.fetch(100, timeout=1):
                types.append(message.subject)
                await message.ack()
    except TimeoutError:
        return types


async def test_a_vendor_publishes_changes_and_withdraws_its_resource(
    catalog, keycloak_clients: KeycloakClients
) -> None:
    client, service = catalog
    editor, auth = vendor(keycloak_clients, "vendor")
    created = await client.post(BASE, json=resource(), headers=auth)
    assert created.status_code == 201, created.text
    assert (created.json()["idEditeur"], created.json()["version"], created.json()["statut"]) == (editor, 1, "publiee")
    again = await client.post(BASE, json=resource(), headers=auth)
    assert again.status_code == 409 and "PUT" in again.json()["detail"]
    changed = await client.put(
        f"{BASE}/ark:/12345/manuel-maths-6e", json=resource(nomRessource="Maths 6e (2026)"), headers=auth
    )
    assert (
        changed.status_code == 200
        and changed.json()["version"] == 2
        and changed.json()["nomRessource"] == "Maths 6e (2026)"
    )
    same = await client.put(
        f"{BASE}/ark:/12345/manuel-maths-6e", json=resource(nomRessource="Maths 6e (2026)"), headers=auth
    )
    assert same.json()["version"] == 2  # nothing changed: no new version, no event
    assert (await client.delete(f"{BASE}/ark:/12345/manuel-maths-6e", headers=auth)).status_code == 204
    read = await client.get(f"{BASE}/ark:/12345/manuel-maths-6e", headers=auth)
    assert read.json()["statut"] == "retiree" and read.json()["version"] == 3
    page = (await client.get(BASE, headers=auth)).json()
    assert [r["idRessource"] for r in page["ressources"]] == ["ark:/12345/manuel-maths-6e"] and page["suivant"] is None
    assert await catalog_events(service) == [
        "catalog.resource.published.v1",
        "catalog.resource.updated.v1",
        "catalog.resource.withdrawn.v1",
    ]


async def test_another_vendor_cannot_touch_it_and_others_cannot_publish(
    catalog, keycloak_clients: KeycloakClients
) -> None:
    client, _ = catalog
    _, owner = vendor(keycloak_clients, "vendor")
    _, other = vendor(keycloak_clients, "vendor")
    _, nobody = vendor(keycloak_clients)
    assert (await client.post(BASE, json=resource("ark:/12345/owned"), headers=owner)).status_code == 201
    for answer in (
        await client.put(
            f"{BASE}/ark:/12345/owned", json=resource("ark:/12345/owned", nomRessource="Mine now"), headers=other
        ),
        await client.delete(f"{BASE}/ark:/12345/owned", headers=other),
        await client.get(f"{BASE}/ark:/12345/owned", headers=other),
        await client.post(BASE, json=resource("ark:/12345/owned"), headers=other),
    ):
        assert answer.status_code == 403 and answer.headers["content-type"] == "application/problem+json"
        assert "another vendor" in answer.json()["detail"]
    assert (await client.get(f"{BASE}/ark:/12345/owned", headers=owner)).json()["nomRessource"] == "Maths 6e"
    assert (await client.post(BASE, json=resource("ark:/12345/x"), headers=nobody)).status_code == 403  # no vendor role
    assert (await client.post(BASE, json=resource("ark:/12345/x"))).status_code == 401


@pytest.mark.parametrize(
    "change, field",
    [
        ({"idRessource": "ark:/123/too-short-naan"}, "idRessource"),
        ({"idRessource": "urn:isbn:978"}, "idRessource"),
        ({"urlAccesRessource": "http://vendor.example/plain"}, "urlAccesRessource"),
        ({"typePedagogique": [{"uri": "http://elsewhere.example/c", "nom": "x"}]}, "typePedagogique"),
        ({"typePresentation": {"code": "man", "nom": "x"}}, "typePresentation"),
        ({"nomRessource": ""}, "nomRessource"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
async def test_a_malformed_resource_is_refused_naming_the_field(
    catalog, keycloak_clients: KeycloakClients, change: dict, field: str
) -> None:
    client, _ = catalog
    _, auth = vendor(keycloak_clients, "vendor")
    answer = await client.post(BASE, json=resource(**change), headers=auth)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert field in json.dumps(answer.json())
    assert (await client.get(BASE, headers=auth)).json()["ressources"] == []  # nothing written


async def test_a_whole_catalogue_loads_with_a_report_per_line(catalog, keycloak_clients: KeycloakClients) -> None:
    client, _ = catalog
    _, auth = vendor(keycloak_clients, "vendor")
    assert (await client.post(BASE, json=resource("ark:/12345/a"), headers=auth)).status_code == 201
    items = [
        resource("ark:/12345/a"),
        resource("ark:/12345/b"),
        resource("ark:/1/bad"),
        resource("ark:/12345/b"),
        {"nomRessource": 3},
    ]
    report = (await client.post(f"{BASE}/bulk", json=items, headers=auth)).json()
    assert (report["publiees"], report["misesAJour"], report["inchangees"], report["refusees"]) == (1, 0, 1, 3)
    assert [line["resultat"] for line in report["lignes"]] == ["inchangee", "publiee", "refusee", "refusee", "refusee"]
    assert "idRessource" in report["lignes"][2]["raison"] and "line 2" in report["lignes"][3]["raison"]
    csv = (
        "idRessource;nomRessource;nomEditeur;urlAccesRessource;typePresentation;typePedagogique\n"
        f"ark:/12345/c;Sciences 5e;Éditions du Test;https://vendor.example/sc5;MAN manuel numérique;{CONCEPT} cours\n"
        "ark:/12345/d;Sans URL;Éditions du Test;;MAN manuel numérique;\n"
    )
    report = (
        await client.post(f"{BASE}/bulk", content=csv.encode(), headers={**auth, "content-type": "text/csv"})
    ).json()
    assert [(line["ligne"], line["resultat"]) for line in report["lignes"]] == [(2, "publiee"), (3, "refusee")]
    assert "urlAccesRessource" in report["lignes"][1]["raison"]
    sciences = (await client.get(f"{BASE}/ark:/12345/c", headers=auth)).json()
    assert sciences["typePedagogique"] == [{"uri": CONCEPT, "nom": "cours"}]
    too_big = await client.post(f"{BASE}/bulk", json=[resource(f"ark:/12345/n{i}") for i in range(1000)], headers=auth)
    assert too_big.status_code == 413
    assert (
        await client.post(f"{BASE}/bulk", content=b"{not json", headers={**auth, "content-type": "application/json"})
    ).status_code == 400
    assert (
        await client.post(f"{BASE}/bulk", content=b"x", headers={**auth, "content-type": "text/plain"})
    ).status_code == 415


async def test_a_malformed_ark_in_the_path_is_refused(catalog, keycloak_clients: KeycloakClients) -> None:
    client, _ = catalog
    _, auth = vendor(keycloak_clients, "vendor")
    for answer in (
        await client.get(f"{BASE}/ark:/12/x", headers=auth),
        await client.delete(f"{BASE}/not-an-ark", headers=auth),
    ):
        assert answer.status_code == 422 and "not an ARK" in answer.json()["detail"]


async def test_two_editors_of_one_resource_do_not_overwrite_each_other(
    catalog, keycloak_clients: KeycloakClients
) -> None:
    client, _ = catalog
    _, auth = vendor(keycloak_clients, "vendor")
    ark = "ark:/12345/atlas-5e"
    created = await client.post(BASE, json=resource(ark), headers=auth | {"Idempotency-Key": "atlas-5e-1"})
    retried = await client.post(BASE, json=resource(ark), headers=auth | {"Idempotency-Key": "atlas-5e-1"})
    assert created.status_code == retried.status_code == 201 and retried.headers["idempotent-replayed"] == "true"
    read = await client.get(f"{BASE}/{ark}", headers=auth)
    assert read.headers["etag"] == '"1"'
    # Two people read version 1; the first change wins, the second is told it came too late.
    first = await client.put(
        f"{BASE}/{ark}", json=resource(ark, nomRessource="Atlas 5e"), headers=auth | {"If-Match": read.headers["etag"]}
    )
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    late = await client.put(
        f"{BASE}/{ark}", json=resource(ark, nomRessource="Atlas"), headers=auth | {"If-Match": read.headers["etag"]}
    )
    assert late.status_code == 412 and late.json()["type"] == "/problems/precondition-failed"
    assert late.json()["etag"] == '"2"'
    assert (await client.get(f"{BASE}/{ark}", headers=auth)).json()["nomRessource"] == "Atlas 5e"
    withdrawn_late = await client.delete(f"{BASE}/{ark}", headers=auth | {"If-Match": '"1"'})
    assert withdrawn_late.status_code == 412
    malformed = await client.put(f"{BASE}/{ark}", json=resource(ark), headers=auth | {"If-Match": "version 2"})
    assert malformed.status_code == 422 and "If-Match" in malformed.json()["detail"]
    assert (await client.delete(f"{BASE}/{ark}", headers=auth | {"If-Match": 'W/"2"'})).status_code == 204


async def test_a_vendor_pages_through_its_resources_with_a_cursor(catalog, keycloak_clients: KeycloakClients) -> None:
    client, _ = catalog
    _, auth = vendor(keycloak_clients, "vendor")
    arks = [f"ark:/12345/collection-{n}" for n in range(5)]
    for ark in arks:
        assert (await client.post(BASE, json=resource(ark), headers=auth)).status_code == 201
    seen, params = [], {"limit": 2}
    for _ in range(5):
        page = (await client.get(BASE, params=params, headers=auth)).json()
        seen += [r["idRessource"] for r in page["ressources"]]
        if page["suivant"] is None:
            break
        params = {"limit": 2, "cursor": page["suivant"]}
    assert seen == sorted(arks)  # each once, in order, the last page saying there is no next
    refused = await client.get(BASE, params={"cursor": "pas un curseur"}, headers=auth)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.cursor"
