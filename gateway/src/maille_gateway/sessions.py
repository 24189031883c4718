"""Browser sessions: OIDC authorization code with PKCE against Keycloak, kept server-side in NATS KV.

The browser holds only a random session id in an httpOnly, Secure, SameSite=Lax cookie. NATS KV holds,
under the SHA-256 of that id (so that reading the bucket gives nobody a usable cookie), the session's
tokens encrypted with AES-GCM under `MAILLE_GATEWAY_SESSION_KEY`. Entries expire with the bucket's TTL;
logout deletes the entry (revocation), and every gateway process forgets a session it had cached within
`CACHE_SECONDS`. An access token about to expire is refreshed with the refresh token, silently.

A sign-in in progress (its state, nonce, PKCE verifier, where to go next) waits in the browser that started
it, for ten minutes: a cookie holding the state and the rest sealed with AES-GCM under the same key, bound to
the state. Nothing is written on the server until the sign-in finishes, so a flood of sign-ins started and
never finished costs no storage; the code Keycloak sends back can be exchanged once only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from maille_gateway.settings import GatewaySettings
from maille_gateway.upstream import Upstream, UpstreamError
from maille_kit.auth import TokenVerifier
from maille_kit.bus import Bus
from maille_kit.http import http_client
from maille_kit.problems import Problem
from maille_kit.telemetry import meter

log = logging.getLogger("maille.gateway.sessions")
security = logging.getLogger("maille.security")

SESSION_COOKIE = "maille_session"
CSRF_COOKIE = "maille_csrf"
LOGIN_COOKIE = "maille_login"
SESSIONS_BUCKET = "maille_gateway_sessions"
LOGIN_SECONDS = 600
NEXT_MAX = 1024  # longest "where to go next" a sign-in carries (a longer one goes home)
CACHE_SECONDS = 2.0
REFRESH_MARGIN = 30  # seconds before expiry an access token is refreshed
EXPIRY_SKEW = 5  # seconds before expiry an access token is no longer sent on (a service's clock may be ahead)
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

# Sessions started and ended, on every gateway: those alive are the difference over the sessions' lifetime.
SESSIONS_STARTED = meter().create_counter("maille.gateway.sessions.started", description="sessions started")
SESSIONS_ENDED = meter().create_counter("maille.gateway.sessions.ended", description="sessions ended before expiry")


@dataclass
class Session:
    """One signed-in browser."""

    key: str  # SHA-256 of the cookie value: the KV key
    subject: str
    name: str
    access_token: str
    refresh_token: str
    id_token: str
    expires_at: float
    csrf: str
    created: float
    person: str = ""  # the directory person identity settled the account as (a refreshed token must name the same)
    sid: str = ""  # Keycloak's session id (a back-channel logout names it)
    idp: str = ""  # the identity provider the person signed in with (Keycloak's alias; "local": the realm's own)

    def csrf_matches(self, sent: bytes) -> bool:
        return hmac.compare_digest(sent, self.csrf.encode())


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def cookie_value(header: bytes | str, name: str) -> str | None:
    """One cookie of a Cookie header; None when absent or the header is malformed."""
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    if name not in text:
        return None
    try:
        jar = SimpleCookie(text)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path of this site only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


class Sessions:
    """Sign-in, sessions, refresh and sign-out."""

    def __init__(self, settings: GatewaySettings, verifier: TokenVerifier) -> None:
        self.settings = settings
        self.verifier = verifier  # access tokens (audience maille)
        self.issuer = settings.auth_issuer.rstrip("/")
        self.id_tokens = TokenVerifier(issuer=self.issuer, audience=settings.oidc_client_id, jwks_url=verifier.jwks_url)
        self._aead = AESGCM(hashlib.sha256(settings.session_key.get_secret_value().encode()).digest())
        self._sessions: KeyValue | None = None
        self._cache: dict[str, tuple[float, Session]] = {}
        self._refreshing: dict[str, asyncio.Future[str | None]] = {}
        self._metadata: dict[str, Any] | None = None
        self.redirect_uri = f"{settings.public_url.rstrip('/')}/auth/callback"
        # One pooled client for every call to Keycloak and identity: a client made per call would build a
        # TLS context each time (tens of milliseconds of CPU), more than the rest of a sign-in.
        self._http: httpx.AsyncClient | None = None

        self._peers: dict[str, Upstream] = {}
        secret = settings.oidc_client_secret.get_secret_value()
        credentials = f"{quote(settings.oidc_client_id, safe='')}:{quote(secret, safe='')}"
        self._basic = b"Basic " + base64.b64encode(credentials.encode())

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = http_client(timeout=10)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        for peer in self._peers.values():
            await peer.close()

    async def call(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes | None = None
    ) -> tuple[int, bytes]:
        """A call of the sign-in path (Keycloak's token endpoint, identity) on the gateway's own lean
        keep-alive connections: httpx costs about a millisecond of CPU a call, these a tenth of that.
        UpstreamError when the other side cannot be reached or breaks off."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        peer = self._peers.get(origin)
        if peer is None:
            peer = self._peers[origin] = Upstream(
                parts.hostname or origin, origin, response_timeout=10.0, max_connections=64
            )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return await peer.fetch(method, target.encode("latin-1"), headers, body)

    async def start(self, bus: Bus) -> None:
        self._sessions = await bus.key_value(SESSIONS_BUCKET, ttl=self.settings.session_ttl_seconds)

    # -- the identity provider ------------------------------------------------------------------

    def _backchannel(self, url: str) -> str:
        """`url` (as Keycloak publishes it for browsers) as the gateway reaches Keycloak."""
        if not self.settings.oidc_backchannel_url:
            return url
        public = urlsplit(self.issuer)
        inside = urlsplit(self.settings.oidc_backchannel_url)
        parts = urlsplit(url)
        if parts.netloc != public.netloc:
            return url
        return parts._replace(scheme=inside.scheme, netloc=inside.netloc).geturl()

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self._backchannel(f"{self.issuer}/.well-known/openid-configuration")
            try:
                self._metadata = (await self.http.get(url, timeout=5)).raise_for_status().json()
            except (httpx.HTTPError, ValueError) as exc:
                raise Problem(
                    503,
                    "the sign-in service cannot be reached now",
                    headers={"Retry-After": "5"},
                    reason="signin-unreachable",
                ) from exc
        return self._metadata

    async def _token(self, **form: str) -> dict[str, Any]:
        """A call to the token endpoint, authenticated as the gateway's client (client_secret_basic)."""
        meta = await self.metadata()
        status, body = await self.call(
            "POST",
            self._backchannel(meta["token_endpoint"]),
            [
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"authorization", self._basic),
                (b"accept", b"application/json"),
            ],
            str(httpx.QueryParams(form)).encode(),
        )
        if status != 200:
            raise ValueError(f"token endpoint answered {status}")
        tokens = json.loads(body)
        if not isinstance(tokens, dict) or "access_token" not in tokens:
            raise ValueError("token endpoint answered no access token")
        return tokens

    # -- signing in -----------------------------------------------------------------------------

    async def begin(self, next_path: str, idp_hint: str | None = None) -> tuple[str, str]:
        """Start a sign-in: (the identity provider's URL to send the browser to, the login cookie's value)."""
        meta = await self.metadata()
        state, nonce, verifier = _token(), _token(), _token(48)
        extra = {
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if idp_hint:
            extra["kc_idp_hint"] = idp_hint
        url = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.settings.oidc_client_id,
            "code",
            redirect_uri=self.redirect_uri,
            scope="openid profile email",
            state=state,
            **extra,
        )
        next_path = safe_next(next_path)
        pending = {
            "nonce": nonce,
            "verifier": verifier,
            "next": next_path if len(next_path) <= NEXT_MAX else "/",
            "at": int(time.time()),
        }
        sealed = base64.urlsafe_b64encode(self._seal(_login_key(state), pending)).rstrip(b"=").decode()
        return url, f"{state}.{sealed}"

    async def finish(self, code: str, state: str, login_cookie: str | None) -> tuple[str, Session, str]:
        """Complete a sign-in: (the new session's cookie value, the session — not stored yet —, where to go
        next). The login cookie must be the one this sign-in's start set (its state, sealed under the key)."""
        cookie_state, _, sealed = (login_cookie or "").partition(".")
        if not cookie_state or not hmac.compare_digest(cookie_state, state):
            raise Problem(
                400, "this sign-in was not started from this browser (or took over ten minutes); sign in again"
            )
        try:
            pending = self._open(_login_key(state), base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
        except (ValueError, TypeError):
            raise Problem(400, "this sign-in's cookie is not one this site set; sign in again") from None
        if not isinstance(pending, dict) or time.time() - float(pending.get("at", 0)) > LOGIN_SECONDS:
            raise Problem(400, "this sign-in has expired (it took over ten minutes); sign in again")
        try:
            tokens = await self._token(
                grant_type="authorization_code",
                code=code,
                redirect_uri=self.redirect_uri,
                code_verifier=pending["verifier"],
            )
        except (UpstreamError, ValueError) as exc:
            log.warning("code exchange refused: %s", type(exc).__name__)
            raise Problem(400, "the identity provider refused this sign-in; sign in again") from None
        # The ID token is checked in full (signature, issuer, audience, expiry, nonce): it says who signed in. The
        # access token came in the same answer from Keycloak's token endpoint, over the gateway's own connection;
        # each service checks it on every call, identity first of all at the end of this sign-in.
        claims = (await self.id_tokens.verify(tokens["id_token"])).claims
        if claims.get("nonce") != pending["nonce"]:
            raise Problem(400, "the sign-in answer does not match the request (nonce); sign in again")
        session_id = _token(32)
        subject = str(claims["sub"])
        name = claims.get("name") or claims.get("preferred_username") or subject
        session = Session(
            key=_hash(session_id),
            subject=subject,
            name=str(name),
            access_token=tokens["access_token"],
            refresh_token=tokens.get("refresh_token", ""),
            id_token=tokens["id_token"],
            expires_at=time.time() + _seconds(tokens.get("expires_in")),
            csrf=_token(),
            created=time.time(),
            sid=str(claims.get("sid") or ""),
            idp=_idp_label(claims.get("idp")),
        )
        return session_id, session, str(pending.get("next") or "/")

    async def save(self, session: Session) -> None:
        """Keep a session that has just started (and which Keycloak session it rides on, for the back-channel
        logout), both written at once."""
        assert self._sessions is not None
        writes: list[Awaitable[object]] = [self._store(session)]
        if session.sid:  # Keycloak ends its session by sid (back-channel logout): which of ours that is
            writes.append(self._sessions.put(_sid_key(session.sid), session.key.encode()))
        await asyncio.gather(*writes)
        SESSIONS_STARTED.add(1)

    async def settle(self, session: Session, choice: str | None = None, *, store: bool = True) -> dict[str, Any]:
        """Ask identity which directory person the signed-in account is (`POST /api/identity/v1/signin`).

        `linked` (the tokens fetched again when identity has just written the link on the account),
        `choose` (with the candidates), `local` (an account of the realm's own), or `refused` (with
        identity's reason). Without an identity route, every account is `local`. A linked session is stored
        again unless `store` is false (a sign-in that has just finished: the callback saves it once).
        """
        url = self.settings.routes.get("identity")
        if not url or not self.settings.link_accounts:
            return {"status": "local"}
        headers = [
            (b"authorization", b"Bearer " + session.access_token.encode()),
            (b"content-type", b"application/json"),
        ]
        try:
            status, body = await self.call(
                "POST",
                f"{url.rstrip('/')}/api/identity/v1/signin",
                headers,
                json.dumps({"choice": choice} if choice else {}).encode(),
            )
        except UpstreamError as exc:
            raise Problem(
                503,
                "the directory cannot be reached to finish signing in; try again",
                headers={"Retry-After": "5"},
                reason="directory-unreachable",
            ) from exc
        try:
            outcome = json.loads(body)
        except ValueError:
            outcome = {}
        if not isinstance(outcome, dict):
            outcome = {}
        if status == 403:
            return {
                "status": "refused",
                "title": outcome.get("title", "Accès refusé"),
                "detail": outcome.get("detail", ""),
                "reason": str(outcome.get("reason") or "refused")[:40],
            }
        if status == 422:
            raise Problem(400, "that choice is not one of your accounts", title="Sign-in failed")
        if status != 200:
            raise Problem(
                503,
                "the directory could not finish signing in; try again",
                headers={"Retry-After": "5"},
                reason="directory-unreachable",
            )
        if outcome.get("status") == "linked":
            session.person = str(outcome.get("person") or "")
            if outcome.get("refresh"):
                if await self._refresh(session, store=store) is None:
                    raise Problem(400, "the identity provider ended this sign-in; sign in again")
            elif store:
                await self._store(session)
        return outcome

    # -- using a session ------------------------------------------------------------------------

    async def from_cookie(self, header: bytes | str) -> Session | None:
        """The session a Cookie header names, if it is alive."""
        session_id = cookie_value(header, SESSION_COOKIE)
        if not session_id or len(session_id) > 128 or self._sessions is None:
            return None
        key = _hash(session_id)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            entry = await self._sessions.get(key)
        except KeyNotFoundError:
            self._cache.pop(key, None)
            return None
        if entry.value is None or not entry.value:
            return None
        try:
            session = Session(**self._open(key, entry.value))
        except (ValueError, TypeError):
            return None
        if time.time() - session.created > self.settings.session_ttl_seconds:  # however often it was refreshed
            await self.revoke(session)
            return None
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (now, session)
        return session

    async def access_token(self, session: Session, *, acting: bool = True) -> str | None:
        """The session's access token, refreshed first when it is about to expire and the person is `acting`;
        None when it cannot be. A call the page makes on its own (not `acting`) uses the token while it is valid
        and never refreshes it: an idle tab lets its session go idle at Keycloak."""
        now = time.time()
        if session.expires_at - REFRESH_MARGIN > now:
            return session.access_token
        if not acting:
            return session.access_token if session.expires_at - EXPIRY_SKEW > now else None
        running = self._refreshing.get(session.key)
        if running is not None:  # one refresh per session at a time
            return await running
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._refreshing[session.key] = future
        try:
            token = await self._refresh(session)
            future.set_result(token)
            return token
        except BaseException as exc:
            future.set_result(None)
            if isinstance(exc, Exception):
                return None
            raise
        finally:
            self._refreshing.pop(session.key, None)

    async def _refresh(self, session: Session, *, store: bool = True) -> str | None:
        if not session.refresh_token:
            await self.revoke(session)
            return None
        try:
            tokens = await self._token(grant_type="refresh_token", refresh_token=session.refresh_token)
            principal = await self.verifier.verify(tokens["access_token"])
        except Exception:  # the refresh token expired or was revoked at Keycloak: the session ends
            log.info("session refresh refused; session ended")
            await self.revoke(session)
            return None
        if session.person and principal.person_id != session.person:
            # The account now names another person than identity settled at sign-in: written behind identity's back.
            security.warning(
                "session ended: a refreshed token names another person",
                extra={
                    "security_event": "claims-changed",
                    "keycloak_user": session.subject,
                    "settled_person": session.person,
                    "claimed_person": principal.person_id,
                },
            )
            await self.revoke(session)
            return None
        session.access_token = tokens["access_token"]
        session.refresh_token = tokens.get("refresh_token", session.refresh_token)
        session.id_token = tokens.get("id_token", session.id_token)
        session.expires_at = float(principal.claims["exp"])
        if store:
            await self._store(session)
        return session.access_token

    async def revoke(self, session: Session) -> None:
        """End a session here (its cookie no longer works on any gateway process)."""
        self._cache.pop(session.key, None)
        SESSIONS_ENDED.add(1, {"how": "signed out"})
        if self._sessions is not None:
            await self._sessions.delete(session.key)
            if session.sid:
                await self._sessions.delete(_sid_key(session.sid))

    async def backchannel_logout(self, logout_token: str) -> int:
        """Keycloak says a session of its ended (OIDC back-channel logout): ours on it end too; how many.
        The logout token is checked as fully as an ID token (signature, issuer, audience, expiry) and must be
        one (its logout event, a sid, no nonce); Problem 400 otherwise."""
        claims = (await self.id_tokens.verify(logout_token)).claims
        events = claims.get("events")
        if not isinstance(events, dict) or LOGOUT_EVENT not in events or "nonce" in claims:
            raise Problem(400, "not a logout token (no back-channel logout event, or a nonce)")
        sid = claims.get("sid")
        if not isinstance(sid, str) or not sid:
            raise Problem(400, "the logout token names no session (sid)")
        assert self._sessions is not None
        try:
            entry = await self._sessions.get(_sid_key(sid))
        except KeyNotFoundError:
            return 0
        key = entry.value.decode() if entry.value else ""
        self._cache.pop(key, None)
        if key:
            await self._sessions.delete(key)
        await self._sessions.delete(_sid_key(sid))
        SESSIONS_ENDED.add(1, {"how": "keycloak"})
        log.info("session ended by Keycloak (back-channel logout)")
        return 1

    async def end_session_url(self, session: Session | None) -> str:
        """Where to send the browser so that Keycloak ends its own session too."""
        home = self.settings.public_url.rstrip("/") + "/"
        try:
            meta = await self.metadata()
        except Problem:
            return home
        endpoint = meta.get("end_session_endpoint")
        if not endpoint:
            return home
        params = httpx.QueryParams(
            {
                "post_logout_redirect_uri": home,
                "client_id": self.settings.oidc_client_id,
                **({"id_token_hint": session.id_token} if session else {}),
            }
        )
        return f"{endpoint}?{params}"

    # -- storage --------------------------------------------------------------------------------

    async def _store(self, session: Session) -> None:
        assert self._sessions is not None
        await self._sessions.put(session.key, self._seal(session.key, asdict(session)))
        self._cache[session.key] = (time.monotonic(), session)

    def _seal(self, key: str, data: dict[str, Any]) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, json.dumps(data).encode(), key.encode())

    def _open(self, key: str, sealed: bytes) -> dict[str, Any]:
        try:
            return json.loads(self._aead.decrypt(sealed[:12], sealed[12:], key.encode()))
        except Exception as exc:  # InvalidTag: another key, or tampered
            raise ValueError("unreadable session") from exc


def _idp_label(claim: object) -> str:
    """The identity provider as a metric's label: Keycloak's alias (a short name the realm declares), or "local"."""
    if isinstance(claim, str) and claim and len(claim) <= 64 and claim.replace("-", "").replace("_", "").isalnum():
        return claim
    return "local"


def _seconds(expires_in: object) -> float:
    """An access token's lifetime as the token endpoint gave it (`expires_in`), within sane bounds."""
    try:
        return min(max(float(str(expires_in)), 0.0), 86400.0)
    except ValueError:
        return 0.0


def _login_key(state: str) -> str:
    """What a sign-in's sealed cookie is bound to (its state), apart from any session's key."""
    return f"login:{_hash(state)}"


def _sid_key(sid: str) -> str:
    return "sid." + _hash(sid)


def _token(size: int = 24) -> str:
    return base64.urlsafe_b64encode(os.urandom(size)).rstrip(b"=").decode()
