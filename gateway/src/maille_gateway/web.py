"""The gateway's own pages and routes: sign-in and sign-out, the landing page, the merged API document."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from maille_gateway import portal
from maille_gateway.sessions import CSRF_COOKIE, LOGIN_COOKIE, SESSION_COOKIE, Session, cookie_value, safe_next
from maille_kit.auth import Principal
from maille_kit.problems import PROBLEM_TYPES, Problem
from maille_kit.telemetry import meter
from maille_kit.usage import Kind, first

if TYPE_CHECKING:
    from maille_gateway.main import Gateway

router = APIRouter()
OPENAPI_SECONDS = 60
SERVICE_TITLES = {
    "identity": "Annuaire et identité",
    "catalog": "Médiacentre et ressources",
    "messaging": "Messagerie",
    "library": "CDI (PMB)",
    "timeline": "Notifications",
    "support": "Aide",
    "observatory": "Observatoire des usages",
}


def _gateway(request: Request) -> Gateway:
    return request.app.state.gateway


def _cookie(
    response: Response,
    gateway: Gateway,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
    http_only: bool = True,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=http_only,
        secure=gateway.settings.cookie_secure,
        samesite="lax",
    )


async def _session(request: Request) -> tuple[Session | None, Principal | None]:
    gateway = _gateway(request)
    header = request.headers.get("cookie")
    if not header:
        return None, None
    session = await gateway.sessions.from_cookie(header)
    if session is None:
        return None, None
    token = await gateway.sessions.access_token(session)
    if token is None:
        return None, None
    try:
        return session, await gateway.verifier.verify(token)
    except Problem:
        return None, None


# What a person reads when signing in fails, by the problem's reason (or status): title, what happened.
SIGN_IN_FAILURES = {
    "directory-unreachable": (
        "Connexion momentanément impossible",
        "L'annuaire de l'ENT ne répond pas pour le moment : votre connexion n'a pas pu aboutir. "
        "Rien n'est perdu, réessayez dans quelques instants.",
    ),
    "signin-unreachable": (
        "Connexion momentanément impossible",
        "Le service de connexion ne répond pas pour le moment. Réessayez dans quelques instants.",
    ),
    503: (
        "Connexion momentanément impossible",
        "Un service de l'ENT ne répond pas pour le moment. Réessayez dans quelques instants.",
    ),
    400: (
        "La connexion n'a pas abouti",
        "Elle a peut-être pris plus de dix minutes, été déjà utilisée ou commencée dans un autre navigateur. "
        "Reconnectez-vous.",
    ),
}


def _sign_in_failed(problem: Problem, next_path: str) -> HTMLResponse:
    """A problem met while signing in, as a page in French with a way to try again (same status, same Retry-After)."""
    reason = problem.extensions.get("reason")
    title, text = SIGN_IN_FAILURES.get(reason) or SIGN_IN_FAILURES.get(problem.status) or SIGN_IN_FAILURES[400]
    again = f"/login?{httpx.QueryParams({'next': safe_next(next_path)})}"
    label = "Réessayer" if problem.status >= 500 else "Se reconnecter"
    body = f"""<p>{html.escape(text)}</p>
<p><a class="button" href="{html.escape(again)}">{label}</a></p>"""
    return HTMLResponse(_page(title, body), status_code=problem.status, headers=problem.headers)


@router.get("/login", include_in_schema=False)
async def login(request: Request, next: str = "/", idp: str | None = None) -> Response:
    """Send the browser to Keycloak to sign in, then back to `next` (a path of this site)."""
    gateway = _gateway(request)
    try:
        url, state = await gateway.sessions.begin(next, idp)
    except Problem as problem:
        return _sign_in_failed(problem, next)
    response = RedirectResponse(url, status_code=302)
    _cookie(response, gateway, LOGIN_COOKIE, state, max_age=600, path="/auth")
    return response


# Sign-ins by identity provider and outcome: linked, local, choose (an account of several persons), refused
# (identity said no), unavailable (identity did not answer), failed (the answer from Keycloak was not accepted).
SIGN_INS = meter().create_counter("maille.gateway.signins", description="sign-ins completed at the callback")


def _claims(token: str) -> dict[str, Any]:
    """The claims of an access token that has just come from Keycloak's token endpoint over the gateway's own
    connection (checked in full by each service it is sent to): read for the sign-in's use, never trusted beyond."""
    try:
        payload = token.split(".")[1]
        found = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return found if isinstance(found, dict) else {}
    except (IndexError, ValueError):
        return {}


