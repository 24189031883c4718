"""A SAML 2.0 identity provider on pysaml2 that signs in the persons of Maille's directory.

It plays an upstream IdP Maille cannot reach here (EduConnect, the académie's agent IdP): AuthnRequests
come by HTTP-Redirect (signed over the query) or HTTP-POST (signed in the XML) and must be signed by the SP
named in the SP's metadata; responses go back by HTTP-POST, the assertion signed (RSA-SHA256), the response
around it too where the profile says so. The username is the person's AAF join key, the
password the one the peer was started with. What it releases is given by a `Profile`.

The peer's accounts are the directory's persons (what EduConnect knows of a person comes, in the real
world, from the same national sources as the AAF feed); they are read from identity's database once and
again when an unknown username comes — a peer's shortcut, never something a Maille service does.
"""

from __future__ import annotations

import base64
import html
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, Response
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.s_utils import UnknownPrincipal
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import SignatureError
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

log = logging.getLogger("peer.saml")
Person = dict[str, Any]
METADATA_SECONDS = 30.0
DIRECTORY_SECONDS = 1.0


@dataclass(frozen=True)
class Profile:
    """What one kind of upstream IdP releases: its name, its attributes (OID -> friendly name), who may
    sign in, and the attributes of a signed-in person."""

    name: str
    title: str
    attributes: dict[str, str]
    accepts: Callable[[Person], bool]
    release: Callable[[Person, Directory], dict[str, list[str]]]
    subject: Callable[[Person, Directory], str]  # the persistent NameID
    # Whether the Response is signed as well as its Assertion (EduConnect signs the assertion only).
    signs_response: bool = True


class Directory:
    """The directory's persons, by AAF join key (read from identity's database, refreshed on a miss)."""

    FIELDS = {
        "_id": 1,
        "keys": 1,
        "kind": 1,
        "last_name": 1,
        "first_name": 1,
        "birth_date": 1,
        "civility": 1,
        "emails": 1,
        "mobile": 1,
        "profiles": 1,
        "mef": 1,
        "tenant": 1,
    }

    def __init__(self, mongodb_url: str, database: str) -> None:
        from pymongo import MongoClient

        self.client = MongoClient(mongodb_url, serverSelectionTimeoutMS=5000)
        self.persons = self.client[database]["persons"]
        self.by_key: dict[str, Person] = {}
        self.parents_by_name: dict[tuple[str, str, str], list[Person]] = {}
        self.loaded = 0.0

    def load(self) -> None:
        by_key: dict[str, Person] = {}
        parents: dict[tuple[str, str, str], list[Person]] = {}
        for person in self.persons.find({}, self.FIELDS, batch_size=5000):
            for key in person.get("keys", []):
                by_key[key] = person
            if person.get("kind") == "parent":
                parents.setdefault(self._contact(person), []).append(person)
        self.by_key, self.parents_by_name, self.loaded = by_key, parents, time.monotonic()

    def find(self, join_key: str) -> Person | None:
        person = self.by_key.get(join_key)
        if person is None and time.monotonic() - self.loaded > DIRECTORY_SECONDS:
            self.load()
            person = self.by_key.get(join_key)
        return person

    @staticmethod
    def _contact(person: Person) -> tuple[str, str, str]:
        emails = person.get("emails") or [""]
        return (
            person.get("last_name", "").upper(),
            person.get("first_name", "").upper(),
            person.get("mobile") or emails[0],
        )

    def same_adult(self, parent: Person) -> list[Person]:
        """A parent's other accounts: parent records of the same name and contact (one per school feed)."""
        return self.parents_by_name.get(self._contact(parent), [parent])


@dataclass
class Pending:
    """An AuthnRequest waiting for its person to sign in."""

    request_id: str
    sp_entity_id: str
    destination: str
    relay_state: str
    created: float = field(default_factory=time.monotonic)


