"""docker-compose.yml is valid for `docker compose config` (no engine needed), uses the official images
with pinned versions, and gives each deployable the same variables `make run` does. No engine runs here, so what
can be checked without one is: every part of `make run` is there (the peers, the demo seeding), each has a
healthcheck and waits for what it needs to be healthy, and the seed job runs the devstack's own command."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from maille_devstack.stack import SERVICES, service_env

ROOT = Path(__file__).resolve().parents[1]


def compose_config() -> dict:
    assert shutil.which("docker"), "the docker client is needed (the machine has it; the engine is not needed)"
    answer = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        # The compose plugin is built by `make setup` into the cache (no engine needed for `config`).
        env={
            **os.environ,
            "MONGODB_URL": "",
            "DOCKER_CONFIG": os.environ.get("DOCKER_CONFIG", str(ROOT / ".cache" / "docker")),
        },
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


PEERS = ("educonnect", "academie", "gar", "pmb")
JOBS = ("pki", "seed")  # run once, then exit


def test_compose_is_valid_and_complete() -> None:
    services = compose_config()["services"]
    assert set(services) == {"mongodb", "nats", "keycloak", "mailpit", "gateway", *SERVICES, *PEERS, *JOBS}
    assert services["mongodb"]["image"].startswith("mongo:7.")
    assert services["nats"]["image"].startswith("nats:2.")
    assert "--jetstream" in services["nats"]["command"]
    assert services["keycloak"]["image"].startswith("quay.io/keycloak/keycloak:26.")
    assert "--import-realm" in services["keycloak"]["command"]
    for name, service in services.items():
        assert not service["image"].endswith(":latest") and ":" in service["image"], name


def test_every_part_is_healthchecked_and_waits_for_what_it_needs_healthy() -> None:
    services = compose_config()["services"]
    for name, service in services.items():
        if name in JOBS:
            assert service["restart"] == "no", name
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for needed, how in (service.get("depends_on") or {}).items():
            wanted = "service_completed_successfully" if needed in JOBS else "service_healthy"
            assert how["condition"] == wanted, (name, needed, how)
    # What each waits for: the services their infrastructure; the gateway every service; the seed job everything
    # it talks to; the catalog the GAR (its resource list), the GAR its certificates.
    assert {"nats", "mongodb", "keycloak"} <= set(services["identity"]["depends_on"])
    assert set(SERVICES) <= set(services["gateway"]["depends_on"])
    assert {"identity", "gateway", "library", "pmb", "educonnect", "academie"} <= set(services["seed"]["depends_on"])
    assert "gar" in services["catalog"]["depends_on"] and "pki" in services["gar"]["depends_on"]


def test_the_demo_jobs_and_peers_run_the_devstacks_own_commands() -> None:
    services = compose_config()["services"]
    import tomllib

    from maille_devstack.cli import main as devstack

    assert services["seed"]["command"] == ["maille-devstack", "seed"]
    assert "maille-devstack pki /pki" in " ".join(services["pki"]["command"])
    with pytest.raises(SystemExit) as shown:  # the devstack has both commands
        devstack(["seed", "--help"])
    assert shown.value.code == 0
    # The demo image holds every command its parts run.
    build = services["seed"]["build"]["args"]
    scripts = set()
    for package in build["PACKAGES"].split():
        project = next(
            tomllib.loads(path.read_text())
            for path in ROOT.glob("**/pyproject.toml")
            if ".venv" not in path.parts and ".cache" not in path.parts and f'name = "{package}"' in path.read_text()
        )
        scripts |= set(project["project"].get("scripts", {}))
    for name in (*PEERS, *JOBS):
        assert services[name]["image"] == "maille/demo:0.1.0", name
        assert services[name]["command"][0] in scripts | {"sh"}, name
    assert build["APT_PACKAGES"] == "xmlsec1"
    # The seed job speaks to identity with identity's own settings.
    seeded = {k: v for k, v in services["seed"]["environment"].items() if k.startswith("MAILLE_IDENTITY_")}
    assert seeded == {k: v for k, v in services["identity"]["environment"].items() if k in seeded}
    assert set(seeded) == {k for k in services["identity"]["environment"] if "AUTH_" not in k}


def test_the_pmb_peer_holds_the_demo_directorys_schools(tmp_path: Path) -> None:
    identity = Path(sys.executable).parent / "maille-identity"
    subprocess.run(
        [str(identity), "generate-aaf", str(tmp_path), "--persons", "600", "--schools", "2"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    schools = set()
    for path in tmp_path.glob("*EtabEducNat*.xml"):
        schools |= set(re.findall(r'name="ENTStructureUAI"><value>([0-9A-Z]+)<', path.read_text(encoding="utf-8")))
    databases = compose_config()["services"]["pmb"]["environment"]["PEER_DATABASES"].split(",")
    assert sorted(databases) == sorted(f"cdi{uai}" for uai in schools)


class _Pki:
    client_cert, client_key, ca = "/pki/client.pem", "/pki/client-key.pem", "/pki/ca.pem"


class _Gar:
    """The GAR peer as compose runs it."""

    pki = _Pki()
    url = "http://localhost:8203"
    resources_url = "https://gar:8204"
    entity_id = f"{url}/sp/metadata"
    acs_url = f"{url}/sp/acs"


def test_deployables_get_the_variables_make_run_gives() -> None:
    services = compose_config()["services"]
    peers = {"educonnect": "http://educonnect:8201/idp/metadata", "academie": "http://academie:8202/idp/metadata"}
    for name in (*SERVICES, "gateway"):
        service = services[name]
        assert service["build"]["args"]["DEPLOYABLE"] == name
        assert (ROOT / service["build"].get("dockerfile", "Dockerfile")).exists()
        made = service_env(
            name,
            nats_url="",
            mongodb_url="",
            routes={},
            keycloak_url="http://kc",
            gateway_url="http://gw",
            peers=peers,
            gar=_Gar(),  # type: ignore[arg-type]
            smtp=("mailpit", 1025),
        )
        expected = set(made)
        if name == "gateway":  # inside compose the gateway reaches Keycloak by its service name
            expected.add("MAILLE_GATEWAY_OIDC_BACKCHANNEL_URL")
        assert set(service["environment"]) == expected, name
    identity, catalog = services["identity"]["environment"], services["catalog"]["environment"]
    assert identity["MAILLE_IDENTITY_EDUCONNECT_METADATA_URL"] == peers["educonnect"]
    assert catalog["MAILLE_CATALOG_GAR_URL"] == _Gar.resources_url
    assert catalog["MAILLE_CATALOG_GAR_CLIENT_CERT"] == _Pki.client_cert
    routes = json.loads(services["gateway"]["environment"]["MAILLE_GATEWAY_ROUTES"])
    assert set(routes) == set(SERVICES)


def test_the_image_runs_the_deployable_it_was_built_for() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "${PACKAGES:-maille-$DEPLOYABLE}" in dockerfile and "--package %s" in dockerfile
    assert 'CMD ["python", "-m", "maille_kit.container"]' in dockerfile
    assert "USER 10001" in dockerfile
    assert ":latest" not in dockerfile
    # the entry point as the image runs it: a deployable named, its address and build defaulted
    env = {"PATH": os.environ["PATH"], "MAILLE_DEPLOYABLE": "nothing"}
    command = [sys.executable, "-m", "maille_kit.container"]
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "MAILLE_DEPLOYABLE is 'nothing'" in refused.stderr
    probe = (
        "import os, runpy, maille_kit.container as c;"
        "runpy.run_module = lambda name, **_: print(name, os.environ['MAILLE_LIBRARY_HTTP_HOST'],"
        " os.environ['MAILLE_LIBRARY_HTTP_PORT'], os.environ['MAILLE_LIBRARY_BUILD']);"
        "c.main()"
    )
    env |= {"MAILLE_DEPLOYABLE": "library", "MAILLE_BUILD": "abc123"}
    ran = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert ran.stdout.split() == ["maille_library", "0.0.0.0", "8080", "abc123"], ran.stderr
