"""`python -m maille_kit.bootstrap <service>` (the charts' bootstrap Job): the service's streams and indexes are
in place afterwards, on the real NATS and docstore, and running it again changes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import nats
from pymongo import MongoClient

from maille_devstack.processes import DocstoreServer, NatsServer


def test_the_bootstrap_job_declares_the_streams_and_makes_the_indexes(
    nats_factory, docstore_server: DocstoreServer
) -> None:
    server: NatsServer = nats_factory()
    database = f"test_bootstrap_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "MAILLE_CATALOG_NATS_URL": server.url,
        "MAILLE_CATALOG_MONGODB_URL": docstore_server.url,
        "MAILLE_CATALOG_DATABASE": database,
    }
    for _ in range(2):  # again: nothing to change, no failure
        done = subprocess.run(
            [sys.executable, "-m", "maille_kit.bootstrap", "catalog"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "catalog: 1 stream(s)" in done.stderr + done.stdout

    async def streams() -> set[str]:
        nc = await nats.connect(server.url)
        names = {s.config.name for s in await nc.jetstream().streams_info()}
        await nc.close()
        return names

    assert {"CATALOG", "CATALOG_DEADLETTER"} <= asyncio.run(streams())
    with MongoClient(docstore_server.url) as client:
        indexes = client[database]["subscriptions"].index_information()
        assert {"uaiEtab_1", "idEditeur_1__id_1", "expiree_1_finValidite_1"} <= set(indexes), indexes
    # A service it does not know is named, not a traceback.
    unknown = subprocess.run(
        [sys.executable, "-m", "maille_kit.bootstrap"], env=env, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode != 0 and "usage" in unknown.stderr
