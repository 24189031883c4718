"""API clients as code: a vendor or a partner system gets a Keycloak client of its own — confidential, service
account only (client credentials), the realm roles and token audiences its kind needs — made, listed, rotated and
withdrawn by operators (`/api/identity/v1/clients`, `maille-identity clients …`), never by hand in the console.

What each kind may do is written once, here (`KINDS`): a **vendor** publishes its resources and reads its
subscriptions through the catalog's vendor API; an **operator** system (the académie's or a collectivité's
information system) calls the operators' APIs of every service.

The secret is Keycloak's, shown once (at creation and at each rotation) and never kept by Maille. A rotation
leaves the old secret valid for a grace period (`MAILLE_IDENTITY_API_CLIENT_GRACE_SECONDS`), so that the vendor
can deploy the new one without a cut: Keycloak's client secret rotation (its feature `client-secret-rotation`, a
*preview* feature of Keycloak 26), applied by a client policy to the clients marked with the attribute
`maille.api-client`. With a grace period of 0 the policy is not made and the feature not needed: a rotation then
ends the old secret at once. The last use of each
client is Keycloak's record of its last token (its `CLIENT_LOGIN` events, the only event type the realm keeps).

The clients are part of the realm's declaration: `sync-keycloak` puts back what was changed by hand in one of
them (flags, audiences), like every other part of the realm.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keycloak.exceptions import KeycloakError

from maille_identity.federation.keycloak import REALM, KeycloakUnavailable, Reconciler
from maille_kit.docstore import Docstore

log = logging.getLogger("maille.identity.clients")

Doc = dict[str, Any]
CLIENTS = "api_clients"
ATTRIBUTE = "maille.api-client"
POLICY = "maille-api-clients"
SERVICES = ("identity", "catalog", "messaging", "library", "timeline", "support", "observatory")


@dataclass(frozen=True)
class Kind:
    """What a kind of API client may do: its realm roles and the audiences its tokens name."""

    roles: tuple[str, ...]
    audiences: tuple[str, ...]
    what: str


KINDS = {
    "vendor": Kind(
        roles=("vendor",),
        audiences=("maille", "maille-catalog"),
        what="a resource vendor: publishes its resources and reads its subscriptions (the catalog's vendor API)",
    ),
    "operator": Kind(
        roles=("operator",),
        audiences=("maille", *(f"maille-{service}" for service in SERVICES)),
        what="a partner system (the académie's or a collectivité's): the operators' APIs of every service",
    ),
}


def keycloak_client(doc: Doc) -> Doc:
    """The Keycloak client of an API client, as declared (Keycloak makes and keeps its secret)."""
    kind = KINDS[doc["kind"]]
    return {
        "clientId": doc["_id"],
        "name": doc["name"],
        "description": f"Maille API client ({doc['kind']}): {kind.what}",
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": False,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": True,
        "frontchannelLogout": False,
        "attributes": {ATTRIBUTE: "true", f"{ATTRIBUTE}-kind": doc["kind"]},
        "protocolMappers": [
            {
                "name": f"audience {audience}",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {
                    "included.custom.audience": audience,
                    "access.token.claim": "true",
                    "id.token.claim": "false",
                },
            }
            for audience in kind.audiences
        ],
    }


def rotation_policy(grace_seconds: int) -> tuple[Doc, Doc]:
    """The client profile (secret rotation: the old secret valid `grace_seconds` more) and the policy applying it to
    the API clients."""
    profile = {
        "name": POLICY,
        "description": "Maille's API clients: a rotated secret stays valid for the grace period",
        "executors": [
            {
                "executor": "secret-rotation",
                "configuration": {
                    "expiration-period": str(10 * 365 * 86400),  # Maille rotates on demand, not on a clock
                    "rotated-expiration-period": str(grace_seconds),
                    "remaining-rotation-period": str(min(grace_seconds, 86400)),
                },
            }
        ],
    }
    policy = {
        "name": POLICY,
        "description": "Maille's API clients (attribute maille.api-client)",
        "enabled": True,
        "conditions": [
            {
                "condition": "client-attributes",
                "configuration": {"attributes": json.dumps([{"key": ATTRIBUTE, "value": "true"}])},
            }
        ],
        "profiles": [POLICY],
    }
    return profile, policy


class ApiClients:
    """The API clients: kept in identity's database (who, what kind, when made and rotated), made in Keycloak."""

    def __init__(self, docstore: Docstore, keycloak: Reconciler, *, grace_seconds: int, token_url: str) -> None:
        self.docstore = docstore
        self.token_url = token_url  # where the clients get their tokens (the issuer's, as they reach it)
        self.collection = docstore.db[CLIENTS]
        self.keycloak = keycloak
        self.grace_seconds = grace_seconds

    async def declared(self) -> list[Doc]:
        """Their Keycloak clients, for the realm's declaration."""
        return [keycloak_client(doc) for doc in await self.collection.find({}).sort("_id", 1).to_list()]

    async def get(self, client_id: str) -> Doc | None:
        return await self.collection.find_one({"_id": client_id})

    async def create(self, client_id: str, *, kind: str, name: str, by: str) -> tuple[Doc, str]:
        """A new API client: made in Keycloak (its roles given), then kept; its secret (shown once)."""
        now = datetime.now(UTC)
        doc = {"_id": client_id, "kind": kind, "name": name, "created_at": now, "created_by": by, "rotated_at": None}
        await self._policy()
        try:
            await self.keycloak.reconcile({"clients": [keycloak_client(doc)]})
            internal = await self._internal(client_id)
            account = await self.keycloak.admin.a_get_client_service_account_user(internal)
            roles = [await self.keycloak.admin.a_get_realm_role(role) for role in KINDS[kind].roles]
            await self.keycloak.admin.a_assign_realm_roles(account["id"], roles)
            secret = (await self.keycloak.admin.a_get_client_secrets(internal))["value"]
        except (KeycloakError, OSError) as exc:
            raise KeycloakUnavailable(f"Keycloak did not make the client: {exc}") from exc
        async with self.docstore.writing():
            await self.collection.insert_one(doc)
        log.info("API client made", extra={"client": client_id, "kind": kind, "by": by})
        return doc, secret

    async def rotate(self, client_id: str, *, by: str) -> tuple[Doc, str, datetime]:
        """A new secret (shown once); the old one valid until the returned time."""
        await self._policy()
        try:
            internal = await self._internal(client_id)
            secret = (await self.keycloak.admin.a_generate_client_secrets(internal))["value"]
        except (KeycloakError, OSError) as exc:
            raise KeycloakUnavailable(f"Keycloak did not rotate the secret: {exc}") from exc
        now = datetime.now(UTC)
        async with self.docstore.writing():
            await self.collection.update_one({"_id": client_id}, {"$set": {"rotated_at": now, "rotated_by": by}})
        log.info("API client's secret rotated", extra={"client": client_id, "by": by})
        doc = await self.get(client_id)
        assert doc is not None
        return doc, secret, datetime.fromtimestamp(now.timestamp() + self.grace_seconds, UTC)

    async def delete(self, client_id: str, *, by: str) -> None:
        """Withdrawn: its Keycloak client deleted (its tokens refused from then on), then forgotten."""
        try:
            internal = await self.keycloak.admin.a_get_client_id(client_id)
            if internal is not None:
                await self.keycloak.admin.a_delete_client(internal)
        except (KeycloakError, OSError) as exc:
            raise KeycloakUnavailable(f"Keycloak did not delete the client: {exc}") from exc
        async with self.docstore.writing():
            await self.collection.delete_one({"_id": client_id})
        log.info("API client withdrawn", extra={"client": client_id, "by": by})

    async def all(self) -> list[Doc]:
        """Every API client, with its last use (Keycloak's last token for it; None: never, or too long ago)."""
        found = []
        for doc in await self.collection.find({}).sort("_id", 1).to_list():
            found.append({**doc, "last_used_at": await self.last_used(doc["_id"])})
        return found

    async def last_used(self, client_id: str) -> datetime | None:
        try:
            events = await self.keycloak.admin.a_get_events({"client": client_id, "type": "CLIENT_LOGIN", "max": 1})
        except (KeycloakError, OSError) as exc:
            log.warning("last use of %s not read: %s", client_id, exc)
            return None
        return datetime.fromtimestamp(events[0]["time"] / 1000, UTC) if events else None

    async def _internal(self, client_id: str) -> str:
        internal = await self.keycloak.admin.a_get_client_id(client_id)
        if internal is None:
            raise KeycloakUnavailable(f"client {client_id} is not in Keycloak (sync-keycloak makes it again)")
        return str(internal)

    async def _policy(self) -> None:
        """The rotation's client profile and policy, in the realm (put back as declared, the realm's others kept).
        None with no grace period: a rotation then ends the old secret at once (and Keycloak's preview feature
        `client-secret-rotation` is not needed)."""
        if not self.grace_seconds:
            return
        profile, policy = rotation_policy(self.grace_seconds)
        base = f"admin/realms/{REALM}/client-policies"
        try:
            for path, key, wanted in (("profiles", "profiles", profile), ("policies", "policies", policy)):
                answer = await self.keycloak.connection.a_raw_get(f"{base}/{path}")
                current = [entry for entry in answer.json().get(key, []) if entry.get("name") != POLICY]
                body: Doc = {key: [*current, wanted]}
                if path == "profiles":
                    body["globalProfiles"] = []
                put = await self.keycloak.connection.a_raw_put(f"{base}/{path}", data=_json(body))
                if put.status_code >= 400:
                    raise KeycloakUnavailable(f"the rotation policy was refused: {put.status_code} {put.text[:300]}")
        except (KeycloakError, OSError) as exc:
            raise KeycloakUnavailable(f"the rotation policy could not be written: {exc}") from exc


def _json(body: Doc) -> str:
    return json.dumps(body)
