"""No way in without a valid token: every operation of the merged OpenAPI document, called through the gateway
with made-up path parameters, queries and bodies — without a token, with a forged one, an expired one, one for
another audience, a session cookie that was never issued — answers 401 and never a 2xx nor a 5xx. (The
schemathesis run with a valid token, no 5xx, is gateway/tests/test_openapi.py.)"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import time
from urllib.parse import quote

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from maille_devstack.processes import ServiceProcess
from maille_devstack.pytest_plugin import KeycloakClients

pytestmark = pytest.mark.keycloak
SERVICES = ("identity", "catalog", "messaging", "library", "support", "observatory")
EXAMPLES = 3  # per operation and kind of credential: bounded, and seeded
PUBLIC = re.compile(r"^/api/[^/]+/v1/about$")


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, keycloak_clients: KeycloakClients, nats_server, docstore_server
) -> str:
    import uuid

    from maille_devstack.processes import free_port

    work = tmp_path_factory.mktemp("fuzz")
    started: list[ServiceProcess] = []
    upstreams = {}
    for name in SERVICES:
        prefix = f"MAILLE_{name.upper()}_"
        env = {
            f"{prefix}NATS_URL": nats_server.url,
            f"{prefix}MONGODB_URL": docstore_server.url,
            f"{prefix}DATABASE": f"test_fuzz_{name}_{uuid.uuid4().hex[:6]}",
            f"{prefix}AUTH_ISSUER": keycloak_clients.issuer,
        }
        if name == "identity":
            env |= {f"{prefix}IMPORT_DIR": str(work / "imports"), f"{prefix}GAR_EXPORT_DIR": str(work / "gar")}
        service = ServiceProcess(name, port=free_port(), env=env, log_dir=work / "log")
        service.start()
        started.append(service)
        upstreams[name] = service.url
    gateway = ServiceProcess(
        "gateway",
        port=free_port(),
        log_dir=work / "log",
        env={
            "MAILLE_GATEWAY_NATS_URL": nats_server.url,
            "MAILLE_GATEWAY_ROUTES": json.dumps(upstreams),
            "MAILLE_GATEWAY_AUTH_ISSUER": keycloak_clients.issuer,
            "MAILLE_GATEWAY_RATE_ANONYMOUS": "100000",
            "MAILLE_GATEWAY_RATE_NEW_TOKENS": "100000",
        },
    )
    gateway.start()
    started.append(gateway)
    yield gateway.url
    for service in reversed(started):
        service.stop()


def _credentials(keycloak_clients: KeycloakClients) -> dict[str, dict[str, str]]:
    """Every way of not having a valid token."""
    issuer = keycloak_clients.issuer
    real = keycloak_clients.token(*keycloak_clients.make(roles=("operator", "vendor")))
    header, payload, signature = real.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    stranger = RSAKey.generate_key(
        2048, parameters={"kid": json.loads(base64.urlsafe_b64decode(header + "==="))["kid"]}
    )
    signed = lambda extra: jwt.encode({"alg": "RS256", "kid": stranger.kid}, {**claims, **extra}, stranger)  # noqa: E731
    tampered = json.dumps({**claims, "realm_access": {"roles": ["operator", "vendor", "gar_resp_aff"]}}).encode()
    return {
        "none": {},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "not bearer": {"Authorization": f"Basic {base64.b64encode(b'admin:admin').decode()}"},
        "signed by a stranger": {"Authorization": f"Bearer {signed({})}"},
        "claims changed": {
            "Authorization": f"Bearer {header}.{base64.urlsafe_b64encode(tampered).rstrip(b'=').decode()}.{signature}"
        },
        "alg none": {
            "Authorization": "Bearer "
            + ".".join(
                [base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode(), payload, ""]
            )
        },
        "expired": {"Authorization": f"Bearer {signed({'exp': int(time.time()) - 3600})}"},
        "another issuer": {"Authorization": f"Bearer {signed({'iss': issuer + '-other'})}"},
        "never issued session": {"Cookie": "maille_session=" + "A" * 43, "X-CSRF-Token": "x"},
    }


def _value(rng: random.Random) -> str:
    return rng.choice(
        [
            "0" * 24,
            "f" * 24,
            "0350001L",
            "x",
            "../../etc/passwd",
            "%00",
            "' OR 1=1",
            "é" * 40,
            "".join(rng.choices(string.printable, k=rng.randint(1, 30))),
        ]
    )


def test_no_operation_answers_without_a_valid_token(gateway: str, keycloak_clients: KeycloakClients) -> None:
    document = httpx.get(f"{gateway}/api/openapi.json").json()
    assert not document["info"].get("x-maille-missing"), document["info"]
    rng = random.Random(20261206)
    credentials = _credentials(keycloak_clients)
    tried, wrong = 0, []
    with httpx.Client(base_url=gateway, timeout=30) as client:
        for path, item in document["paths"].items():
            if PUBLIC.match(path):
                continue
            for method in [m for m in item if m in ("get", "post", "put", "patch", "delete")]:
                for kind, headers in credentials.items():
                    for _ in range(EXAMPLES):
                        url = re.sub(r"\{[^}]+\}", lambda _: quote(_value(rng), safe=""), path)
                        body = {_value(rng): _value(rng) for _ in range(rng.randint(0, 3))}
                        answer = client.request(
                            method.upper(),
                            url,
                            headers=headers,
                            params={"q": _value(rng)},
                            json=body if method != "get" else None,
                        )
                        tried += 1
                        if answer.status_code != 401 and not (answer.status_code in (404, 405) and "/api/" not in url):
                            wrong.append((kind, method.upper(), url, answer.status_code, answer.text[:120]))
    assert tried > 500, tried
    assert not wrong, wrong[:10]
