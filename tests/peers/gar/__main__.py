"""Run the GAR peer: `maille-peer-gar` — its SAML service provider and its resource list.

Environment: PEER_PORT, PEER_BASE_URL (as browsers reach it), PEER_IDP_METADATA (Keycloak's realm SAML
descriptor), PEER_WORK_DIR (keys), PEER_XMLSEC (default: xmlsec1 on PATH); for the resource list (HTTPS,
client certificates required): PEER_RESOURCES_PORT, PEER_TLS_CERT, PEER_TLS_KEY, PEER_TLS_CA (the CA client
certificates must come from), PEER_ENT (the idENT it knows, default MAILLE), PEER_DELAY_MS.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import uvicorn

from gar import resources
from gar.sp import GarSp, create_app


def main() -> None:
    port = int(os.environ.get("PEER_PORT", 8203))
    sp = GarSp(
        base_url=os.environ.get("PEER_BASE_URL", f"http://localhost:{port}"),
        idp_metadata_url=os.environ.get(
            "PEER_IDP_METADATA", "http://localhost:8080/realms/maille/protocol/saml/descriptor"
        ),
        work_dir=Path(os.environ.get("PEER_WORK_DIR", ".var/peers/gar")),
        xmlsec_binary=os.environ.get("PEER_XMLSEC") or shutil.which("xmlsec1") or "xmlsec1",
    )
    servers = [
        uvicorn.Server(
            uvicorn.Config(create_app(sp), host="127.0.0.1", port=port, log_level="warning", access_log=False)
        )
    ]
    if os.environ.get("PEER_TLS_CERT"):
        peer = resources.GarResources(
            ent=os.environ.get("PEER_ENT", "MAILLE"), delay=int(os.environ.get("PEER_DELAY_MS", "0")) / 1000
        )
        servers.append(uvicorn.Server(resources.tls_config(resources.create_app(peer))))

    async def serve() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(serve())


if __name__ == "__main__":
    main()
