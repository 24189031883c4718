"""Bearer tokens at the gateway: validated in full, refused with a clear 401 otherwise, keys followed
as the issuer rotates them — and a service reached without the gateway still refuses a request
without a valid token."""

import base64
import json
import time
from collections.abc import Callable

import httpx
import pytest

from maille_devstack.processes import ServiceProcess
from maille_devstack.pytest_plugin import KeycloakClients

from .conftest import Echo, Issuer


def get(gateway: ServiceProcess, path: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.get(f"{gateway.url}{path}", headers=headers, timeout=10)


def test_a_valid_token_reaches_the_service_which_gets_it_to_verify(gateway, issuer: Issuer) -> None:
    gw = gateway({"FORWARDED_ALLOW_IPS": "10.0.0.1"})  # only the ingress's X-Forwarded-For is believed
    token = issuer.token()
    answer = get(
        gw, "/api/echo/v1/things?x=1", token, cookie="maille_session=abc; other=1", **{"x-forwarded-for": "6.6.6.6"}
    )
    assert answer.status_code == 200
    seen = answer.json()
    assert seen["path"] == "/api/echo/v1/things?x=1"
    assert seen["headers"]["authorization"] == f"Bearer {token}"
    assert "cookie" not in seen["headers"]  # the session cookie is the gateway's business
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"  # the caller's address, not what it claimed
    assert len(seen["headers"]["x-request-id"]) == 32 == len(answer.headers["x-request-id"])
    assert seen["headers"]["traceparent"].startswith("00-")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("expired", "expired"),
        ("not_yet_valid", "not valid"),
        ("wrong_audience", "not meant for 'maille'"),
        ("wrong_issuer", "not valid here"),
        ("tampered", "signature"),
        ("unsigned", "malformed"),
        ("garbage", "malformed"),
    ],
)
def test_bad_tokens_are_refused_with_401(gateway, issuer: Issuer, case: str, expected: str) -> None:
    gw = gateway()
    token = {
        "expired": lambda: issuer.token(lifetime=-120),  # beyond the 30 s leeway
        "not_yet_valid": lambda: issuer.token(not_before=300),
        "wrong_audience": lambda: issuer.token(audience="someone-else"),
        "wrong_issuer": lambda: issuer.token(issuer="http://elsewhere.invalid/realms/test"),
        "tampered": lambda: tamper(issuer.token(), roles=["operator"]),
        "unsigned": lambda: unsigned(issuer.token()),
        "garbage": lambda: "not.a.token",
    }[case]()
    answer = get(gw, "/api/echo/v1/things", token)
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert expected in answer.json()["detail"]


def test_no_token_or_a_wrong_scheme_is_401(gateway) -> None:
    gw = gateway()
    assert get(gw, "/api/echo/v1/things").status_code == 401
    answer = get(gw, "/api/echo/v1/things", authorization="Basic dXNlcjpwYXNz")
    assert answer.status_code == 401 and "Bearer <token>" in answer.json()["detail"]
    # Public paths need no token.
    assert get(gw, "/api/echo/v1/about").status_code == 200


def test_key_rotation_is_followed_without_a_restart(gateway, issuer: Issuer) -> None:
    gw = gateway()
    old = issuer.token(subject="a")
    assert get(gw, "/api/echo/v1/x", old).status_code == 200
    issuer.rotate()
    fresh = issuer.token(subject="b")  # signed with key-2, which the gateway has not seen yet
    assert get(gw, "/api/echo/v1/x", fresh).status_code == 200
    # A withdrawn key signs nothing any more: a token of it not seen before is refused.
    issuer.rotate(withdraw_old=True)
    stale = issuer.token(key=None, subject="c")  # key-3: fine
    assert get(gw, "/api/echo/v1/x", stale).status_code == 200
    from joserfc.jwk import RSAKey

    withdrawn = RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})
    assert get(gw, "/api/echo/v1/x", issuer.token(key=withdrawn, subject="d")).status_code == 401