def _tell_sign_in(request: Request, session: Session | None, outcome: dict[str, Any], detail: str = "") -> None:
    """The sign-in as a use the observatory counts: the IdP, the school and profile, how it ended — the person as a
    pseudonym only (`maille_kit.usage`); a sign-in that failed before anyone was known counts under a pseudonym of
    its own."""
    uses = request.app.state.runtime.uses
    if not uses.enabled:
        return
    claims = _claims(session.access_token) if session is not None else {}
    who = str(
        outcome.get("person")
        or claims.get("ent_id")
        or (session.subject if session else "")
        or base64.urlsafe_b64encode(os.urandom(16)).decode()
    )
    uses.record(
        Kind.KIND_SIGN_IN,
        who,
        school=str(outcome.get("school") or first(claims.get("uai"))),
        profile=str(outcome.get("profile") or first(claims.get("profiles"))),
        service="connexion",
        idp=session.idp if session is not None else "inconnu",
        detail=detail,
        classes=[str(c) for c in outcome.get("classes") or []],
    )


@router.get("/auth/callback", include_in_schema=False)
async def callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    """Keycloak sends the browser back here with a code: the session starts."""
    if error:
        return _sign_in_failed(Problem(400, f"sign-in did not complete: {error_description or error}"), "/")
    if not code or not state:
        return _sign_in_failed(Problem(400, "the sign-in answer lacks its code or state"), "/")
    gateway = _gateway(request)
    login_cookie = cookie_value(request.headers.get("cookie", ""), LOGIN_COOKIE)
    try:
        session_id, session, next_path = await gateway.sessions.finish(code, state, login_cookie)
    except Problem as problem:
        SIGN_INS.add(1, {"idp": "unknown", "outcome": "failed"})
        _tell_sign_in(request, None, {}, "failed")
        return _sign_in_failed(problem, "/")
    try:
        outcome = await gateway.sessions.settle(session, store=False)
    except Problem as problem:  # nothing was stored: half signed in is not signed in, the next try starts afresh
        SIGN_INS.add(1, {"idp": session.idp, "outcome": "unavailable"})
        _tell_sign_in(request, session, {}, "unavailable")
        response = _sign_in_failed(problem, next_path)
        response.delete_cookie(LOGIN_COOKIE, path="/auth")
        return response
    SIGN_INS.add(1, {"idp": session.idp, "outcome": str(outcome["status"])})
    refused = outcome["status"] == "refused"
    _tell_sign_in(request, session, outcome, str(outcome.get("reason") or "refused") if refused else "")
    if outcome["status"] == "refused":
        return await _refused(gateway, session, outcome, stored=False)
    await gateway.sessions.save(session)
    redirect: Response
    if outcome["status"] == "choose":
        redirect = RedirectResponse(f"/auth/choose?{httpx.QueryParams({'next': next_path})}", status_code=302)
    else:
        redirect = RedirectResponse(next_path, status_code=302)
    ttl = gateway.settings.session_ttl_seconds
    _cookie(redirect, gateway, SESSION_COOKIE, session_id, max_age=ttl)
    _cookie(redirect, gateway, CSRF_COOKIE, session.csrf, max_age=ttl, http_only=False)  # read by the page's scripts
    redirect.delete_cookie(LOGIN_COOKIE, path="/auth")
    return redirect


async def _refused(gateway: Gateway, session: Session, outcome: dict[str, Any], *, stored: bool = True) -> HTMLResponse:
    """The person may not sign in: say why, end the session here (if it was `stored`) and offer to end it at
    Keycloak."""
    if stored:
        await gateway.sessions.revoke(session)
    leave = await gateway.sessions.end_session_url(session)
    response = HTMLResponse(
        _page(
            str(outcome.get("title") or "Accès refusé"),
            f"""
<p>{html.escape(str(outcome.get("detail") or ""))}</p>
<p><a class="button" href="{html.escape(leave)}">Se déconnecter</a></p>""",
        ),
        status_code=403,
    )
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/auth")
    return response


