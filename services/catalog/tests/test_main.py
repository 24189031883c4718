"""The catalog service starts on the real NATS and docstore, owns its stream, and says what it is connected to."""

from maille_catalog.main import app
from maille_catalog.settings import CatalogSettings
from maille_devstack.processes import DocstoreServer, NatsServer
from maille_devstack.pytest_plugin import running


async def test_about_and_stream(nats_server: NatsServer, docstore_server: DocstoreServer, database_name: str) -> None:
    settings = CatalogSettings(nats_url=nats_server.url, mongodb_url=docstore_server.url, database=database_name)
    service = app(settings)
    async with running(service) as client:
        about = (await client.get("/api/catalog/v1/about")).json()
        stream = await service.state.runtime.bus.js.stream_info("CATALOG")
        ready = await client.get("/readyz")
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert about["name"] == "catalog"
    assert about["nats"] == {"url": nats_server.url, "connected": True, "server": "maille-nats", "jetstream": True}
    assert about["docstore"]["database"] == database_name
    assert about["docstore"]["connected"] is True
    assert "FerretDB" in about["docstore"]["server"]
    assert stream.config.subjects == ["catalog.>"]
    assert ready.json()["checks"] == {"nats": True, "docstore": True}
    assert "/api/catalog/v1/about" in paths
