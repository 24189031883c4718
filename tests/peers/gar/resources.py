"""The GAR's resource list as a peer (gar.md §4): `GET /ressources/{idENT}/{UAI}/{personId}` over HTTPS with a
client certificate, answering the GAR's JSON (`listeRessources`) or its error shape (`Erreur`).

Each school is given a stable choice of resources from a pool; `delay` stands for the GAR's latency and
`failing` for schools it cannot answer for — a test or a bench changes them on the running peer.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

SCOLOMFR = "http://data.education.fr/voc/scolomfr/concept/"
LEVELS = [
    ("scolomfr-voc-022-num-027", "6e"),
    ("scolomfr-voc-022-num-028", "5e"),
    ("scolomfr-voc-022-num-029", "4e"),
    ("scolomfr-voc-022-num-030", "3e"),
]
DOMAINS = [
    ("scolomfr-voc-015-num-1169", "mathématiques"),
    ("scolomfr-voc-015-num-1300", "français"),
    ("scolomfr-voc-015-num-1249", "histoire-géographie"),
    ("scolomfr-voc-015-num-1346", "sciences de la vie et de la Terre"),
]
UAI = re.compile(r"^[0-9]{7}[A-Z]$")


def gar_resource(number: int) -> dict[str, Any]:
    """One resource of the pool, in the GAR's fields."""
    level, domain = LEVELS[number % len(LEVELS)], DOMAINS[number % len(DOMAINS)]
    return {
        "idRessource": f"ark:/99999/gar-{number:05d}",
        "idType": "ARK",
        "nomRessource": f"{domain[1].capitalize()} {level[1]} — ressource GAR {number}",
        "idEditeur": f"editeur-{number % 7}",
        "nomEditeur": f"Éditeur GAR {number % 7}",
        "urlVignette": f"https://vignettes.gar.example/{number}.png",
        "urlAccesRessource": f"https://ressources.gar.example/{number}",
        "typePresentation": {"code": "MAN", "nom": "manuel numérique"},
        "typePedagogique": [{"uri": f"{SCOLOMFR}scolomfr-voc-010-num-003", "nom": "cours"}],
        "typologieDocument": [{"uri": f"{SCOLOMFR}scolomfr-voc-005-num-006", "nom": "manuel"}],
        "niveauEducatif": [{"uri": SCOLOMFR + level[0], "nom": level[1]}],
        "domaineEnseignement": [{"uri": SCOLOMFR + domain[0], "nom": domain[1]}],
        "nomSourceEtiquetteGar": "Accessible via le GAR",
        "distributeurTech": "Distributeur technique",
        "validateurTech": "GAR",
    }


@dataclass
class GarResources:
    """What the peer answers: `per_school` resources of a pool of `pool`, after `delay` seconds."""

    ent: str = "MAILLE"
    per_school: int = 8
    pool: int = 40
    delay: float = 0.0
    failing: set[str] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)
    _encoded: dict[str, bytes] = field(default_factory=dict, repr=False)

    def encoded(self, uai: str) -> bytes:
        """A school's answer, gzipped once (the peer must not be what a benchmark measures)."""
        if uai not in self._encoded:
            body = json.dumps({"listeRessources": {"ressource": self.of_school(uai)}}, ensure_ascii=False).encode()
            self._encoded[uai] = gzip.compress(body, compresslevel=5)
        return self._encoded[uai]

    def of_school(self, uai: str) -> list[dict[str, Any]]:
        start = int(hashlib.sha256(uai.encode()).hexdigest(), 16) % self.pool
        return [gar_resource((start + i) % self.pool) for i in range(min(self.per_school, self.pool))]


def error(status: int, code: str, message: str, resource: str) -> JSONResponse:
    return JSONResponse({"Erreur": {"Code": code, "Message": message, "Resource": resource}}, status_code=status)


def create_app(peer: GarResources) -> FastAPI:
    app = FastAPI(title="GAR peer: resource list", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ressources/{ent}/{uai}/{person}")
    async def resources(ent: str, uai: str, person: str) -> Any:
        peer.asked.append((uai, person))
        if peer.delay:
            await asyncio.sleep(peer.delay)
        resource = f"/ressources/{ent}/{uai}/{person}"
        if ent != peer.ent:
            return error(400, "Bad Request", "ENT non trouvé", resource)
        if not UAI.match(uai) or uai in peer.failing:
            return error(400, "Bad Request", "Établissement non trouvé", resource)
        return Response(peer.encoded(uai), media_type="application/json", headers={"content-encoding": "gzip"})

    return app


def tls_config(app: FastAPI) -> Any:
    """The resource list's server: on PEER_RESOURCES_PORT, over TLS with a client certificate required (PEER_TLS_CERT,
    PEER_TLS_KEY, PEER_TLS_CA), as the GAR's is."""
    import os
    import ssl

    import uvicorn

    return uvicorn.Config(
        app,
        host="127.0.0.1",
        port=int(os.environ.get("PEER_RESOURCES_PORT", 8204)),
        log_level="warning",
        access_log=False,
        ssl_certfile=os.environ["PEER_TLS_CERT"],
        ssl_keyfile=os.environ["PEER_TLS_KEY"],
        ssl_ca_certs=os.environ["PEER_TLS_CA"],
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )


def main() -> None:
    """Serve the resource list alone (the bench): PEER_RESOURCES_PORT, PEER_TLS_CERT, PEER_TLS_KEY, PEER_TLS_CA,
    PEER_ENT, PEER_DELAY_MS, PEER_PER_SCHOOL, PEER_POOL."""
    import os

    import uvicorn

    peer = GarResources(
        ent=os.environ.get("PEER_ENT", "MAILLE"),
        delay=int(os.environ.get("PEER_DELAY_MS", "0")) / 1000,
        per_school=int(os.environ.get("PEER_PER_SCHOOL", "8")),
        pool=int(os.environ.get("PEER_POOL", "40")),
    )
    uvicorn.Server(tls_config(create_app(peer))).run()


if __name__ == "__main__":
    main()