class SamlIdp:
    """The IdP: its metadata, its SSO endpoint, its login form, its logout endpoint."""

    def __init__(
        self,
        *,
        profile: Profile,
        base_url: str,
        work_dir: Path,
        sp_metadata_urls: list[str],
        directory: Directory,
        password: str,
        xmlsec_binary: str,
        lifetime_minutes: int = 5,
    ) -> None:
        self.profile = profile
        self.base_url = base_url.rstrip("/")
        self.sp_metadata_urls = sp_metadata_urls
        self.directory = directory
        self.password = password
        self.xmlsec_binary = xmlsec_binary
        self.lifetime_minutes = lifetime_minutes
        self.key_file, self.cert_file = ensure_key_pair(work_dir, profile.name)
        self.attribute_dir = write_attribute_map(work_dir, profile)
        self.pending: dict[str, Pending] = {}
        self._server: Server | None = None
        self._server_built = 0.0
        self._metadata: list[str] = []

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/idp/metadata"

    def config(self, sp_metadata: list[str]) -> IdPConfig:
        config = IdPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "description": self.profile.title,
                "service": {
                    "idp": {
                        "name": self.profile.title,
                        "endpoints": {
                            "single_sign_on_service": [
                                (f"{self.base_url}/idp/sso/post", BINDING_HTTP_POST),
                                (f"{self.base_url}/idp/sso/redirect", BINDING_HTTP_REDIRECT),
                            ],
                            "single_logout_service": [(f"{self.base_url}/idp/slo/post", BINDING_HTTP_POST)],
                        },
                        "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                        "want_authn_requests_signed": True,
                        "sign_response": self.profile.signs_response,
                        "sign_assertion": True,
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": self.lifetime_minutes},
                                "name_form": NAME_FORMAT_URI,
                                "attribute_restrictions": None,
                            }
                        },
                    }
                },
                "key_file": str(self.key_file),
                "cert_file": str(self.cert_file),
                "xmlsec_binary": self.xmlsec_binary,
                "attribute_map_dir": str(self.attribute_dir),
                "metadata": {"inline": sp_metadata} if sp_metadata else {},
                "accepted_time_diff": 60,
            }
        )
        return config

    async def server(self, *, fresh: bool = False) -> Server:
        """The pysaml2 server, with the SPs' metadata fetched again now and then (they may change keys)."""
        if self._server is None or fresh or time.monotonic() - self._server_built > METADATA_SECONDS:
            metadata = []
            async with httpx.AsyncClient(timeout=5) as client:
                for url in self.sp_metadata_urls:
                    try:
                        answer = await client.get(url)
                    except httpx.HTTPError:
                        continue
                    if answer.status_code == 200:
                        metadata.append(answer.text)
            server = Server(config=self.config(metadata))
            # EduConnect releases its fixed set whatever the SP's metadata requests (Keycloak's descriptor
            # names the attributes its mappers read, in a form pysaml2 would otherwise filter on).
            server.config.getattr("policy", "idp").restrict = lambda ava, sp_entity_id, metadata=None: ava
            self._server, self._server_built = server, time.monotonic()
        return self._server

    def metadata_xml(self) -> str:
        return create_metadata_string(None, config=self.config([]), sign=False).decode()

    # -- single sign-on -------------------------------------------------------------------------

    async def receive(
        self, saml_request: str, relay_state: str, binding: str, sigalg: str | None = None, signature: str | None = None
    ) -> tuple[str, Pending]:
        """Check an AuthnRequest (signed — in the XML by HTTP-POST, by `sigalg` and `signature` over the query by
        HTTP-Redirect — from a known SP) and keep it until the person signs in."""
        server = await self.server()
        signed = {"relay_state": relay_state, "sigalg": sigalg, "signature": signature}
        if binding != BINDING_HTTP_REDIRECT:
            signed = {}
        try:
            parsed = server.parse_authn_request(saml_request, binding, **signed)
        except (UnknownPrincipal, SignatureError, ValueError, TypeError):
            parsed = None
        if parsed is None or parsed.message is None:
            server = await self.server(fresh=True)  # perhaps an SP of new keys or new to us
            parsed = server.parse_authn_request(saml_request, binding, **signed)
        args = server.response_args(parsed.message, [BINDING_HTTP_POST])
        pending = Pending(
            request_id=parsed.message.id,
            sp_entity_id=args["sp_entity_id"],
            destination=args["destination"],
            relay_state=relay_state,
        )
        key = secrets.token_urlsafe(16)
        self._forget_old()
        self.pending[key] = pending
        return key, pending

    def _forget_old(self) -> None:
        old = time.monotonic() - 600
        for key in [k for k, p in self.pending.items() if p.created < old]:
            del self.pending[key]

    async def respond(self, pending: Pending, person: Person) -> str:
        """The signed response for `person`, as the HTML form that posts it to the SP."""
        server = await self.server()
        identity = self.profile.release(person, self.directory)
        subject = self.profile.subject(person, self.directory)
        name_id = NameID(
            format=NAMEID_FORMAT_PERSISTENT,
            sp_name_qualifier=pending.sp_entity_id,
            name_qualifier=self.entity_id,
            text=subject,
        )
        response = server.create_authn_response(
            identity,
            in_response_to=pending.request_id,
            destination=pending.destination,
            sp_entity_id=pending.sp_entity_id,
            name_id=name_id,
            authn={
                "class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                "authn_auth": self.entity_id,
            },
            sign_response=self.profile.signs_response,
            sign_assertion=True,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        return autopost(
            pending.destination,
            {"SAMLResponse": base64.b64encode(str(response).encode()).decode(), "RelayState": pending.relay_state},
        )

    async def logout(self, saml_request: str, relay_state: str) -> str:
        """Answer a LogoutRequest (the peer keeps no session of its own to end)."""
        server = await self.server()
        request = server.parse_logout_request(saml_request, BINDING_HTTP_POST)
        endpoints = server.metadata.single_logout_service(request.message.issuer.text, BINDING_HTTP_POST, "spsso")
        response = server.create_logout_response(
            request.message, [BINDING_HTTP_POST], sign=True, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
        )
        return autopost(
            endpoints[0]["location"],
            {"SAMLResponse": base64.b64encode(str(response).encode()).decode(), "RelayState": relay_state},
        )


def autopost(url: str, fields: dict[str, str]) -> str:
    """An HTML page that posts `fields` to `url` at once (a browser's HTTP-POST binding)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>' for k, v in fields.items() if v
    )
    return (
        '<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" '
        f'action="{html.escape(url)}">'
        f'{inputs}<noscript><button type="submit">Continuer</button></noscript></form></body></html>'
    )


def ensure_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """The peer's signing key and self-signed certificate (made once, kept in its working folder)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    if key_file.exists() and cert_file.exists():
        return key_file, cert_file
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"maille peer {name}")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


