"""Token checks that a real issuer does not easily produce: expired, not yet valid, another issuer."""

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from maille_kit.auth import TokenVerifier
from maille_kit.problems import Problem

ISSUER = "http://keycloak.test/realms/maille"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


def verifier() -> TokenVerifier:
    checker = TokenVerifier(issuer=ISSUER, audience="maille")
    checker._keys, checker._fetched = KeySet([KEY]), time.monotonic()  # the issuer's JWKS, as if fetched
    return checker


def token(**claims) -> str:
    now = int(time.time())
    return jwt.encode({"alg": "RS256", "kid": "k1"}, {"iss": ISSUER, "aud": "maille", "sub": "s", "exp": now + 60, **claims}, KEY)


async def test_a_good_token_names_its_caller() -> None:
    principal = await verifier().verify(token(realm_access={"roles": ["operator"]}, azp="vendor-1"))
    assert (principal.subject, principal.client_id, principal.roles) == ("s", "vendor-1", frozenset({"operator"}))


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not yet valid"),
        ({"iss": "http://elsewhere/realms/x"}, "not valid here"),
        ({"aud": ["account"]}, "not meant for 'maille'"),
    ],
)
async def test_refused_tokens_say_why(claims: dict, says: str) -> None:
    with pytest.raises(Problem) as refused:
        await verifier().verify(token(**claims))
    assert refused.value.status == 401 and says in refused.value.detail
    assert refused.value.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
