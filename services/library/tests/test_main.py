"""The library service starts on the real NATS and docstore, owns its stream, and says what it is connected to."""

from maille_devstack.processes import DocstoreServer, NatsServer
from maille_devstack.pytest_plugin import running
from maille_library.main import app
from maille_library.settings import LibrarySettings


async def test_about_and_stream(nats_server: NatsServer, docstore_server: DocstoreServer, database_name: str) -> None:
    settings = LibrarySettings(nats_url=nats_server.url, mongodb_url=docstore_server.url, database=database_name)
    service = app(settings)
    async with running(service) as client:
        about = (await client.get("/api/library/v1/about")).json()
        stream = await service.state.runtime.bus.js.stream_info("LIBRARY")
        ready = await client.get("/readyz")
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert about["name"] == "library"
    assert about["nats"] == {"url": nats_server.url, "connected": True, "server": "maille-nats", "jetstream": True}
    assert about["docstore"]["database"] == database_name
    assert about["docstore"]["connected"] is True
    assert "FerretDB" in about["docstore"]["server"]
    assert stream.config.subjects == ["library.>"]
    assert ready.json()["checks"] == {"nats": True, "docstore": True}
    assert "/api/library/v1/about" in paths
