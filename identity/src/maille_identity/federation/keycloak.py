"""Keycloak as code: the realm `maille` declared in `identity/keycloak/maille.json` (plus the partner
collectivités' IdPs registered through identity's federation API), made so by a reconciler.

The reconciler reads what Keycloak holds through its admin API (python-keycloak's async methods, with
identity's own confidential client in the realm: manage-realm, manage-clients, manage-identity-providers,
manage-users — nothing of the master realm), compares only the fields the declaration writes, and puts
back whatever differs. Every difference is reported: on a second run nothing is; a change made by hand
in the admin console is named and undone.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakError
from lxml import etree

from maille_kit.http import http_client
from maille_kit.xml import UNTRUSTED

log = logging.getLogger("maille.identity.keycloak")
Doc = dict[str, Any]
# Installed, the declaration sits in the package; in a checkout, in identity/keycloak/.
DECLARATION = next(
    (
        p
        for p in (
            Path(__file__).with_name("maille.json"),
            Path(__file__).resolve().parents[3] / "keycloak" / "maille.json",
        )
        if p.exists()
    ),
    Path(__file__).with_name("maille.json"),
)
REALM = "maille"
# Fields of an IdP's config that come from its metadata (SAML) or discovery document (OIDC), read by
# Keycloak's own parser.
FROM_METADATA = {
    "saml": ("singleSignOnServiceUrl", "singleLogoutServiceUrl", "signingCertificate", "idpEntityId"),
    "oidc": ("authorizationUrl", "tokenUrl", "userInfoUrl", "jwksUrl", "logoutUrl", "issuer"),
}
SAML_METADATA = "urn:oasis:names:tc:SAML:2.0:metadata"
HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
# Keycloak never answers a secret back (it masks it): it is written, not compared.
WRITE_ONLY = ("clientSecret",)


class KeycloakUnavailable(RuntimeError):
    """Keycloak could not be reached or refused identity's client (`status`: its HTTP answer, None if unreached)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Report:
    """What a reconcile run found different and put back (empty: Keycloak already matched)."""

    changes: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        self.changes.append(what)


def render(values: Mapping[str, str | Sequence[str]], extra_idps: Sequence[Doc] = (), path: Path = DECLARATION) -> Doc:
    """The declaration with `{{NAME}}` filled from `values` (a list fills a `"{{@NAME}}"`); entries whose `when`
    setting is empty dropped."""
    text = path.read_text()
    for name, value in values.items():
        if isinstance(value, list):
            text = text.replace('"{{@' + name + '}}"', json.dumps(value))
        else:
            text = text.replace("{{" + name + "}}", json.dumps(value or "")[1:-1])
    text = re.sub(r'"\{\{@[A-Z_]+\}\}"', "[]", text)  # a list not given is empty
    declared = _uncommented(json.loads(text))
    for section in ("clients", "identityProviders"):
        declared[section] = [
            {k: v for k, v in entry.items() if k != "when"}
            for entry in declared[section]
            if not entry.get("when") or values.get(entry["when"])
        ]
    declared["identityProviders"] += list(extra_idps)
    return declared


def _uncommented(node: Any) -> Any:
    """The declaration without its `_comment` keys (notes for readers, not fields of Keycloak's)."""
    if isinstance(node, dict):
        return {k: _uncommented(v) for k, v in node.items() if k != "_comment"}
    if isinstance(node, list):
        return [_uncommented(item) for item in node]
    return node


