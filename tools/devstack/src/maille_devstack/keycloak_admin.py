"""What `make run` and the tests set up in the realm `maille` through Keycloak's admin API: the
gateway's redirect addresses, and local users (the demo accounts, test accounts)."""

from __future__ import annotations

from typing import Any

import httpx

from maille_devstack.paths import DEPLOYABLES

# The audiences of Maille's tokens: the gateway's, then each service's own.
AUDIENCES = ("maille", *(f"maille-{name}" for name in DEPLOYABLES if name != "gateway"))


def audience_mappers(audience: str | None = None) -> list[dict]:
    """Protocol mappers putting `audience` (default: the gateway's and every service's) in access tokens."""
    return [
        {
            "name": f"audience {name}",
            "protocol": "openid-connect",
            "protocolMapper": "oidc-audience-mapper",
            "config": {"included.custom.audience": name, "access.token.claim": "true", "id.token.claim": "false"},
        }
        for name in ((audience,) if audience else AUDIENCES)
    ]


def admin_client(keycloak_url: str, user: str, password: str) -> httpx.Client:
    """An admin API client for the realm `maille` (token of the master realm's admin)."""
    token = (
        httpx.post(
            f"{keycloak_url}/realms/master/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "admin-cli", "username": user, "password": password},
            timeout=30,
        )
        .raise_for_status()
        .json()["access_token"]
    )
    return httpx.Client(
        base_url=f"{keycloak_url}/admin/realms/maille", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def enable_user_attributes(admin: httpx.Client) -> None:
    """Let admins write `ent_id` on users (what identity does when it links an account), in a realm that has not
    been reconciled with its declaration (which declares it, admin-only); users never may."""
    profile = admin.get("/users/profile").raise_for_status().json()
    if any(attribute["name"] == "ent_id" for attribute in profile.get("attributes", [])):
        return
    if profile.get("unmanagedAttributePolicy") not in ("ADMIN_EDIT",):
        admin.put("/users/profile", json={**profile, "unmanagedAttributePolicy": "ADMIN_EDIT"}).raise_for_status()


def ensure_user(
    admin: httpx.Client,
    username: str,
    password: str,
    *,
    first: str,
    last: str,
    attributes: dict[str, list[str]] | None = None,
) -> str:
    """Create the user, or put back its password, names and attributes; its id."""
    body = {
        "username": username,
        "enabled": True,
        "firstName": first,
        "lastName": last,
        "email": f"{username}@example.org",
        "emailVerified": True,
        "attributes": attributes or {},
        "requiredActions": [],
    }
    found = admin.get("/users", params={"username": username, "exact": "true"}).raise_for_status().json()
    if found:
        user_id = found[0]["id"]
        admin.put(f"/users/{user_id}", json=body).raise_for_status()
    else:
        admin.post("/users", json=body).raise_for_status()
        user_id = admin.get("/users", params={"username": username, "exact": "true"}).raise_for_status().json()[0]["id"]
    admin.put(
        f"/users/{user_id}/reset-password", json={"type": "password", "value": password, "temporary": False}
    ).raise_for_status()
    return user_id


def gateway_client(
    admin: httpx.Client, client_id: str, secret: str, gateway_url: str, *, token_seconds: int | None = None
) -> None:
    """Create or update a browser sign-in client for a gateway at `gateway_url` (as browsers reach it);
    `token_seconds`: a lifetime of its access tokens other than the realm's."""
    base = gateway_url.rstrip("/")
    body = {
        "clientId": client_id,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "secret": secret,
        "standardFlowEnabled": True,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "redirectUris": [f"{base}/auth/callback"],
        "webOrigins": [base],
        "frontchannelLogout": False,
        "attributes": {
            "pkce.code.challenge.method": "S256",
            "post.logout.redirect.uris": f"{base}/",
            "backchannel.logout.url": f"{base}/auth/backchannel-logout",
            "backchannel.logout.session.required": "true",
            **({"access.token.lifespan": str(token_seconds)} if token_seconds else {}),
        },
        "protocolMappers": [
            *audience_mappers(),
            ent_id_mapper(id_token=True),
        ],
    }
    found = admin.get("/clients", params={"clientId": client_id}).raise_for_status().json()
    if found:
        existing = found[0]
        admin.put(
            f"/clients/{existing['id']}", json={**existing, **{k: v for k, v in body.items() if k != "protocolMappers"}}
        ).raise_for_status()
    else:
        admin.post("/clients", json=body).raise_for_status()


def ent_id_mapper(*, id_token: bool = False) -> dict[str, Any]:
    """The mapper that puts the account's `ent_id` attribute in its access token (and its ID token)."""
    config = {"user.attribute": "ent_id", "claim.name": "ent_id", "jsonType.label": "String"}
    config |= {"access.token.claim": "true", "id.token.claim": "true" if id_token else "false"}
    return {
        "name": "ent_id",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-attribute-mapper",
        "config": config,
    }


def confidential_client(client_id: str, secret: str, mappers: list[dict[str, Any]], **flows: bool) -> dict[str, Any]:
    """A confidential client with no browser flow: its `flows` switched on (`serviceAccountsEnabled=True`,
    `directAccessGrantsEnabled=True`…), its tokens made by `mappers`."""
    body: dict[str, Any] = {"clientId": client_id, "secret": secret, "publicClient": False}
    body |= {"standardFlowEnabled": False, "directAccessGrantsEnabled": False} | flows
    return body | {"protocolMappers": mappers}


def ensure_service_client(
    admin: httpx.Client, client_id: str, secret: str, *, roles: tuple[str, ...] = (), audience: str | None = None
) -> None:
    """Create a confidential client with a service account holding the realm `roles` (made if missing) and the
    audience mappers, or give an existing one `secret`."""
    found = admin.get("/clients", params={"clientId": client_id}).raise_for_status().json()
    if found:
        admin.put(f"/clients/{found[0]['id']}", json={**found[0], "secret": secret}).raise_for_status()
        return
    body = confidential_client(client_id, secret, audience_mappers(audience), serviceAccountsEnabled=True)
    admin.post("/clients", json=body).raise_for_status()
    internal = admin.get("/clients", params={"clientId": client_id}).raise_for_status().json()[0]["id"]
    account = admin.get(f"/clients/{internal}/service-account-user").raise_for_status().json()["id"]
    grant_roles(admin, account, roles)


def grant_roles(admin: httpx.Client, user_id: str, roles: tuple[str, ...]) -> None:
    """Give a user (or a client's service account) the realm `roles`, each made first if missing."""
    for role in roles:
        answer = admin.post("/roles", json={"name": role})
        assert answer.status_code in (201, 409), answer.text
    if roles:
        reps = [admin.get(f"/roles/{role}").raise_for_status().json() for role in roles]
        admin.post(f"/users/{user_id}/role-mappings/realm", json=reps).raise_for_status()