@router.get("/auth/choose", include_in_schema=False)
async def choose_page(request: Request, next: str = "/") -> Response:
    """A person with several directory entries (a parent with children in two schools) picks one, once."""
    gateway = _gateway(request)
    session = await gateway.sessions.from_cookie(request.headers.get("cookie", ""))
    if session is None:
        return RedirectResponse(f"/login?{httpx.QueryParams({'next': safe_next(next)})}", status_code=302)
    outcome = await gateway.sessions.settle(session)
    if outcome["status"] == "refused":
        return await _refused(gateway, session, outcome)
    if outcome["status"] != "choose":
        return RedirectResponse(safe_next(next), status_code=302)
    rows = []
    for n, candidate in enumerate(outcome.get("candidates", [])):
        schools = ", ".join(candidate.get("schools", []))
        children = ", ".join(candidate.get("children", []))
        label = f"{candidate.get('first_name', '')} {candidate.get('last_name', '')} — {schools}" + (
            f" (enfants : {children})" if children else ""
        )
        rows.append(
            '<li><label><input type="radio" name="choice" '
            f'value="{html.escape(candidate["id"])}"{" checked" if n == 0 else ""}/> '
            f"{html.escape(label)}</label></li>"
        )
    return HTMLResponse(
        _page(
            "Choisissez votre compte",
            f"""
<p>Plusieurs comptes de l'annuaire correspondent à votre connexion. Choisissez celui à utiliser ;
ce choix sera retenu pour vos prochaines connexions.</p>
<form method="post" action="/auth/choose">
<input type="hidden" name="csrf" value="{html.escape(session.csrf)}"/>
<input type="hidden" name="next" value="{html.escape(safe_next(next))}"/>
<ul class="choices">{"".join(rows)}</ul>
<button type="submit">Continuer</button></form>""",
        )
    )


@router.post("/auth/choose", include_in_schema=False)
async def choose(request: Request) -> Response:
    """The choice made: identity records it as the account's link."""
    gateway = _gateway(request)
    session = await gateway.sessions.from_cookie(request.headers.get("cookie", ""))
    if session is None:
        raise Problem(401, "sign in first", title="Not signed in")
    form = parse_qs((await request.body())[:4096].decode("latin-1"))
    if not session.csrf_matches((form.get("csrf") or [""])[0].encode()):
        raise Problem(403, "this form did not come from this site (CSRF token missing or wrong)", title="Forbidden")
    choice = (form.get("choice") or [""])[0]
    if not re.fullmatch(r"[0-9a-f]{24}", choice):
        raise Problem(400, "choose one of the accounts listed", title="Sign-in failed")
    outcome = await gateway.sessions.settle(session, choice)
    if outcome["status"] == "refused":
        return await _refused(gateway, session, outcome)
    return RedirectResponse(safe_next((form.get("next") or ["/"])[0]), status_code=303)


# What the portal may say a person opened (its screens, and its home page).
OPENED = frozenset({*portal.SCREENS, "accueil", "observatoire"})


@router.post("/api/uses", include_in_schema=False, status_code=204)
async def opened(request: Request) -> Response:
    """The portal says a person opened one of its screens: a use the observatory counts (nothing else is kept)."""
    gateway = _gateway(request)
    session = await gateway.sessions.from_cookie(request.headers.get("cookie", ""))
    if session is None:
        raise Problem(401, "sign in first", title="Not signed in")
    if not session.csrf_matches((request.headers.get("x-csrf-token") or "").encode()):
        raise Problem(403, "this call did not come from this site (CSRF token missing or wrong)", title="Forbidden")
    try:
        body = json.loads((await request.body())[:1024] or b"{}")
    except ValueError:
        raise Problem(400, 'the body is not JSON: send {"service": "messagerie"}') from None
    service = body.get("service") if isinstance(body, dict) else None
    if service not in OPENED:
        raise Problem(422, f"service must be one of the portal's screens: {', '.join(sorted(OPENED))}")
    uses = request.app.state.runtime.uses
    claims = _claims(session.access_token)
    uses.record(
        Kind.KIND_SERVICE_OPENED,
        session.person or str(claims.get("ent_id") or session.subject),
        school=first(claims.get("uai")),
        profile=first(claims.get("profiles")),
        service=str(service),
    )
    return Response(status_code=204)