def differs(wanted: Any, actual: Any) -> bool:
    """Whether `actual` lacks what `wanted` says (fields `wanted` does not name are not compared)."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return True
        return any(differs(value, actual.get(key)) for key, value in wanted.items())
    if isinstance(wanted, list) and all(not isinstance(item, (dict, list)) for item in wanted):
        return not isinstance(actual, list) or sorted(map(str, wanted)) != sorted(map(str, actual))
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return str(wanted).lower() != str(actual).lower()
    if isinstance(wanted, (int, float)) and isinstance(actual, (int, float)):
        return wanted != actual
    return wanted != actual


def admin_only_attribute(declared: Doc) -> Doc:
    """A user-profile attribute that admins (identity, the IdP mappers) alone may see and write."""
    return {
        "name": declared["name"],
        "displayName": declared.get("displayName", declared["name"]),
        "multivalued": bool(declared.get("multivalued")),
        "permissions": {"view": ["admin"], "edit": ["admin"]},
        "validations": {},
        "annotations": {},
    }


def _changed_fields(wanted: Doc, actual: Doc) -> list[str]:
    return sorted(key for key, value in wanted.items() if differs(value, actual.get(key)))


class Reconciler:
    """Makes the realm hold what is declared."""

    def __init__(self, *, server_url: str, client_id: str, client_secret: str, timeout: int = 20) -> None:
        self.connection = KeycloakOpenIDConnection(
            server_url=server_url.rstrip("/") + "/",
            realm_name=REALM,
            user_realm_name=REALM,
            client_id=client_id,
            client_secret_key=client_secret,
            grant_type="client_credentials",
            timeout=timeout,
            verify=True,
        )
        self.admin = KeycloakAdmin(connection=self.connection)
        self._myself: str | None = None

    async def reconcile(self, declared: Doc) -> Report:
        """Apply `declared`; what was different."""
        report = Report()
        try:
            if "realm" in declared:
                await self._realm(declared["realm"], report)
            if "userProfile" in declared:
                await self._user_profile(declared["userProfile"], report)
            await self._roles(declared.get("roles", []), report)
            await self._flows(declared.get("flows", []), report)
            await self._required_actions(declared.get("requiredActions", []), report)
            for client in declared.get("clients", []):
                await self._client(client, report)
            for idp in declared.get("identityProviders", []):
                await self._idp(idp, report)
        except KeycloakError as exc:
            if exc.response_code is None:
                raise KeycloakUnavailable(f"Keycloak cannot be reached: {exc.error_message!s:.200}") from exc
            raise KeycloakUnavailable(
                f"Keycloak refused or failed a request: {exc.response_code} {exc.error_message!s:.300}",
                status=exc.response_code,
            ) from exc
        except OSError as exc:
            raise KeycloakUnavailable(f"Keycloak cannot be reached: {exc}") from exc
        return report

    async def close(self) -> None:
        try:
            await self.connection.a_close()  # type: ignore[attr-defined]
        except Exception:
            pass

    # -- the parts ------------------------------------------------------------------------------

    async def _realm(self, wanted: Doc, report: Report) -> None:
        actual = await self.admin.a_get_realm(REALM)
        fields = _changed_fields(wanted, actual)
        if fields:
            report.add(f"realm {REALM}: {', '.join(fields)} put back")
            await self.admin.a_update_realm(
                REALM,
                {**actual, **wanted, "attributes": {**actual.get("attributes", {}), **wanted.get("attributes", {})}},
            )

    async def _user_profile(self, wanted: Doc, report: Report) -> None:
        """The realm's user profile: the policy for undeclared attributes, the optional defaults, and the
        attributes only admins may see and write (what says who a person is)."""
        profile = (await self.connection.a_raw_get(f"admin/realms/{REALM}/users/profile")).json()
        changed = []
        if profile.get("unmanagedAttributePolicy") != wanted["unmanagedAttributePolicy"]:
            profile["unmanagedAttributePolicy"] = wanted["unmanagedAttributePolicy"]
            changed.append("unmanagedAttributePolicy")
        attributes = profile.setdefault("attributes", [])
        for attribute in attributes:
            if attribute["name"] in wanted.get("optional", []) and attribute.get("required"):
                attribute.pop("required")
                changed.append(f"{attribute['name']} required")
        by_name = {attribute["name"]: attribute for attribute in attributes}
        for declared in wanted.get("adminOnly", []):
            attribute = admin_only_attribute(declared)
            found = by_name.get(attribute["name"])
            if found is None:
                attributes.append(attribute)
                changed.append(f"attribute {attribute['name']} declared")
            elif differs({k: attribute[k] for k in ("permissions", "multivalued")}, found) or found.get("required"):
                found.update(attribute)
                found.pop("required", None)
                changed.append(f"attribute {attribute['name']} permissions")
        if changed:
            report.add(f"user profile: {', '.join(changed)} put back")
            answer = await self.connection.a_raw_put(f"admin/realms/{REALM}/users/profile", data=json.dumps(profile))
            _check(answer)

    async def _roles(self, wanted: list[Doc], report: Report) -> None:
        actual = {role["name"]: role for role in await self.admin.a_get_realm_roles(brief_representation=False)}
        for role in wanted:
            found = actual.get(role["name"])
            if found is None:
                report.add(f"role {role['name']} created")
                await self.admin.a_create_realm_role(role, skip_exists=True)
            elif differs(role, found):
                report.add(f"role {role['name']}: {', '.join(_changed_fields(role, found))} put back")
                await self.admin.a_update_realm_role(role["name"], {**found, **role})

    async def _flows(self, wanted: list[Doc], report: Report) -> None:
        actual = {flow["alias"]: flow for flow in await self.admin.a_get_authentication_flows()}
        for flow in wanted:
            if flow["alias"] not in actual:
                report.add(f"authentication flow {flow['alias']!r} created")
                await self.admin.a_create_authentication_flow(
                    {
                        "alias": flow["alias"],
                        "description": flow["description"],
                        "providerId": "basic-flow",
                        "topLevel": True,
                        "builtIn": False,
                    },
                    skip_exists=True,
                )
            executions = await self.admin.a_get_authentication_flow_executions(flow["alias"])
            for execution in flow["executions"]:
                found = next((e for e in executions if e.get("providerId") == execution["providerId"]), None)
                if found is None:
                    report.add(f"authentication flow {flow['alias']!r}: step {execution['providerId']} added")
                    await self.admin.a_create_authentication_flow_execution(
                        {"provider": execution["providerId"]}, flow["alias"]
                    )
                    executions = await self.admin.a_get_authentication_flow_executions(flow["alias"])
                    found = next(e for e in executions if e.get("providerId") == execution["providerId"])
                elif found.get("requirement") != execution["requirement"]:
                    report.add(
                        f"authentication flow {flow['alias']!r}: step {execution['providerId']} requirement put back"
                    )
                if found.get("requirement") != execution["requirement"]:
                    await self.admin.a_update_authentication_flow_executions(
                        {**found, "requirement": execution["requirement"]}, flow["alias"]
                    )

    async def _required_actions(self, wanted: list[Doc], report: Report) -> None:
        """What Keycloak may ask of a person at sign-in (on, off, by default), by alias."""
        for action in wanted:
            found = await self.admin.a_get_required_action_by_alias(action["alias"])
            if found is None:
                continue  # not in this Keycloak: nothing it could ask
            if differs(action, found):
                report.add(f"required action {action['alias']}: {', '.join(_changed_fields(action, found))} put back")
                await self.admin.a_update_required_action(action["alias"], {**found, **action})

    async def _client(self, wanted: Doc, report: Report) -> None:
        mappers = wanted.get("protocolMappers", [])
        body = {k: v for k, v in wanted.items() if k != "protocolMappers"}
        internal = await self.admin.a_get_client_id(wanted["clientId"])
        if internal is None:
            report.add(f"client {wanted['clientId']} created")
            await self.admin.a_create_client({**body, "protocolMappers": mappers}, skip_exists=True)
            return
        actual = await self.admin.a_get_client(internal)
        fields = _changed_fields(body, actual)
        if fields:
            report.add(f"client {wanted['clientId']}: {', '.join(fields)} put back")
            merged = {**actual, **body, "attributes": {**actual.get("attributes", {}), **body.get("attributes", {})}}
            merged.pop("protocolMappers", None)
            await self.admin.a_update_client(internal, merged)
        await _mappers(
            f"client {wanted['clientId']}",
            mappers,
            await self.admin.a_get_mappers_from_client(internal),
            report,
            add=lambda m: self.admin.a_add_mapper_to_client(internal, m),
            update=lambda id_, m: self.admin.a_update_client_mapper(internal, id_, m),
        )

    async def _idp(self, wanted: Doc, report: Report) -> None:
        mappers = wanted.get("mappers", [])
        body = {k: v for k, v in wanted.items() if k not in ("mappers", "metadataUrl", "discoveryUrl")}
        source = wanted.get("metadataUrl") or wanted.get("discoveryUrl")
        if source:
            found = await self._from_metadata(wanted["providerId"], source)
            if wanted["providerId"] == "saml" and str(body["config"].get("postBindingAuthnRequest")) == "false":
                # Keycloak takes the HTTP-POST address from the metadata: the request goes to the HTTP-Redirect one.
                found["singleSignOnServiceUrl"] = await _redirect_sign_on(source)
            body["config"] = {**found, **body["config"]}
        compared = {**body, "config": {k: v for k, v in body["config"].items() if k not in WRITE_ONLY}}
        alias = wanted["alias"]
        try:
            actual = await self.admin.a_get_idp(alias)
        except KeycloakError as exc:
            if exc.response_code != 404:
                raise
            actual = None
        if actual is None:
            report.add(f"identity provider {alias} created")
            await self.admin.a_create_idp(body)
        else:
            fields = _changed_fields(compared, actual)
            if fields:
                report.add(f"identity provider {alias}: {', '.join(fields)} put back")
                await self.admin.a_update_idp(
                    alias, {**actual, **body, "config": {**actual.get("config", {}), **body["config"]}}
                )
        await _mappers(
            f"identity provider {alias}",
            [{**m, "identityProviderAlias": alias} for m in mappers],
            await self.admin.a_get_idp_mappers(alias),
            report,
            add=lambda m: self.admin.a_add_mapper_to_idp(alias, m),
            update=lambda id_, m: self.admin.a_update_mapper_in_idp(alias, id_, m),
        )

    async def _from_metadata(self, provider: str, url: str) -> dict[str, str]:
        """An upstream IdP's endpoints and keys, read by Keycloak from its SAML metadata or OIDC discovery."""
        answer = await self.connection.a_raw_post(
            f"admin/realms/{REALM}/identity-provider/import-config",
            data=json.dumps({"providerId": provider, "fromUrl": url}),
        )
        _check(answer)
        config = answer.json()
        return {key: str(config[key]) for key in FROM_METADATA[provider] if config.get(key)}

    async def remove_idp(self, alias: str) -> None:
        """Withdraw an identity provider (a federation deleted)."""
        try:
            await self.admin.a_delete_idp(alias)
        except KeycloakError as exc:
            if exc.response_code != 404:
                raise

    # -- users ----------------------------------------------------------------------------------

    async def user(self, user_id: str) -> Doc:
        """A user with their attributes and their links to upstream IdPs (`federatedIdentities`)."""
        try:
            user = await self.admin.a_get_user(user_id)
            user["federatedIdentities"] = await self.admin.a_get_user_social_logins(user_id)
        except KeycloakError as exc:
            raise KeycloakUnavailable(
                f"the account could not be read: {exc.response_code} {exc.error_message!s:.200}"
            ) from exc
        except OSError as exc:
            raise KeycloakUnavailable(f"the account could not be read: {exc}") from exc
        return user

    async def user_id(self, username: str) -> str | None:
        """The id of the account named `username` (None: no such account)."""
        try:
            found = await self.admin.a_get_users({"username": username, "exact": True})
        except (KeycloakError, OSError) as exc:
            raise KeycloakUnavailable(f"the account could not be looked up: {exc}") from exc
        return found[0]["id"] if found else None

    async def disabled_since(self, since_ms: int, *, page: int = 100, pages: int = 10) -> tuple[list[str], int]:
        """The accounts an admin other than identity updated after `since_ms` and that are now disabled (read from
        Keycloak's admin events, newest first, then each such account), and the time of the newest event seen."""
        myself = await self._own_user_id()
        touched: dict[str, None] = {}
        newest = since_ms
        try:
            for number in range(pages):
                answer = await self.connection.a_raw_get(
                    f"admin/realms/{REALM}/admin-events",
                    resourceTypes="USER",
                    operationTypes="UPDATE",
                    first=number * page,
                    max=page,
                )
                _check(answer)
                events = answer.json()
                for event in events:
                    at = int(event.get("time") or 0)
                    newest = max(newest, at)
                    path = str(event.get("resourcePath", ""))
                    if (
                        at > since_ms
                        and path.startswith("users/")
                        and (event.get("authDetails") or {}).get("userId") != myself
                    ):
                        touched[path.split("/")[1]] = None
                if len(events) < page or not events or int(events[-1].get("time") or 0) <= since_ms:
                    break
            disabled = []
            for user_id in touched:  # rare: hand-made changes in the admin console
                answer = await self.connection.a_raw_get(
                    f"admin/realms/{REALM}/users/{user_id}", briefRepresentation="true"
                )
                if answer.status_code == 200 and answer.json().get("enabled") is False:
                    disabled.append(user_id)
        except (KeycloakError, OSError, ValueError) as exc:
            raise KeycloakUnavailable(f"Keycloak's admin events could not be read: {exc}") from exc
        return disabled, newest

    async def _own_user_id(self) -> str:
        """identity's own service account (its writes are not an admin's hand-made changes)."""
        if self._myself is None:
            assert self.connection.client_id is not None
            internal = await self.admin.a_get_client_id(self.connection.client_id)
            answer = await self.connection.a_raw_get(f"admin/realms/{REALM}/clients/{internal}/service-account-user")
            _check(answer)
            self._myself = answer.json()["id"]
        return self._myself

    async def sign_out(self, user_id: str) -> None:
        """End every Keycloak session of the account (each client with a back-channel logout URL is told)."""
        try:
            answer = await self.connection.a_raw_post(f"admin/realms/{REALM}/users/{user_id}/logout", data="{}")
            if answer.status_code != 404:
                _check(answer)
        except (KeycloakError, OSError) as exc:
            raise KeycloakUnavailable(f"the account's sessions could not be ended: {exc}") from exc

    async def delete_user(self, user_id: str) -> None:
        """Delete an account, its sessions ended first (a deletion alone tells no client); one already gone is fine."""
        try:
            await self.sign_out(user_id)
            await self.admin.a_delete_user(user_id)
        except KeycloakError as exc:
            if exc.response_code != 404:
                raise KeycloakUnavailable(f"the account could not be deleted: {exc}") from exc
        except OSError as exc:
            raise KeycloakUnavailable(f"the account could not be deleted: {exc}") from exc

    async def set_attributes(self, user: Doc, attributes: dict[str, list[str]]) -> None:
        """Set these attributes of a user (the others kept)."""
        body: dict[str, Any] = {
            key: user[key]
            for key in ("username", "firstName", "lastName", "email", "enabled", "emailVerified")
            if key in user
        }
        body["attributes"] = {**user.get("attributes", {}), **attributes}
        try:
            await self.admin.a_update_user(user["id"], body)
        except (KeycloakError, OSError) as exc:
            raise KeycloakUnavailable(f"the account could not be written: {exc}") from exc


