"""The PMB client against the PMB peer over HTTP: both authentication schemes, a search turned into clean
records, and every way a PMB fails told apart — refused, down, slow, not JSON, too large."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from pmb.server import PmbDatabase, PmbPeer

from maille_library.pmb import PmbClient, PmbConnection, PmbRefused, PmbUnavailable

from .conftest import serving

UAI = "0750001A"


@pytest.fixture
async def peer() -> AsyncIterator[tuple[PmbPeer, str]]:
    pmb = PmbPeer(databases={f"cdi{UAI}": PmbDatabase(f"cdi{UAI}")})
    async with serving(pmb) as url:
        yield pmb, url


def connection(url: str, **changes) -> PmbConnection:
    fields = {
        "url": url,
        "source_id": 1,
        "user": "maille",
        "password": "secret-ws",
        "database": f"cdi{UAI}",
        "opac_url": "https://cdi.example.fr/opac",
    } | changes
    return PmbConnection(**fields)


async def test_a_search_gives_clean_records_with_both_authentication_schemes(peer) -> None:
    pmb, url = peer
    client = PmbClient(timeout=2)
    try:
        total, records = await client.search(connection(url), "prince", count=3)
        assert total == 6 and len(records) == 3
        first = records[0]
        assert first.title.startswith("Le Petit Prince") and first.authors == ["Antoine de Saint-Exupéry"]
        assert (
            first.isbn
            and first.publisher
            and first.cover
            and first.summary
            and first.type == "enregistrement sonore musical"
        )  # 995$r j
        assert first.copies == 2 and first.available is not None and 0 <= first.available <= 2
        assert first.opac == f"https://cdi.example.fr/opac/index.php?lvl=notice_display&id={first.id}"
        body = connection(url, auth="body", connexion_phrase="phrase-connexion")
        assert (await client.search(body, "prince", count=3)) == (total, records)
        # Quotes and wildcards are a search term like any other, inside the JSON-RPC parameters.
        assert (await client.search(connection(url), '"petit prince*"'))[0] == 6
        assert (await client.search(connection(url), "zzzz"))[0] == 0
    finally:
        await client.close()


async def test_pmb_refusals_are_told_apart_from_pmb_being_unavailable(peer) -> None:
    pmb, url = peer
    client = PmbClient(timeout=0.3, retries=2, max_bytes=2000)
    try:
        with pytest.raises(PmbRefused, match="Authentication failed"):
            await client.search(connection(url, password="wrong"), "prince")
        with pytest.raises(PmbRefused, match="Authentication failed"):
            await client.search(connection(url, auth="body", connexion_phrase="not-the-phrase"), "prince")
        with pytest.raises(PmbRefused, match="Unknown database: cdi9999999Z"):
            await client.search(connection(url, database="cdi9999999Z"), "prince")
        pmb.failing.add(f"cdi{UAI}")
        with pytest.raises(PmbRefused, match="MySQL server has gone away"):
            await client.search(connection(url), "prince")
        pmb.failing.clear()

        pmb.garbage.add(f"cdi{UAI}")
        with pytest.raises(PmbUnavailable, match="not JSON"):
            await client.search(connection(url), "prince")
        pmb.garbage.clear()

        with pytest.raises(PmbUnavailable, match="more than 2000 bytes"):
            await client.search(connection(url), "prince", count=20)

        pmb.delay = 1.0
        started = time.perf_counter()
        with pytest.raises(PmbUnavailable, match="did not answer within 0.3 s"):
            await client.search(connection(url), "prince")
        assert time.perf_counter() - started < 1.5  # three tries of 0.3 s, not three of PMB's second
        pmb.delay = 0

        with pytest.raises(PmbUnavailable, match="cannot be reached"):
            await client.search(connection("http://127.0.0.1:9/pmb"), "prince")
    finally:
        await client.close()


async def test_reads_are_tried_again_writes_never(peer) -> None:
    pmb, url = peer
    client = PmbClient(timeout=1, retries=2)
    try:
        pmb.garbage.add(f"cdi{UAI}")
        with pytest.raises(PmbUnavailable):
            await client.call(connection(url), "pmbesSearch_simpleSearch", [0, "prince", -1, -1])
        with pytest.raises(PmbUnavailable):
            await client.call(connection(url), "pmbesSearch_simpleSearch", [0, "prince", -1, -1], read=False)
    finally:
        await client.close()
    # The peer answers garbage before it reads the call: count the requests it got instead.
    assert len(pmb.requests) == 3 + 1
