"""Operator routes behind real Keycloak tokens: the right client gets through, nobody else does."""

from pathlib import Path

import httpx
import pytest
from nats.js.errors import NotFoundError

from maille_contracts import IMPORT_REPORTED
from maille_devstack.pytest_plugin import KeycloakClients, running
from maille_identity.main import app
from maille_identity.settings import IdentitySettings
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.events import decode
from maille_kit.outbox import Outbox

from ..directory.test_import import feed, pupil, run_import, school, uai_for

pytestmark = pytest.mark.keycloak


@pytest.fixture
async def identity(
    tmp_path: Path,
    docstore: Docstore,
    outbox: Outbox,
    settings: IdentitySettings,
):
    folder = tmp_path / "feed"
    feed(folder, "EtabEducNat", school("S1", uai_for(1)))
    feed(folder, "Eleve", pupil("E1", "S1", sn="Dupont"))
    await run_import(docstore, outbox, folder)
    person = await docstore.db.persons.find_one({})
    async with running(app(settings)) as client:
        yield client, person["_id"]


async def test_an_operator_exports_and_erases(identity, keycloak_clients: KeycloakClients, docstore: Docstore) -> None:
    client, person_id = identity
    token = keycloak_clients.token(*keycloak_clients.make(roles=("operator",)))
    headers = {"Authorization": f"Bearer {token}"}
    exported = await client.get(f"/api/identity/v1/operator/persons/{person_id}/export", headers=headers)
    assert exported.status_code == 200 and exported.json()["person"]["last_name"] == "Dupont"
    erased = await client.delete(f"/api/identity/v1/operator/persons/{person_id}", headers=headers)
    assert erased.status_code == 204
    assert await docstore.db.persons.find_one({"_id": person_id}) is None
    again = await client.delete(f"/api/identity/v1/operator/persons/{person_id}", headers=headers)
    assert again.status_code == 404 and again.headers["content-type"] == "application/problem+json"


async def test_nobody_else_gets_through(identity, keycloak_clients: KeycloakClients) -> None:
    client, person_id = identity
    url = f"/api/identity/v1/operator/persons/{person_id}/export"

    async def status(headers: dict[str, str]) -> httpx.Response:
        return await client.get(url, headers=headers)

    missing = await status({})
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.headers["content-type"] == "application/problem+json"
    no_role = keycloak_clients.token(*keycloak_clients.make())
    assert (await status({"Authorization": f"Bearer {no_role}"})).status_code == 403
    other_audience = keycloak_clients.token(*keycloak_clients.make(roles=("operator",), audience="someone-else"))
    wrong = await status({"Authorization": f"Bearer {other_audience}"})
    assert wrong.status_code == 401 and "not meant for 'maille-identity'" in wrong.json()["detail"]
    good = keycloak_clients.token(*keycloak_clients.make(roles=("operator",)))
    head, payload, signature = good.split(".")
    tampered = await status({"Authorization": f"Bearer {head}.{payload}.{signature[:-4]}AAAA"})
    assert tampered.status_code == 401 and "signature" in tampered.json()["detail"]
    assert (await status({"Authorization": "Bearer not-a-token"})).status_code == 401
    malformed_id = await client.get(
        "/api/identity/v1/operator/persons/not-an-id/export", headers={"Authorization": f"Bearer {good}"}
    )
    assert malformed_id.status_code == 422 and malformed_id.headers["content-type"] == "application/problem+json"


