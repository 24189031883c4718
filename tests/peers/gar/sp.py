"""The GAR's SAML side as a peer: a pysaml2 service provider that signs persons in through the ENT's IdP
(Keycloak's realm `maille`, client = this SP's entity id) and shows what it received.

`GET /sp/login` sends the browser to the IdP with an AuthnRequest (HTTP-Redirect); `POST /sp/acs` takes
the response (HTTP-POST), checks it — signed by the IdP's key from its metadata (response or assertion),
addressed to this SP (audience, recipient), in answer to a request this SP made, still valid — and
answers JSON: the NameID, the attributes (GARPersonIdentifiant, idEnt, UAI, PRO…) and whether the
assertion itself was signed. A response that fails a check gets 400 with the reason.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Form
from fastapi.responses import JSONResponse, RedirectResponse, Response
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from samlpeer.idp import ensure_key_pair

log = logging.getLogger("peer.gar")


class GarSp:
    """The SP: its metadata, its login, its assertion consumer."""

    def __init__(self, *, base_url: str, idp_metadata_url: str, work_dir: Path, xmlsec_binary: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.idp_metadata_url = idp_metadata_url
        self.xmlsec_binary = xmlsec_binary
        self.key_file, self.cert_file = ensure_key_pair(work_dir, "gar-sp")
        self.outstanding: dict[str, str] = {}
        self._client: Saml2Client | None = None

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/sp/metadata"

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/sp/acs"

    def config(self, idp_metadata: str | None) -> SPConfig:
        config = SPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "service": {
                    "sp": {
                        "name": "GAR (bac à sable Maille)",
                        "endpoints": {"assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]},
                        "allow_unsolicited": False,
                        # Keycloak signs the assertion (and the document); the assertion is required signed
                        "want_response_signed": False,
                        "want_assertions_signed": True,
                        "authn_requests_signed": False,
                        "allow_unknown_attributes": True,
                    }
                },
                "key_file": str(self.key_file),
                "cert_file": str(self.cert_file),
                "xmlsec_binary": self.xmlsec_binary,
                "metadata": {"inline": [idp_metadata]} if idp_metadata else {},
                "accepted_time_diff": 30,
            }
        )
        return config

    async def client(self) -> Saml2Client:
        if self._client is None:
            async with httpx.AsyncClient(timeout=10) as http:
                metadata = (await http.get(self.idp_metadata_url)).raise_for_status().text
            self._client = Saml2Client(config=self.config(metadata))
        return self._client


def create_app(sp: GarSp) -> FastAPI:
    app = FastAPI(title="GAR peer", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/sp/metadata")
    async def metadata() -> Response:
        return Response(
            create_metadata_string(None, config=sp.config(None), sign=False).decode(),
            media_type="application/samlmetadata+xml",
        )

    @app.get("/sp/login")
    async def login(relay_state: str = "gar") -> Response:
        client = await sp.client()
        idp = next(iter(client.metadata.identity_providers()))
        request_id, info = client.prepare_for_authenticate(
            entityid=idp, relay_state=relay_state, binding=BINDING_HTTP_REDIRECT
        )
        sp.outstanding[request_id] = "/"
        location = dict(info["headers"])["Location"]
        return RedirectResponse(location, status_code=302)

    @app.get("/domaineGar")
    async def resource_link(idENT: str, idEtab: str, idSrc: str) -> Response:
        """A resource link of an ENT (gar.md §1): the ENT, the school and the resource, base64-encoded; the
        GAR then signs the person in at the ENT's IdP, the resource riding in the RelayState."""
        try:
            decoded = [base64.b64decode(value, validate=True).decode() for value in (idENT, idEtab, idSrc)]
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(
                {"Erreur": {"Code": "Bad Request", "Message": "paramètres non décodables", "Resource": "/domaineGar"}},
                status_code=400,
            )
        return await login(relay_state=decoded[2][:80])

    @app.post("/sp/acs")
    async def acs(SAMLResponse: str = Form(...), RelayState: str = Form("")) -> JSONResponse:
        client = await sp.client()
        try:
            response = client.parse_authn_request_response(SAMLResponse, BINDING_HTTP_POST, outstanding=sp.outstanding)
        except Exception as exc:  # pysaml2 raises many kinds: each is a refusal
            log.warning("response refused: %s", exc)
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
        if response is None:
            return JSONResponse({"error": "no response"}, status_code=400)
        sp.outstanding.pop(response.in_response_to, None)
        assertion = response.assertion
        attributes: dict[str, Any] = {}
        for statement in assertion.attribute_statement:
            for attribute in statement.attribute:
                attributes[attribute.name] = [value.text for value in attribute.attribute_value]
        return JSONResponse(
            {
                "issuer": response.issuer(),
                "name_id": response.name_id.text if response.name_id else None,
                "attributes": attributes,
                "assertion_signed": assertion.signature is not None,
            }
        )

    return app
