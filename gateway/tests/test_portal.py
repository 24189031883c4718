"""The portal as the gateway serves it: its page never kept, its hashed assets kept a year, gzip where the browser
takes it, its screens' addresses answered with its page, and nothing outside its folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest

from maille_gateway.main import Gateway
from maille_gateway.settings import GatewaySettings


@pytest.fixture
def portal(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><html lang="fr"><div id="root"></div></html>')
    script = b"console.log('maille');" * 50
    (tmp_path / "assets" / "index-AbC123.js").write_bytes(script)
    (tmp_path / "assets" / "index-AbC123.js.gz").write_bytes(gzip.compress(script))
    (tmp_path.parent / "secret.txt").write_text("not for you")
    return tmp_path


def client(portal: Path) -> httpx.AsyncClient:
    settings = GatewaySettings(environment="development", portal_dir=str(portal), routes={})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=Gateway(settings)), base_url="http://gw")


async def test_the_page_is_never_kept_and_allows_only_what_the_portal_needs(portal: Path) -> None:
    async with client(portal) as gw:
        for path in ("/", "/messagerie", "/messagerie/message/abc", "/cdi", "/mediacentre?q=x"):
            answer = await gw.get(path)
            assert answer.status_code == 200 and 'id="root"' in answer.text, path
            assert answer.headers["cache-control"] == "no-cache"
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self';" in policy and "connect-src 'self';" in policy and "unsafe" not in policy
            assert "style-src 'self' 'sha256-" in policy  # React-DSFR's colour-scheme style, by its hash


async def test_hashed_assets_are_kept_a_year_and_sent_gzipped(portal: Path) -> None:
    async with client(portal) as gw:
        packed = await gw.get("/assets/index-AbC123.js", headers={"accept-encoding": "gzip"})
        assert packed.status_code == 200 and packed.headers["content-encoding"] == "gzip"
        assert packed.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert packed.headers["content-type"].startswith("text/javascript")
        assert packed.text.startswith("console.log")  # httpx unpacked it: the same script
        plain = await gw.get("/assets/index-AbC123.js", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == packed.content


async def test_nothing_outside_the_portal_is_served(portal: Path) -> None:
    async with client(portal) as gw:
        for path in ("/assets/missing.js", "/assets/..%2Fsecret.txt", "/assets/%2E%2E%2F..%2Fsecret.txt"):
            answer = await gw.get(path)
            assert answer.status_code == 404 and "not for you" not in answer.text, path