def test_roles_and_scopes_guard_route_prefixes(gateway, issuer: Issuer) -> None:
    gw = gateway(policies=json.dumps({"/api/echo/v1/vendor/": {"roles": ["vendor"], "scopes": ["catalog.vendor"]}}))
    refused = get(gw, "/api/echo/v1/vendor/resources", issuer.token())
    assert refused.status_code == 403 and "role vendor" in refused.json()["detail"]
    assert get(gw, "/api/echo/v1/vendor/resources", issuer.token(roles=("vendor",), subject="v")).status_code == 200
    assert (
        get(gw, "/api/echo/v1/vendor/resources", issuer.token(subject="s", scope="openid catalog.vendor")).status_code
        == 200
    )
    assert get(gw, "/api/echo/v1/elsewhere", issuer.token()).status_code == 200


@pytest.mark.keycloak
def test_keycloak_tokens_and_a_real_key_rotation(
    service_factory: Callable[..., ServiceProcess], echo: Echo, keycloak_clients: KeycloakClients
) -> None:
    gw = service_factory(
        "gateway",
        env={
            "MAILLE_GATEWAY_ROUTES": json.dumps({"echo": echo.url}),
            "MAILLE_GATEWAY_AUTH_ISSUER": keycloak_clients.issuer,
        },
    )
    client = keycloak_clients.make(roles=("vendor",))
    first = keycloak_clients.token(*client)
    assert get(gw, "/api/echo/v1/x", first).status_code == 200
    # A token of another audience, and one of another realm (issuer), are refused.
    other = keycloak_clients.make(audience="not-maille")
    assert get(gw, "/api/echo/v1/x", keycloak_clients.token(*other)).status_code == 401
    master = httpx.post(
        f"{keycloak_clients.server.url}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": keycloak_clients.server.admin_user,
            "password": keycloak_clients.server.admin_password,
        },
    ).json()["access_token"]
    assert get(gw, "/api/echo/v1/x", master).status_code == 401
    # The realm gets a new signing key of higher priority: new tokens carry its kid; the gateway follows.
    with keycloak_clients._admin() as admin:
        realm_id = admin.get("").raise_for_status().json()["id"]
        admin.post(
            "/components",
            json={
                "name": f"rotated-{time.time_ns()}",
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm_id,
                "config": {"priority": [str(1000 + time.time_ns() % 1000)], "keySize": ["2048"]},
            },
        ).raise_for_status()
    second = keycloak_clients.token(*client)
    assert kid(second) != kid(first)
    assert get(gw, "/api/echo/v1/x", second).status_code == 200


def test_a_service_reached_directly_refuses_a_request_without_a_valid_token(
    service_factory: Callable[..., ServiceProcess], issuer: Issuer
) -> None:
    identity = service_factory(
        "identity", env={"MAILLE_IDENTITY_AUTH_ISSUER": issuer.issuer, "MAILLE_IDENTITY_AUTH_JWKS_URL": issuer.jwks_url}
    )
    me = f"{identity.url}/api/identity/v1/me"
    # No token, a header claiming an identity, a token of another issuer: all refused by the service itself.
    assert httpx.get(me).status_code == 401
    assert httpx.get(me, headers={"x-user": "someone", "x-forwarded-user": "someone"}).status_code == 401
    foreign = issuer.token(issuer="http://elsewhere.invalid/realms/test", ent_id="x")
    assert httpx.get(me, headers={"authorization": f"Bearer {foreign}"}).status_code == 401
    assert (
        httpx.get(me, headers={"authorization": f"Bearer {tamper(issuer.token(ent_id='x'), ent_id='y')}"}).status_code
        == 401
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def tamper(token: str, **changes: object) -> str:
    """The token with its claims changed and its signature kept (as an attacker would)."""
    header, _, signature = token.split(".")
    claims = _claims(token)
    if "roles" in changes:
        claims["realm_access"] = {"roles": changes.pop("roles")}
    claims.update(changes)
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def unsigned(token: str) -> str:
    """The same claims with `alg: none` and no signature."""
    return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{token.split('.')[1]}."


def kid(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