def write_attribute_map(folder: Path, profile: Profile) -> Path:
    """pysaml2's attribute map for the profile: names are OIDs (name format URI), friendly names as given."""
    target = folder / f"attributemaps_{profile.name}"
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text("")
    fro = dict(profile.attributes)
    to = {friendly.lower(): oid for oid, friendly in profile.attributes.items()}
    (target / "uri.py").write_text(f"MAP = {{'identifier': {NAME_FORMAT_URI!r}, 'fro': {fro!r}, 'to': {to!r}}}\n")
    return target


def create_app(idp: SamlIdp) -> FastAPI:
    """The peer's HTTP face."""
    app = FastAPI(title=idp.profile.title, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/idp/metadata")
    async def metadata() -> Response:
        return Response(idp.metadata_xml(), media_type="application/samlmetadata+xml")

    async def sso(
        saml_request: str | None,
        relay_state: str,
        binding: str,
        sigalg: str | None = None,
        signature: str | None = None,
    ) -> HTMLResponse:
        if not saml_request:
            return HTMLResponse(_page(idp.profile.title, "<p>Requête SAML absente.</p>"), status_code=400)
        try:
            key, pending = await idp.receive(saml_request, relay_state, binding, sigalg, signature)
        except Exception as exc:  # unsigned, unknown SP, malformed: an IdP refuses it with a page
            log.warning("AuthnRequest refused: %s", exc)
            return HTMLResponse(_page(idp.profile.title, "<p>Demande d'authentification refusée.</p>"), status_code=400)
        return HTMLResponse(_login_form(idp, key, ""))

    @app.post("/idp/sso/post")
    async def sso_post(SAMLRequest: str | None = Form(None), RelayState: str = Form("")) -> HTMLResponse:
        return await sso(SAMLRequest, RelayState, BINDING_HTTP_POST)

    @app.get("/idp/sso/redirect")
    async def sso_redirect(request: Request) -> HTMLResponse:
        query = request.query_params
        return await sso(
            query.get("SAMLRequest"),
            query.get("RelayState", ""),
            BINDING_HTTP_REDIRECT,
            query.get("SigAlg"),
            query.get("Signature"),
        )

    @app.post("/idp/login")
    async def login(key: str = Form(...), username: str = Form(""), password: str = Form("")) -> HTMLResponse:
        pending = idp.pending.get(key)
        if pending is None:
            return HTMLResponse(
                _page(idp.profile.title, "<p>Cette demande a expiré : recommencez depuis l'ENT.</p>"), status_code=400
            )
        person = idp.directory.find(username.strip())
        if (
            person is None
            or not secrets.compare_digest(password.encode(), idp.password.encode())
            or not idp.profile.accepts(person)
        ):
            return HTMLResponse(_login_form(idp, key, "Identifiant ou mot de passe incorrect."), status_code=401)
        del idp.pending[key]
        return HTMLResponse(await idp.respond(pending, person))

    @app.post("/idp/slo/post")
    async def slo(SAMLRequest: str = Form(...), RelayState: str = Form("")) -> HTMLResponse:
        try:
            return HTMLResponse(await idp.logout(SAMLRequest, RelayState))
        except Exception as exc:
            log.warning("LogoutRequest refused: %s", exc)
            return HTMLResponse(_page(idp.profile.title, "<p>Demande de déconnexion refusée.</p>"), status_code=400)

    return app


def _login_form(idp: SamlIdp, key: str, error: str) -> str:
    message = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return _page(
        idp.profile.title,
        f"""{message}
<form method="post" action="/idp/login" id="login">
<input type="hidden" name="key" value="{html.escape(key)}"/>
<label>Identifiant <input name="username" autocomplete="username"/></label>
<label>Mot de passe <input name="password" type="password" autocomplete="current-password"/></label>
<button type="submit">Se connecter</button></form>""",
    )


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
