"""docker-compose.yml is valid for `docker compose config` (no engine needed), uses the official images
with pinned versions, and gives each deployable the same variables `make run` does."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_compose_is_valid_and_complete() -> None:
    services = compose_config()["services"]
    assert set(services) == {"mongodb", "nats", "keycloak", "gateway", *SERVICES}
    assert services["mongodb"]["image"].startswith("mongo:7.")
    assert services["nats"]["image"].startswith("nats:2.")
    assert "--jetstream" in services["nats"]["command"]
    assert services["keycloak"]["image"].startswith("quay.io/keycloak/keycloak:26.")
    assert "--import-realm" in services["keycloak"]["command"]
    for name, service in services.items():
        assert not service["image"].endswith(":latest") and ":" in service["image"], name


def test_deployables_get_the_variables_make_run_gives() -> None:
    services = compose_config()["services"]
    for name in (*SERVICES, "gateway"):
        service = services[name]
        assert service["build"]["args"]["DEPLOYABLE"] == name
        assert (ROOT / service["build"].get("dockerfile", "Dockerfile")).exists()
        expected = set(
            service_env(name, nats_url="", mongodb_url="", routes={}, keycloak_url="http://kc", gateway_url="http://gw")
        )
        if name == "gateway":  # inside compose the gateway reaches Keycloak by its service name
            expected.add("MAILLE_GATEWAY_OIDC_BACKCHANNEL_URL")
        assert set(service["environment"]) == expected, name
    routes = json.loads(services["gateway"]["environment"]["MAILLE_GATEWAY_ROUTES"])
    assert set(routes) == set(SERVICES)


def test_the_image_runs_the_deployable_it_was_built_for() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--package maille-$DEPLOYABLE" in dockerfile
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
