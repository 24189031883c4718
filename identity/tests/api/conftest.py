"""Fixtures for identity's API tests: the service's settings on the test's NATS, docstore and Keycloak, and a feed
imported through the real importer."""

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from maille_devstack.pytest_plugin import KeycloakClients
from maille_identity.settings import IdentitySettings
from maille_kit.bus import Bus
from maille_kit.docstore import Docstore
from maille_kit.outbox import Outbox

from ..directory.test_import import TENANT, run_import


@pytest.fixture
def settings(
    tmp_path: Path, bus: Bus, docstore_server, database_name: str, keycloak_clients: KeycloakClients
) -> IdentitySettings:
    """Identity's settings: this test's NATS, database and realm, its imports under the test's folder."""
    return IdentitySettings(
        nats_url=bus.url,
        mongodb_url=docstore_server.url,
        database=database_name,
        tenant=TENANT,
        auth_issuer=keycloak_clients.issuer,
        import_dir=str(tmp_path / "imports"),
        gar_export_dir=str(tmp_path / "gar"),
    )


Import = Callable[[Path], Awaitable[dict[str, str]]]


@pytest.fixture
def imported(docstore: Docstore, outbox: Outbox) -> Import:
    """Import the feed in a folder through the real importer; each person's directory id by their AAF key."""

    async def run(folder: Path) -> dict[str, str]:
        await run_import(docstore, outbox, folder)
        return {doc["keys"][0]: doc["_id"] async for doc in docstore.db.persons.find({})}

    return run
