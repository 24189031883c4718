"""docker-compose.yml is valid for `docker compose config` (no engine needed), uses the official images
with pinned versions, and gives each deployable the same variables `make run` does."""

import json
import os
import shutil
import subprocess
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
        assert service["build"]["dockerfile"].endswith("Dockerfile")
        assert (ROOT / service["build"]["dockerfile"]).exists()
        expected = set(
            service_env(name, nats_url="", mongodb_url="", routes={}, keycloak_url="http://kc", gateway_url="http://gw")
        )
        if name == "gateway":  # inside compose the gateway reaches Keycloak by its service name
            expected.add("MAILLE_GATEWAY_OIDC_BACKCHANNEL_URL")
        assert set(service["environment"]) == expected, name
    routes = json.loads(services["gateway"]["environment"]["MAILLE_GATEWAY_ROUTES"])
    assert set(routes) == set(SERVICES)


def test_dockerfiles_run_their_deployable() -> None:
    for path, name in [("gateway", "gateway"), ("identity", "identity")] + [(f"services/{s}", s) for s in SERVICES[1:]]:
        dockerfile = (ROOT / path / "Dockerfile").read_text()
        assert f'CMD ["python", "-m", "maille_{name}"]' in dockerfile
        assert f"--package maille-{name}" in dockerfile
        assert "USER 10001" in dockerfile
        assert ":latest" not in dockerfile
