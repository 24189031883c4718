"""Where an upstream IdP takes AuthnRequests by HTTP-Redirect, read from its SAML metadata as it serves it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from maille_identity.federation.keycloak import KeycloakUnavailable, _redirect_sign_on

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


def metadata(*services: tuple[str, str], prolog: str = "") -> bytes:
    listed = "".join(f'<md:SingleSignOnService Binding="{b}" Location="{loc}"/>' for b, loc in services)
    return (
        f'<?xml version="1.0"?>{prolog}<md:EntityDescriptor xmlns:md="{MD}" entityID="https://idp.example/">'
        f'<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{listed}'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    ).encode()


@pytest.fixture
def serve() -> Iterator:
    """Serve one document over HTTP on loopback; its URL."""
    servers = []

    def start(body: bytes) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("content-type", "application/samlmetadata+xml")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/idp/metadata"

    yield start
    for server in servers:
        server.shutdown()


async def test_the_redirect_address_is_taken_whatever_comes_first(serve) -> None:
    url = serve(metadata((POST, "https://idp.example/sso/post"), (REDIRECT, "https://idp.example/sso/redirect")))
    assert await _redirect_sign_on(url) == "https://idp.example/sso/redirect"


async def test_metadata_without_a_redirect_address_is_refused_saying_so(serve) -> None:
    url = serve(metadata((POST, "https://idp.example/sso/post")))
    with pytest.raises(KeycloakUnavailable, match="no HTTP-Redirect sign-on address"):
        await _redirect_sign_on(url)


async def test_an_external_entity_in_the_metadata_is_never_read(serve, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do-not-leak")
    prolog = f'<!DOCTYPE md:EntityDescriptor [<!ENTITY leak SYSTEM "file://{secret}">]>'
    url = serve(metadata((REDIRECT, "https://idp.example/&leak;"), prolog=prolog))
    try:
        found = await _redirect_sign_on(url)
    except KeycloakUnavailable:
        return  # refused outright: nothing read
    assert "do-not-leak" not in found


async def test_unreadable_metadata_names_its_address(serve) -> None:
    url = serve(b"<not xml")
    with pytest.raises(KeycloakUnavailable, match="cannot be read"):
        await _redirect_sign_on(url)