async def _redirect_sign_on(metadata_url: str) -> str:
    """Where an IdP's SAML metadata takes AuthnRequests by HTTP-Redirect (read without entities or network)."""
    try:
        async with http_client(timeout=10) as client:
            answer = (await client.get(metadata_url)).raise_for_status()
        root = etree.fromstring(answer.content, etree.XMLParser(**UNTRUSTED))
    except (httpx.HTTPError, etree.XMLSyntaxError) as exc:
        raise KeycloakUnavailable(f"the IdP's metadata at {metadata_url} cannot be read: {exc}") from exc
    for service in root.iter(f"{{{SAML_METADATA}}}SingleSignOnService"):
        if service.get("Binding") == HTTP_REDIRECT and service.get("Location"):
            return str(service.get("Location"))
    raise KeycloakUnavailable(f"the IdP's metadata at {metadata_url} offers no HTTP-Redirect sign-on address")


async def _mappers(
    owner: str,
    wanted: list[Doc],
    present: list[Doc],
    report: Report,
    *,
    add: Callable[[Doc], Awaitable[Any]],
    update: Callable[[str, Doc], Awaitable[Any]],
) -> None:
    """A client's or an IdP's mappers, by name: the missing made, the changed put back."""
    by_name = {m["name"]: m for m in present}
    for mapper in wanted:
        found = by_name.get(mapper["name"])
        if found is None:
            report.add(f"{owner}: mapper {mapper['name']!r} created")
            await add(mapper)
        elif differs(mapper, found):
            report.add(f"{owner}: mapper {mapper['name']!r} put back")
            await update(found["id"], {**found, **mapper})


def _check(answer: Any) -> None:
    if answer.status_code >= 400:
        raise KeycloakUnavailable(f"Keycloak answered {answer.status_code}: {answer.text[:300]}")
