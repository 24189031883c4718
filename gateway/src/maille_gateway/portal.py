"""The portal (`portal/`, built by Vite) served at `/`: its screens' addresses answered with its page, its assets by
name. Every asset's name carries a hash of its content, so a browser keeps it a year and never asks again; the page,
which names them, is never kept (a new portal is seen at the next visit). A browser that takes gzip gets the
compressed copy the build wrote beside each file."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

if TYPE_CHECKING:
    from maille_gateway.settings import GatewaySettings

router = APIRouter()
# The screens of the portal, each a real address (a link, a bookmark, the page reloaded): answered with its page.
SCREENS = (
    "messagerie",
    "mediacentre",
    "cdi",
    "compte",
    "enfants",
    "classes",
    "administration",
    "notifications",
    "actualites",
    "desabonnement",
    "aide",
    "observatoire",
)
ASSET = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
YEAR = "public, max-age=31536000, immutable"
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
}


def portal_dir(settings: GatewaySettings) -> Path | None:
    """Where the built portal is, or None where none was built (the gateway then shows a plain sign-in page)."""
    candidates = (
        [Path(settings.portal_dir)]
        if settings.portal_dir
        else [
            Path(__file__).resolve().parents[3] / "portal" / "dist",  # the sources' checkout (make run, the tests)
            Path("/app/portal"),  # the gateway's image
        ]
    )
    return next((path for path in candidates if (path / "index.html").is_file()), None)


# The one inline style the portal makes: React-DSFR's `<style>` telling the browser the page's colour scheme (light or
# dark), allowed by the hash of each of its two possible texts — no 'unsafe-inline'.
SCHEME_STYLES = tuple(
    "'sha256-"
    + base64.b64encode(hashlib.sha256(f":root {{ color-scheme: {scheme}; }}".encode()).digest()).decode()
    + "'"
    for scheme in ("light", "dark")
)


def policy(settings: GatewaySettings) -> bytes:
    """What the portal's page may load: its own scripts, styles and fonts; images from anywhere over HTTPS (the
    resources' logos are their vendors'); calls to this site only; forms to this site and to Keycloak (sign-out)."""
    issuer = urlsplit(settings.auth_issuer)
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self' {' '.join(SCHEME_STYLES)}; "
        "img-src 'self' data: https:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        f"form-action 'self' {issuer.scheme}://{issuer.netloc}"
    ).encode()


def _file(request: Request, path: Path, cache: str) -> Response:
    media_type = TYPES.get(path.suffix) or ("text/html; charset=utf-8" if path.suffix == ".html" else None)
    headers = {"cache-control": cache, "vary": "accept-encoding"}  # (nosniff: the kit's middleware, on every answer)
    packed = path.with_name(path.name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and packed.is_file():
        return FileResponse(packed, media_type=media_type, headers={**headers, "content-encoding": "gzip"})
    return FileResponse(path, media_type=media_type, headers=headers)


def page(request: Request) -> Response | None:
    """The portal's page (never kept by the browser), or None where no portal was built."""
    root = portal_dir(request.app.state.gateway.settings)
    if root is None:
        return None
    answer = _file(request, root / "index.html", "no-cache")
    answer.headers["content-security-policy"] = request.app.state.gateway.portal_policy.decode()
    return answer


@router.get("/assets/{name}", include_in_schema=False)
async def asset(request: Request, name: str) -> Response:
    root = portal_dir(request.app.state.gateway.settings)
    path = root / "assets" / name if root is not None and ASSET.match(name) else None
    if path is None or not path.is_file():
        return Response("no such asset", status_code=404, media_type="text/plain")
    return _file(request, path, YEAR)


@router.get("/favicon.svg", include_in_schema=False)
async def favicon(request: Request) -> Response:
    root = portal_dir(request.app.state.gateway.settings)
    if root is None or not (root / "favicon.svg").is_file():
        return Response(status_code=404)
    return _file(request, root / "favicon.svg", "public, max-age=86400")


for screen in SCREENS:

    @router.get(f"/{screen}", include_in_schema=False)
    @router.get(f"/{screen}/{{rest:path}}", include_in_schema=False)
    async def screen_page(request: Request) -> Response:
        return page(request) or Response("the portal is not built (make setup builds it)", status_code=404)