async def test_an_operator_imports_a_delivery_through_the_api(
    identity, keycloak_clients: KeycloakClients, tmp_path: Path, docstore: Docstore, bus: Bus
) -> None:
    import asyncio
    import tarfile

    from maille_identity.directory.synthetic import generate

    client, _ = identity
    headers = {"Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=('operator',)))}"}
    counts = generate(tmp_path / "delivery", persons=1500, schools=2)
    archive = tmp_path / "aaf.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted((tmp_path / "delivery").iterdir()):
            tar.add(path, arcname=path.name)
    url = "/api/identity/v1/operator/imports"
    started = await client.post(url, params={"filename": "aaf.tar.gz"}, content=archive.read_bytes(), headers=headers)
    assert started.status_code == 202, started.text
    job = started.json()
    busy = await client.post(url, params={"filename": "aaf.tar.gz"}, content=archive.read_bytes(), headers=headers)
    assert busy.status_code == 409 and job["id"] in busy.json()["detail"]  # one import of a tenant at a time
    for _ in range(600):
        job = (await client.get(job["links"]["self"], headers=headers)).json()
        if job["state"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    assert job["state"] == "done", job
    assert job["summary"]["created"] >= counts["pupils"] + counts["parents"] + counts["staff"]
    assert job["summary"]["rejected"] == 0
    assert await docstore.db.persons.count_documents({"kind": "pupil"}) == counts["pupils"] + 1  # + the fixture's own
    report = await client.get(job["links"]["report"], headers=headers)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/plain")
    # The report is told (the platform's admins are notified), with the job's end: one unit of work.
    for _ in range(100):
        try:
            told = decode((await bus.js.get_last_msg("IDENTITY", IMPORT_REPORTED)).data)
            break
        except NotFoundError:
            await asyncio.sleep(0.1)
    reported = told.unpack(IMPORT_REPORTED.message)
    assert reported.job_id == job["id"] and reported.state == "done" and reported.file == "aaf.tar.gz"
    assert reported.created == job["summary"]["created"] and reported.rejected == 0


async def test_bad_uploads_are_refused_clearly(identity, keycloak_clients: KeycloakClients) -> None:
    client, _ = identity
    headers = {"Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=('operator',)))}"}
    url = "/api/identity/v1/operator/imports"
    wrong_name = await client.post(url, params={"filename": "passwords.txt"}, content=b"x", headers=headers)
    assert wrong_name.status_code == 422 and "passwords.txt" in wrong_name.json()["detail"]
    empty = await client.post(url, params={"filename": "ENT_1_Delta_Eleve_0001.xml"}, content=b"", headers=headers)
    assert empty.status_code == 400 and "empty" in empty.json()["detail"]
    assert (await client.post(url, params={"filename": "aaf.tar.gz"}, content=b"x")).status_code == 401
    unknown = await client.get(f"{url}/0123456789abcdef", headers=headers)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"


async def test_tenants_are_declared_with_their_gar_ident(identity, keycloak_clients: KeycloakClients) -> None:
    client, _ = identity
    headers = {"Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=('operator',)))}"}
    body = {"name": "Région Bretagne", "kind": "collectivite", "gar_id_ent": "ENT-BZH"}
    assert (
        await client.put("/api/identity/v1/operator/tenants/region-bretagne", json=body, headers=headers)
    ).status_code == 200
    listed = (await client.get("/api/identity/v1/operator/tenants", headers=headers)).json()
    assert {"id": "region-bretagne", **body} in listed
    bad = await client.put(
        "/api/identity/v1/operator/tenants/region-bretagne", json={**body, "kind": "mairie"}, headers=headers
    )
    assert bad.status_code == 422 and "kind" in bad.text


async def test_an_operator_runs_the_gar_export_and_reads_its_runs(identity, keycloak_clients: KeycloakClients) -> None:
    import asyncio

    client, _ = identity
    headers = {"Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=('operator',)))}"}
    url = "/api/identity/v1/operator/gar/exports"
    assert (await client.get(url, headers=headers)).json() == []
    started = await client.post(url, headers=headers)
    assert started.status_code == 202 and started.json()["outcome"] == "running", started.text
    run = started.json()
    for _ in range(300):
        runs = (await client.get(url, headers=headers)).json()
        if runs and runs[0]["outcome"] != "running":
            break
        await asyncio.sleep(0.1)
    assert [r["id"] for r in runs] == [run["id"]] and run["id"].startswith("operator-")
    done = runs[0]
    assert done["outcome"] == "done" and done["trigger"] == "operator" and done["files"] >= 1, done
    assert done["records"] and done["md5"] and done["archive"].endswith(".tar.gz") and done["pushed"] is False
    # Only operators read them or start one.
    nobody = {"Authorization": f"Bearer {keycloak_clients.token(*keycloak_clients.make(roles=()))}"}
    assert (await client.get(url, headers=nobody)).status_code == 403
    assert (await client.post(url, headers=nobody)).status_code == 403
