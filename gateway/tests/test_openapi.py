"""One API document for the platform, and a fuzzing run over it through the gateway: no 5xx."""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from maille_devstack.processes import ServiceProcess
from maille_devstack.pytest_plugin import KeycloakClients

pytestmark = pytest.mark.keycloak
SERVICES = ("identity", "catalog", "messaging", "library", "support", "observatory")


@pytest.fixture
def platform(
    tmp_path: Path, service_factory: Callable[..., ServiceProcess], keycloak_clients: KeycloakClients
) -> ServiceProcess:
    upstreams = {}
    for name in SERVICES:
        prefix = f"MAILLE_{name.upper()}_"
        env = {f"{prefix}AUTH_ISSUER": keycloak_clients.issuer}
        if name == "identity":
            env |= {f"{prefix}IMPORT_DIR": str(tmp_path / "imports"), f"{prefix}GAR_EXPORT_DIR": str(tmp_path / "gar")}
        upstreams[name] = service_factory(name, env=env).url
    return service_factory(
        "gateway",
        env={
            "MAILLE_GATEWAY_ROUTES": json.dumps(upstreams),
            "MAILLE_GATEWAY_AUTH_ISSUER": keycloak_clients.issuer,
            "MAILLE_GATEWAY_RATE_CLIENT": "100000",
        },
    )


def test_the_services_documents_are_merged_into_one(platform: ServiceProcess) -> None:
    document = httpx.get(f"{platform.url}/api/openapi.json").json()
    paths = document["paths"]
    assert "/api/identity/v1/me" in paths and "/api/catalog/v1/about" in paths and "/api/library/v1/about" in paths
    assert not [p for p in paths if not p.startswith("/api/")]  # health routes are not the API
    assert "x-maille-missing" not in document["info"]
    schemas = document["components"]["schemas"]
    assert "identity.About" in schemas and "catalog.About" in schemas  # one per service, no clash
    refs = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.add(value.rsplit("/", 1)[1])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    assert refs and refs <= set(schemas)  # every reference resolves
    docs = httpx.get(f"{platform.url}/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/api/openapi.json" in httpx.get(f"{platform.url}/api/docs/assets/init.js").text


def test_fuzzing_the_whole_api_through_the_gateway_finds_no_server_error(
    platform: ServiceProcess, keycloak_clients: KeycloakClients, tmp_path: Path
) -> None:
    operator = keycloak_clients.token(
        *keycloak_clients.make(roles=("operator", "vendor"))
    )  # every role an API route asks for
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{platform.url}/api/openapi.json",
        "--url",
        platform.url,
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {operator}",
        "--max-examples",
        "10",
        "--max-time",
        "150",
        "--seed",
        "20261125",
        "--workers",
        "1",  # 2 trips a thread-safety bug of Hypothesis 6 (AST recursion depth)
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert run.returncode == 0, run.stdout[-3000:]
    # Every operation of the document was exercised, and none answered a 5xx.
    report = ElementTree.parse(next((tmp_path / "report").glob("junit-*.xml"))).getroot()
    cases = {case.get("name") for case in report.iter("testcase")}
    operations = {
        f"{method.upper()} {path}"
        for path, item in httpx.get(f"{platform.url}/api/openapi.json").json()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations <= cases, operations - cases
    assert report.get("failures") == "0" and report.get("errors") == "0"
