"""Run a SAML IdP peer: `maille-peer-educonnect` (pupils, parents) or `maille-peer-academie` (agents).

Environment: PEER_PORT, PEER_BASE_URL (as browsers reach it), PEER_SP_METADATA (space-separated URLs of
the SPs' metadata: Keycloak's broker descriptors), PEER_MONGODB_URL and PEER_DATABASE (the directory),
PEER_WORK_DIR (keys), MAILLE_DEMO_PASSWORD (default demo), PEER_XMLSEC (default: xmlsec1 on PATH).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import uvicorn
from samlpeer.idp import Directory, Profile, SamlIdp, create_app

from educonnect.profiles import ACADEMIE, EDUCONNECT


def serve(profile: Profile, default_port: int) -> None:
    port = int(os.environ.get("PEER_PORT", default_port))
    xmlsec = os.environ.get("PEER_XMLSEC") or shutil.which("xmlsec1") or "xmlsec1"
    idp = SamlIdp(
        profile=profile,
        base_url=os.environ.get("PEER_BASE_URL", f"http://localhost:{port}"),
        work_dir=Path(os.environ.get("PEER_WORK_DIR", f".var/peers/{profile.name}")),
        sp_metadata_urls=os.environ.get("PEER_SP_METADATA", "").split(),
        directory=Directory(
            os.environ.get("PEER_MONGODB_URL", "mongodb://127.0.0.1:27017"),
            os.environ.get("PEER_DATABASE", "maille_identity"),
        ),
        password=os.environ.get("MAILLE_DEMO_PASSWORD") or "demo",
        xmlsec_binary=xmlsec,
    )
    uvicorn.run(create_app(idp), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def main() -> None:
    serve(EDUCONNECT, 8201)


def main_academie() -> None:
    serve(ACADEMIE, 8202)


if __name__ == "__main__":
    main()
