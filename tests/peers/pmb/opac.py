"""The OPAC of each school's database, as far as sign-on goes: PMB's OpenID Connect authentication source.

`GET /opac/<database>/empr.php` is the reader's account page. A reader without an OPAC session is sent to the
identity provider (authorization code flow, `state` and `nonce`); `oidc_callback.php` takes the code to the
token endpoint with the client's secret, checks the ID token fully (signature from the provider's JWKS, issuer,
audience, expiry, nonce), and the reader is the database's reader whose login is the configured claim (PMB
matches the claim to `empr_login`). No reader with that login: refused, as PMB does. No source configured: the
OPAC's own login form (login and password), which is what Maille's sign-on spares its readers.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from joserfc import errors, jwt
from joserfc.jwk import KeySet

COOKIE = "PmbOpacSession"


@dataclass
class OidcSource:
    """An OPAC's OpenID Connect source: the provider (issuer), the OPAC's client there, the claim naming the reader."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    claim: str = "ent_id"
    _discovery: dict[str, Any] | None = None

    async def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
                answer.raise_for_status()
                self._discovery = answer.json()
        return self._discovery

    async def claims(self, code: str, redirect_uri: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims for `code`, checked; ValueError when anything is wrong."""
        found = await self.discovery()
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                found["token_endpoint"],
                auth=(self.client_id, self.client_secret),
                data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            )
            if answer.status_code != 200:
                raise ValueError(f"the token endpoint refused the code: {answer.status_code} {answer.text[:200]}")
            keys = KeySet.import_key_set((await http.get(found["jwks_uri"])).raise_for_status().json())
        try:
            token = jwt.decode(answer.json()["id_token"], keys, algorithms=["RS256"])
            jwt.JWTClaimsRegistry(
                leeway=30,
                iss={"essential": True, "value": found["issuer"]},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (errors.JoseError, KeyError, ValueError) as exc:
            raise ValueError(f"ID token refused: {exc}") from None
        return dict(token.claims)


def add_opac(web: FastAPI, peer: Any) -> None:
    """The OPAC routes on the peer's app; `peer.oidc` (an OidcSource or None) and `peer.database(name)`."""
    pending: dict[str, tuple[str, str]] = {}  # state -> (database, nonce)
    sessions: dict[str, tuple[str, str]] = {}  # OPAC session -> (database, reader login)

    def page(title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(
            f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>",
            status_code=status,
        )

    def callback_url(request: Request, name: str) -> str:
        return str(request.url_for("oidc_callback", name=name))

    @web.get("/opac/{name}/empr.php", name="opac_account")
    async def account(request: Request, name: str) -> Response:
        db = peer.databases.get(name)
        if db is None:
            return page("Base inconnue", f"<p>Aucune base {html.escape(name)}.</p>", 404)
        session = sessions.get(request.cookies.get(COOKIE, ""))
        if session is not None and session[0] == name:
            reader = db.readers[session[1]]
            return page(
                "Mon compte",
                f'<p class="reader">Connecté : {html.escape(reader.get("prenom", ""))} {html.escape(reader["nom"])}'
                f" ({html.escape(session[1])})</p>",
            )
        if peer.oidc is None:
            return page(
                "Connexion",
                '<form method="post" action="do_login.php"><input name="login"><input type="password" name="password">'
                "</form>",
            )
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        pending[state] = (name, nonce)
        found = await peer.oidc.discovery()
        query = urlencode(
            {
                "client_id": peer.oidc.client_id,
                "response_type": "code",
                "scope": "openid",
                "state": state,
                "nonce": nonce,
                "redirect_uri": callback_url(request, name),
            }
        )
        return RedirectResponse(f"{found['authorization_endpoint']}?{query}", status_code=302)

    @web.get("/opac/{name}/oidc_callback.php", name="oidc_callback")
    async def callback(request: Request, name: str, state: str = "", code: str = "", error: str = "") -> Response:
        expected = pending.pop(state, None)
        if expected is None or expected[0] != name:
            return page(
                "Connexion refusée", "<p>Réponse du fournisseur d'identité inattendue (state inconnu).</p>", 400
            )
        if error or not code:
            return page(
                "Connexion refusée",
                f"<p>Le fournisseur d'identité a répondu : {html.escape(error or 'pas de code')}.</p>",
                401,
            )
        try:
            claims = await peer.oidc.claims(code, callback_url(request, name), expected[1])
        except ValueError as exc:
            return page("Connexion refusée", f"<p>{html.escape(str(exc))}</p>", 401)
        login = str(claims.get(peer.oidc.claim) or "")
        db = peer.databases[name]
        if login not in db.readers:
            return page(
                "Connexion refusée", f"<p>Aucun compte lecteur pour « {html.escape(login)} » dans ce CDI.</p>", 403
            )
        session = secrets.token_urlsafe(24)
        sessions[session] = (name, login)
        answer = RedirectResponse(str(request.url_for("opac_account", name=name)), status_code=302)
        answer.set_cookie(COOKIE, session, path=f"/opac/{name}/", httponly=True, samesite="lax")
        return answer