@router.get("/logout", include_in_schema=False)
async def logout_page(request: Request) -> Response:
    """Signing out is a POST with the session's CSRF token (a link or an image elsewhere cannot sign anyone out):
    a GET shows the button."""
    gateway = _gateway(request)
    session = await gateway.sessions.from_cookie(request.headers.get("cookie", ""))
    if session is None:
        return RedirectResponse("/", status_code=302)
    return HTMLResponse(
        _page(
            "Se déconnecter",
            f"""
<p>Voulez-vous vous déconnecter de l'ENT ?</p>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{html.escape(session.csrf)}"/>
<button type="submit">Se déconnecter</button></form>""",
        )
    )


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    """End the session here and at Keycloak (the form's `csrf` field, or the X-CSRF-Token header, must match)."""
    gateway = _gateway(request)
    session = await gateway.sessions.from_cookie(request.headers.get("cookie", ""))
    if session is not None:
        form = parse_qs((await request.body())[:4096].decode("latin-1"))
        sent = request.headers.get("x-csrf-token") or (form.get("csrf") or [""])[0]
        if not session.csrf_matches(sent.encode()):
            raise Problem(
                403, "this sign-out did not come from this site (CSRF token missing or wrong)", title="Forbidden"
            )
        await gateway.sessions.revoke(session)
        if session.person:
            gateway.live.end_person(session.person)  # its open pages here stop hearing (others of the person reopen)
    response = RedirectResponse(await gateway.sessions.end_session_url(session), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/auth/backchannel-logout", include_in_schema=False)
async def backchannel_logout(request: Request) -> Response:
    """Keycloak ends one of its sessions (signed out elsewhere, by an admin, an account disabled): ours on it end."""
    form = parse_qs((await request.body())[:16384].decode("latin-1"))
    token = (form.get("logout_token") or [""])[0]
    if not token:
        raise Problem(400, "the form has no logout_token")
    await _gateway(request).sessions.backchannel_logout(token)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


@router.get("/", include_in_schema=False)
async def landing(request: Request) -> Response:
    """The portal; where none was built, a plain page: who you are and what you can open."""
    built = portal.page(request)
    if built is not None:
        return built
    gateway = _gateway(request)
    session, principal = await _session(request)
    if session is None or principal is None:
        return HTMLResponse(
            _page(
                "Maille",
                """
<p>L'espace numérique de travail de votre établissement.</p>
<p><a class="button" href="/login">Se connecter</a></p>""",
            )
        )
    me = await _me(gateway, principal, session.access_token)
    profiles = ""
    if me is not None:
        rows = "".join(
            f"<li>{html.escape(str(p.get('code', '')))} — {html.escape(str(p.get('structure', '')))}</li>"
            for p in me.get("profiles", [])
        )
        profiles = f"<h2>Vos profils</h2><ul>{rows or '<li>aucun</li>'}</ul>"
    else:
        profiles = "<p>Votre compte n'est pas encore relié à l'annuaire.</p>"
    opens = []
    for name in gateway.upstreams.by_name:
        path = f"/api/{name}/"
        if gateway.policies.allows(path, principal) is None:
            opens.append(f"<li>{html.escape(SERVICE_TITLES.get(name, name))} <code>{html.escape(path)}</code></li>")
    roles = ", ".join(
        sorted(r for r in principal.roles if not r.startswith(("default-roles-", "offline_access", "uma_")))
    )
    return HTMLResponse(
        _page(
            "Maille",
            f"""
<p>Bonjour <strong>{html.escape(session.name)}</strong>.</p>
{profiles}
<p>Rôles : {html.escape(roles) or "—"}</p>
<h2>Ce que vous pouvez ouvrir</h2>
<ul>{"".join(opens)}<li>La documentation des API <a href="/api/docs">/api/docs</a></li></ul>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{html.escape(session.csrf)}"/>
<button type="submit">Se déconnecter</button></form>""",
        )
    )


async def _me(gateway: Gateway, principal: Principal, token: str) -> dict[str, Any] | None:
    if principal.person_id is None or "identity" not in gateway.settings.routes:
        return None
    try:
        answer = await gateway.sessions.http.get(
            f"{gateway.settings.routes['identity'].rstrip('/')}/api/identity/v1/me",
            headers={"authorization": f"Bearer {token}"},
            timeout=3,
        )
        return answer.json() if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "a.button,button{display:inline-block;padding:.5rem 1rem;border:1px solid #2a5db0;border-radius:4px;background:#2a5db0;"  # noqa: E501
    "color:#fff;text-decoration:none;cursor:pointer;font:inherit}"
)
# The pages' one inline style, allowed by its hash in their Content-Security-Policy (no 'unsafe-inline').
PAGE_STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(PAGE_STYLE.encode()).digest()).decode()


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style></head>
<body><h1>{html.escape(title)}</h1>{body}</body></html>"""


# -- what each problem means ------------------------------------------------------------------------


@router.get("/problems", include_in_schema=False)
async def problem_types() -> HTMLResponse:
    """Every kind of problem the API answers with, each linking its page."""
    items = "".join(
        f'<li><a href="/problems/{kind.slug}">{status} — {html.escape(kind.title)}</a> : '
        f"{html.escape(kind.meaning)}</li>"
        for status, kind in sorted(PROBLEM_TYPES.items())
    )
    return HTMLResponse(
        _page("Les erreurs de l'API de Maille", f"<ul>{items}</ul>"), headers={"Cache-Control": "public, max-age=3600"}
    )


@router.get("/problems/{slug}", include_in_schema=False)
async def problem_type(slug: str) -> HTMLResponse:
    """The page a problem's `type` names: what it means, what to do."""
    found = next(((status, kind) for status, kind in PROBLEM_TYPES.items() if kind.slug == slug), None)
    if found is None:
        raise Problem(404, f"no problem type {slug!r}: the list is at /problems")
    status, kind = found
    body = (
        f"<p><strong>HTTP {status} — {html.escape(kind.title)}</strong> (<code>/problems/{kind.slug}</code>)</p>"
        f"<p>{html.escape(kind.meaning)}</p><p>Que faire : {html.escape(kind.remedy)}</p>"
        "<p>Le document d'erreur (RFC 9457) donne aussi <code>detail</code> (ce qui ne va pas), parfois "
        "<code>errors</code> (champ par champ) et toujours <code>request_id</code> (à donner au support).</p>"
        '<p><a href="/problems">Toutes les erreurs</a></p>'
    )
    return HTMLResponse(_page(kind.title, body), headers={"Cache-Control": "public, max-age=3600"})


