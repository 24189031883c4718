"""Run the PMB peer: `maille-peer-pmb`.

Environment: PEER_PORT (default 8205); PEER_DATABASES, comma-separated database names (each a school's catalogue,
e.g. `cdi0750001A`), PEER_RECORDS per database (default 200); PEER_USER / PEER_PASSWORD / PEER_PHRASE of source 1;
PEER_DELAY_MS and PEER_JITTER_MS (each answer takes delay + up to jitter); PEER_READERS, comma-separated
`login:Nom:Prénom` readers put in every database; the OPACs' OpenID Connect source: PEER_OIDC_ISSUER,
PEER_OIDC_CLIENT_ID, PEER_OIDC_CLIENT_SECRET, PEER_OIDC_CLAIM (default ent_id) — no issuer, no source.
"""

from __future__ import annotations

import os

import uvicorn

from pmb.opac import OidcSource
from pmb.server import PmbDatabase, PmbPeer, create_app


def main() -> None:
    records = int(os.environ.get("PEER_RECORDS", 200))
    names = [n for n in os.environ.get("PEER_DATABASES", "").split(",") if n]
    peer = PmbPeer(
        sources={
            1: (
                os.environ.get("PEER_USER", "maille"),
                os.environ.get("PEER_PASSWORD", "secret-ws"),
                os.environ.get("PEER_PHRASE", "phrase-connexion"),
            )
        },
        databases={name: PmbDatabase(name, records=records) for name in names},
        delay=float(os.environ.get("PEER_DELAY_MS", 0)) / 1000,
        jitter=float(os.environ.get("PEER_JITTER_MS", 0)) / 1000,
    )
    if os.environ.get("PEER_OIDC_ISSUER"):
        peer.oidc = OidcSource(
            os.environ["PEER_OIDC_ISSUER"],
            os.environ.get("PEER_OIDC_CLIENT_ID", "maille-pmb-opac"),
            os.environ.get("PEER_OIDC_CLIENT_SECRET", ""),
            claim=os.environ.get("PEER_OIDC_CLAIM", "ent_id"),
        )
    for n, entry in enumerate(r for r in os.environ.get("PEER_READERS", "").split(",") if r):
        login, nom, prenom = (entry.split(":") + ["", ""])[:3]
        for db in peer.databases.values():
            db.readers[login] = {"id": n + 1, "cb": login, "login": login, "mail": "", "nom": nom, "prenom": prenom}
    uvicorn.run(
        create_app(peer),
        host="127.0.0.1",
        port=int(os.environ.get("PEER_PORT", 8205)),
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
