"""Run the GAR peer: `maille-peer-gar`.

Environment: PEER_PORT, PEER_BASE_URL (as browsers reach it), PEER_IDP_METADATA (Keycloak's realm SAML
descriptor), PEER_WORK_DIR (keys), PEER_XMLSEC (default: xmlsec1 on PATH).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import uvicorn

from gar.sp import GarSp, create_app


def main() -> None:
    port = int(os.environ.get("PEER_PORT", 8203))
    sp = GarSp(
        base_url=os.environ.get("PEER_BASE_URL", f"http://localhost:{port}"),
        idp_metadata_url=os.environ.get("PEER_IDP_METADATA", "http://localhost:8080/realms/maille/protocol/saml/descriptor"),
        work_dir=Path(os.environ.get("PEER_WORK_DIR", ".var/peers/gar")),
        xmlsec_binary=os.environ.get("PEER_XMLSEC") or shutil.which("xmlsec1") or "xmlsec1",
    )
    uvicorn.run(create_app(sp), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