# -- one API document -----------------------------------------------------------------------------


@router.get("/api/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    """The services' OpenAPI documents merged into one (paths as the gateway serves them)."""
    gateway = _gateway(request)
    cached = gateway.state.get("openapi")
    if cached is None or time.monotonic() - cached[0] > OPENAPI_SECONDS:
        cached = (time.monotonic(), await merged_openapi(gateway))
        gateway.state["openapi"] = cached
    return JSONResponse(cached[1])


@router.get("/api/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    """The merged document, browsable: Swagger UI served from the gateway itself (no CDN: it works offline)."""
    return HTMLResponse(
        """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Maille — API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script><script
        src="/api/docs/assets/init.js"></script></body></html>""",
        headers={"content-security-policy": DOCS_POLICY, "cache-control": "no-cache"},
    )


DOCS_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
# Swagger UI sets style attributes as it renders: styles inline are allowed on this page, scripts only from here.
DOCS_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
DOCS_INIT = b'window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true});\n'


@router.get("/api/docs/assets/{name}", include_in_schema=False)
async def docs_asset(name: str) -> Response:
    """Swagger UI's files (from the swagger-ui-bundle package), cached by browsers for a day."""
    if name == "init.js":
        return Response(DOCS_INIT, media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})
    if name not in DOCS_ASSETS:
        raise Problem(404, f"no asset {name}")
    return FileResponse(
        Path(swagger_ui_path) / name, media_type=DOCS_ASSETS[name], headers={"cache-control": "public, max-age=86400"}
    )


async def merged_openapi(gateway: Gateway) -> dict[str, Any]:
    async def fetch(name: str, url: str) -> tuple[str, dict[str, Any] | None]:
        try:
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                answer = await client.get("/openapi.json")
            return name, answer.json() if answer.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return name, None

    documents = await asyncio.gather(*(fetch(name, url) for name, url in gateway.settings.routes.items()))
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Maille",
            "version": gateway.version,
            "description": "Every service of Maille, as the gateway serves them. Sign in (browser session) or send a "
            "bearer token.",
        },
        "servers": [{"url": gateway.settings.public_url.rstrip("/")}],
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
        "tags": [],
    }
    missing = []
    for name, document in documents:
        if document is None:
            missing.append(name)
            continue
        prefix = f"{name}."
        renamed = _rename_refs(document, prefix)
        for schema, body in renamed.get("components", {}).get("schemas", {}).items():
            merged["components"]["schemas"][prefix + schema] = body
        for path, item in renamed.get("paths", {}).items():
            if path.startswith(f"/api/{name}/"):  # health routes and the like are not part of the API
                merged["paths"][path] = item
        merged["tags"].append({"name": name, "description": SERVICE_TITLES.get(name, name)})
    if missing:
        merged["info"]["x-maille-missing"] = sorted(missing)
    return merged


def _rename_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                out[key] = "#/components/schemas/" + prefix + value.rsplit("/", 1)[1]
            else:
                out[key] = _rename_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, prefix) for item in node]
    return node


@router.api_route(
    "/api/{service}/{path:path}",
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def unknown_service(service: str, path: str) -> None:
    raise Problem(404, f"No service answers /api/{service}/.", title="Unknown route")
