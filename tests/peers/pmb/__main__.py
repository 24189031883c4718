"""Run the PMB peer: `maille-peer-pmb`.

Environment: PEER_PORT (default 8205); PEER_DATABASES, comma-separated database names (each a school's catalogue,
e.g. `cdi0750001A`), PEER_RECORDS per database (default 200); PEER_USER / PEER_PASSWORD / PEER_PHRASE of source 1;
PEER_DELAY_MS and PEER_JITTER_MS (each answer takes delay + up to jitter).
"""

from __future__ import annotations

import os

import uvicorn

from pmb.server import PmbDatabase, PmbPeer, create_app


def main() -> None:
    records = int(os.environ.get("PEER_RECORDS", 200))
    names = [n for n in os.environ.get("PEER_DATABASES", "").split(",") if n]
    peer = PmbPeer(
        sources={1: (os.environ.get("PEER_USER", "maille"), os.environ.get("PEER_PASSWORD", "secret-ws"), os.environ.get("PEER_PHRASE", "phrase-connexion"))},
        databases={name: PmbDatabase(name, records=records) for name in names},
        delay=float(os.environ.get("PEER_DELAY_MS", 0)) / 1000, jitter=float(os.environ.get("PEER_JITTER_MS", 0)) / 1000,
    )
    uvicorn.run(create_app(peer), host="127.0.0.1", port=int(os.environ.get("PEER_PORT", 8205)), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
