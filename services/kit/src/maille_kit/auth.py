"""Who is calling: bearer tokens issued by Keycloak, validated fully by every service itself.

A request reaches a service with `Authorization: Bearer <JWT>` (from the gateway, or from an API
client). The token's signature is checked against the issuer's published keys (JWKS, cached, fetched
again when a token names a key not seen yet — that is how a key rotation arrives), and its issuer,
audience, expiry and not-before. A validated token is remembered until it expires (a bounded cache
keyed by the token itself), so that a caller's requests cost one signature check per token, not one
each; when the issuer withdraws a key, the tokens it signed leave that cache at the next fetch of the
keys. A request without a valid token gets 401 with `WWW-Authenticate`;
one whose token lacks the role a route asks for, 403. Tokens are never logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from joserfc import errors, jwt
from joserfc.jwk import KeySet

from maille_kit.problems import Problem

REFETCH_SECONDS = 1.0
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class Principal:
    """The caller: a person (subject) or an API client, with their roles."""

    subject: str
    client_id: str
    roles: frozenset[str]
    claims: dict[str, Any] = field(repr=False, compare=False)

    @property
    def scopes(self) -> frozenset[str]:
        """The OAuth2 scopes the token grants (claim `scope`)."""
        return frozenset(str(self.claims.get("scope", "")).split())

    @property
    def person_id(self) -> str | None:
        """The directory person the token speaks for (claim `ent_id`, set at sign-in), if any."""
        value = self.claims.get("ent_id")
        return value if isinstance(value, str) and value else None


class TokenVerifier:
    """Validates bearer tokens of one issuer for one audience."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        refresh_after: float = 3600,
        leeway: int = 30,
        cache_size: int = 50_000,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks_url = jwks_url or f"{self.issuer}/protocol/openid-connect/certs"
        self.refresh_after = refresh_after
        self.leeway = leeway
        self._keys: KeySet | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()
        self.cache_size = cache_size
        self._verified: dict[str, tuple[float, str, Principal]] = {}  # token -> (expiry, key id, caller)
        self._registry = jwt.JWTClaimsRegistry(
            leeway=leeway,
            iss={"essential": True, "value": self.issuer},
            exp={"essential": True},  # nbf and iat are checked too when present
        )

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        asked = time.monotonic()
        if not refresh and self._keys is not None and asked - self._fetched <= self.refresh_after:
            return self._keys  # the usual case: no lock, no wait
        async with self._lock:
            if refresh and self._keys is not None and self._fetched >= asked:
                return self._keys  # fetched again by another request while this one waited
            age = time.monotonic() - self._fetched
            if refresh and age < REFETCH_SECONDS:
                # An unknown key id fetches the keys again, but at most once every REFETCH_SECONDS
                # (waiting for it, under the lock): tokens naming made-up key ids must not turn into a
                # flood of requests to the issuer.
                await asyncio.sleep(REFETCH_SECONDS - age)
            if self._keys is None or age > self.refresh_after or refresh:
                async with httpx.AsyncClient(timeout=5) as client:
                    response = await client.get(self.jwks_url)
                    response.raise_for_status()
                keys = KeySet.import_key_set(response.json())
                if self._keys is not None:
                    withdrawn = {k.kid for k in self._keys.keys} - {k.kid for k in keys.keys}
                    if withdrawn:
                        self._verified = {t: v for t, v in self._verified.items() if v[1] not in withdrawn}
                self._keys = keys
                self._fetched = time.monotonic()
            return self._keys

    async def verify(self, token: str) -> Principal:
        """The caller the token names; `Problem` 401 saying what is wrong with it otherwise."""
        cached = self._verified.get(token)
        if cached is not None:
            if time.time() < cached[0]:
                return cached[2]
            del self._verified[token]
        principal, expiry, kid = await self._verify(token)
        if len(self._verified) >= self.cache_size:
            self._evict()
        self._verified[token] = (expiry, kid, principal)
        return principal

    def known(self, token: str) -> Principal | None:
        """The caller of a token verified before and not expired since; None otherwise (then `verify`)."""
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[0]:
            return cached[2]
        return None

    def _evict(self) -> None:
        """Make room: drop the expired tokens, and the oldest half if that is not enough."""
        now = time.time()
        kept = {t: v for t, v in self._verified.items() if v[0] > now}
        if len(kept) >= self.cache_size:
            kept = dict(list(kept.items())[len(kept) // 2 :])
        self._verified = kept

    async def _verify(self, token: str) -> tuple[Principal, float, str]:
        try:
            keys = await self._key_set()
            try:
                decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            except (errors.InvalidKeyIdError, errors.MissingKeyError, ValueError):
                # A key not seen yet: the issuer may have rotated its keys since the last fetch.
                decoded = jwt.decode(token, await self._key_set(refresh=True), algorithms=ALGORITHMS)
            self._registry.validate(decoded.claims)
        except errors.ExpiredTokenError:
            raise _unauthorized("the token has expired", "invalid_token") from None
        except (errors.InvalidClaimError, errors.MissingClaimError, errors.InvalidTokenError) as exc:
            raise _unauthorized(
                f"the token is not valid here: {exc.description or exc.error}", "invalid_token"
            ) from None
        except errors.BadSignatureError:
            raise _unauthorized("the token's signature does not match the issuer's keys", "invalid_token") from None
        except (errors.JoseError, ValueError, KeyError):
            raise _unauthorized("the token is malformed", "invalid_token") from None
        except httpx.HTTPError:
            raise Problem(503, "the token issuer's keys cannot be fetched now", headers={"Retry-After": "5"}) from None
        claims = decoded.claims
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else list(audiences)
        if self.audience not in audiences:
            raise _unauthorized(f"the token is not meant for {self.audience!r}", "invalid_token")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _unauthorized("the token names no subject (sub)", "invalid_token")
        roles = set(claims.get("realm_access", {}).get("roles", []))
        principal = Principal(subject=subject, client_id=claims.get("azp", ""), roles=frozenset(roles), claims=claims)
        # Remembered no longer than the token lives (exp is checked above, so it is a number).
        return principal, float(claims["exp"]) + self.leeway, str(decoded.header.get("kid", ""))


def _unauthorized(detail: str, error: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": f'Bearer error="{error}", error_description="{detail}"'})


def bearer(request: Request) -> str:
    """The bearer token of the request; 401 when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, "a bearer token is required", headers={"WWW-Authenticate": 'Bearer realm="maille"'})
    return token.strip()


def require(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the verified caller, who must hold every one of `roles`."""

    async def dependency(request: Request) -> Principal:
        verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
        if verifier is None:
            raise Problem(503, "this service has no token issuer configured")
        principal = await verifier.verify(bearer(request))
        missing = [role for role in roles if role not in principal.roles]
        if missing:
            raise Problem(403, f"this needs the role {', '.join(missing)}")
        request.state.principal = principal  # for what runs after, scoped by caller (an Idempotency-Key)
        return principal

    return dependency


# Who a route lets in, as the parameter's type: anyone signed in (a person or a client), an operator, a vendor (a
# client of the realm holding the role); each verified in full, as `require` does.
Caller = Annotated[Principal, Depends(require())]
Operator = Annotated[Principal, Depends(require("operator"))]
Vendor = Annotated[Principal, Depends(require("vendor"))]
