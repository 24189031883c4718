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
    return jwt.encode(
        {"alg": "RS256", "kid": "k1"}, {"iss": ISSUER, "aud": "maille", "sub": "s", "exp": now + 60, **claims}, KEY
    )


async def test_a_good_token_names_its_caller() -> None:
    principal = await verifier().verify(token(realm_access={"roles": ["operator"]}, azp="vendor-1"))
    assert (principal.subject, principal.client_id, principal.roles) == ("s", "vendor-1", frozenset({"operator"}))


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"exp": -120}, "expired"),  # seconds from now (the moment the test runs, not when it was collected)
        ({"nbf": 600}, "not yet valid"),
        ({"iss": "http://elsewhere/realms/x"}, "not valid here"),
        ({"aud": ["account"]}, "not meant for 'maille'"),
        ({"sub": ""}, "names no subject"),
        ({"sub": ["a", "b"]}, "sub"),
    ],
)
async def test_refused_tokens_say_why(claims: dict, says: str) -> None:
    claims = {k: int(time.time()) + v if k in ("exp", "nbf") else v for k, v in claims.items()}
    with pytest.raises(Problem) as refused:
        await verifier().verify(token(**claims))
    assert refused.value.status == 401 and says in refused.value.detail
    assert refused.value.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


async def test_a_token_is_remembered_until_it_expires_and_no_longer() -> None:
    checker = verifier()
    short = token(exp=int(time.time()) + 1, sub="brief")
    assert (await checker.verify(short)).subject == "brief"
    checker._keys = KeySet(
        [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
    )  # its key is gone: only the cache answers
    assert (await checker.verify(short)).subject == "brief"
    checker.leeway = 0
    checker._verified[short] = (time.time() - 1, *checker._verified[short][1:])  # its expiry passes
    with pytest.raises(Problem):
        await checker.verify(short)


async def test_made_up_key_ids_do_not_flood_the_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import httpx

    fetches = []

    async def fake_get(self, url, **kwargs):  # the issuer's JWKS endpoint, counting its callers
        fetches.append(time.monotonic())
        return httpx.Response(200, json={"keys": [KEY.as_dict(private=False)]}, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx.AsyncClient, "get", fake_get)
    checker = verifier()
    forged = [
        jwt.encode(
            {"alg": "RS256", "kid": f"made-up-{i}"},
            {"iss": ISSUER, "aud": "maille", "sub": "x", "exp": int(time.time()) + 60},
            KEY,
        )
        for i in range(30)
    ]
    started = time.monotonic()
    results = await asyncio.gather(*(checker.verify(t) for t in forged), return_exceptions=True)
    assert all(isinstance(r, Problem) and r.status == 401 for r in results)
    assert (
        len(fetches) <= 2 and time.monotonic() - started < 3
    )  # one fetch a second at most, the waiters released together
    # A real new key still gets in: its token is accepted after one fetch.
    assert (await checker.verify(token(sub="fine"))).subject == "fine"
