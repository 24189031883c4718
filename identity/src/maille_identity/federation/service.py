"""The federation as a whole: the realm reconciled with its declaration and the registered partner
collectivités, kept so at start (retrying until Keycloak answers), and the collectivités' IdPs."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from maille_identity.federation.clients import keycloak_client
from maille_identity.federation.keycloak import KeycloakUnavailable, Reconciler, Report, render
from maille_identity.federation.repository import FederationRepository
from maille_identity.settings import IdentitySettings

log = logging.getLogger("maille.identity.federation")
Doc = dict[str, Any]
RESERVED_ALIASES = ("educonnect", "academie")


def collectivite_idp(federation: Doc) -> Doc:
    """The Keycloak OIDC identity provider of a partner collectivité's federation."""
    claims = federation.get("claims", {})
    imports = [
        ("fed_join_key", claims.get("join_key")),
        ("fed_email", claims.get("email")),
        ("firstName", claims.get("first_name")),
        ("lastName", claims.get("last_name")),
    ]
    mappers = [
        {
            "name": "username",
            "identityProviderMapper": "oidc-username-idp-mapper",
            "config": {"syncMode": "FORCE", "template": "${ALIAS}.${CLAIM.sub}", "target": "LOCAL"},
        }
    ]
    mappers += [
        {
            "name": attribute,
            "identityProviderMapper": "oidc-user-attribute-idp-mapper",
            "config": {"syncMode": "FORCE", "claim": claim, "user.attribute": attribute},
        }
        for attribute, claim in imports
        if claim
    ]
    return {
        "alias": federation["_id"],
        "displayName": federation["name"],
        "providerId": "oidc",
        "enabled": True,
        "trustEmail": False,
        "storeToken": False,
        "firstBrokerLoginFlowAlias": "maille first broker login",
        "discoveryUrl": federation["issuer"].rstrip("/") + "/.well-known/openid-configuration",
        "config": {
            "clientId": federation["client_id"],
            "clientSecret": federation["client_secret"],
            "clientAuthMethod": "client_secret_post",
            "syncMode": "FORCE",
            "defaultScope": "openid profile email",
            "pkceEnabled": "true",
            "pkceMethod": "S256",
            "validateSignature": "true",
            "useJwksUrl": "true",
            "backchannelSupported": "false",
            "guiOrder": "10",
        },
        "mappers": mappers,
    }


class Federation:
    """Keycloak as code for this deployment."""

    def __init__(self, settings: IdentitySettings, federations: FederationRepository) -> None:
        assert settings.keycloak_url
        self.settings = settings
        self.federations = federations
        self.keycloak = Reconciler(
            server_url=settings.keycloak_url,
            client_id=settings.keycloak_client_id,
            client_secret=settings.keycloak_client_secret.get_secret_value(),
        )
        self._lock = asyncio.Lock()

    async def declared(self) -> Doc:
        values = {
            **self.settings.keycloak_values(),
            "PMB_OPAC_REDIRECT_URIS": await self.federations.opac_redirect_uris(),
        }
        declared = render(values, [collectivite_idp(f) for f in await self.federations.all()])
        declared["clients"] += [keycloak_client(doc) for doc in await self.federations.api_clients()]
        return declared

    async def opac_changed(self, uai: str, url: str) -> None:
        """A school's OPAC registered, moved or gone (the library's event): the OPAC client's redirect URIs follow."""
        await self.federations.put_opac(uai, url)
        if not self.settings.pmb_opac_client_id:
            return
        try:
            report = await self._opac_client()
        except KeycloakUnavailable as exc:
            if exc.status is None or not url:
                raise  # Keycloak away, or a removal it failed: the event is delivered again
            # Keycloak will not take this OPAC as a redirect URI: it is left out, not allowed to block every other
            # school's.
            log.error("OPAC of %s (%s) refused by Keycloak, left out: %s", uai, url[:100], exc)
            await self.federations.put_opac(uai, "")
            report = await self._opac_client()
        log.info("OPAC of %s %s (%d change(s) in Keycloak)", uai, "registered" if url else "gone", len(report.changes))

    async def _opac_client(self) -> Report:
        declared = await self.declared()
        client = next(c for c in declared["clients"] if c["clientId"] == self.settings.pmb_opac_client_id)
        async with self._lock:
            return await self.keycloak.reconcile({"clients": [client]})

    async def sync(self) -> Report:
        """Make the realm hold its declaration; what was different."""
        async with self._lock:
            return await self.keycloak.reconcile(await self.declared())

    async def keep_synced(self, retry_seconds: float = 5.0) -> None:
        """At start: reconcile once Keycloak answers (it may start after identity)."""
        while True:
            try:
                report = await self.sync()
                for change in report.changes:  # a hand-made change, or a first start
                    log.warning("keycloak: %s", change)
                log.info("keycloak realm reconciled (%d change(s))", len(report.changes))
                return
            except KeycloakUnavailable as exc:
                log.warning("keycloak not reconciled yet: %s", exc)
                await asyncio.sleep(retry_seconds)

    async def keep_disabled_signed_out(self, every_seconds: float = 3.0) -> None:
        """A disabled account keeps no session: Keycloak does not end them itself when an admin disables an account,
        so identity (its administrator) reads the admin events and signs such accounts out — which tells the
        gateway (back-channel logout) within seconds."""
        since = int(time.time() * 1000)
        while True:
            await asyncio.sleep(every_seconds)
            try:
                disabled, since = await self.keycloak.disabled_since(since)
                for user_id in disabled:
                    await self.keycloak.sign_out(user_id)
                    log.info("disabled account signed out everywhere", extra={"keycloak_user": user_id})
            except KeycloakUnavailable as exc:
                log.warning("disabled accounts not checked: %s", exc)

    async def add(self, federation: Doc) -> None:
        """Register a collectivité: its IdP made in Keycloak first, then kept (nothing kept if Keycloak refuses)."""
        async with self._lock:
            report = await self.keycloak.reconcile({"identityProviders": [collectivite_idp(federation)]})
        await self.federations.put(federation)
        log.info("federation %s registered (%d change(s))", federation["_id"], len(report.changes))

    async def remove(self, alias: str) -> bool:
        found = await self.federations.get(alias)
        if found is None:
            return False
        async with self._lock:
            await self.keycloak.remove_idp(alias)
        return await self.federations.delete(alias)
