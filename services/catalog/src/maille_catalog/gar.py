"""The GAR's resource list (gar.md §4): asked per school over HTTPS with the ENT's client certificate, and the
GAR-style links that open a resource (gar.md §1)."""

from __future__ import annotations

import base64
import ssl
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from maille_kit.http import http_client


class GarUnavailable(Exception):
    """The GAR did not answer in time, or not with a resource list; says which."""


def gar_link(base: str, *, ent: str, uai: str, ark: str) -> str:
    """The link that opens a resource through the GAR: idENT, idEtab and idSrc base64-encoded."""

    def b64(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    return f"{base}?{urlencode({'idENT': b64(ent), 'idEtab': b64(uai), 'idSrc': b64(ark)})}"


class GarClient:
    """A client of the GAR's resource list."""

    def __init__(
        self, url: str, *, ent: str, cert: str | None, key: str | None, ca: str | None, timeout: float
    ) -> None:
        context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
        if cert:
            context.load_cert_chain(cert, key)
        self.ent = ent
        self.timeout = timeout
        self.http = http_client(
            base_url=url.rstrip("/"),
            timeout=timeout,
            connect_timeout=timeout,
            max_connections=32,
            keepalive=32,
            verify=context,
            headers={"accept": "application/json", "accept-encoding": "gzip"},
        )

    async def resources(self, uai: str, person_id: str) -> list[dict[str, Any]]:
        """The GAR's resources of a person in one school; `GarUnavailable` when it cannot say."""
        path = f"/ressources/{quote(self.ent, safe='')}/{quote(uai, safe='')}/{quote(person_id, safe='')}"
        try:
            answer = await self.http.get(path)
        except httpx.TimeoutException:
            raise GarUnavailable(f"no answer within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise GarUnavailable(f"unreachable: {type(exc).__name__}") from None
        try:
            body = answer.json()
        except ValueError:
            raise GarUnavailable(f"answered {answer.status_code} without JSON") from None
        if answer.status_code != 200:
            error = body.get("Erreur", {}) if isinstance(body, dict) else {}
            raise GarUnavailable(f"answered {answer.status_code}: {error.get('Message') or 'an error'}")
        try:
            listed = body["listeRessources"]["ressource"]
        except (KeyError, TypeError):
            raise GarUnavailable("answered without listeRessources") from None
        if isinstance(listed, dict):  # one resource may come alone
            listed = [listed]
        return [r for r in listed if isinstance(r, dict) and isinstance(r.get("idRessource"), str)]

    async def close(self) -> None:
        await self.http.aclose()
