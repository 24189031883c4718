"""Every service starts on the real NATS and docstore, owns its stream, and says what it is connected to."""

import importlib
import json
import re

import pytest

from maille_devstack.processes import DocstoreServer, NatsServer
from maille_devstack.pytest_plugin import running
from maille_kit.app import create_app
from maille_kit.bootstrap import settings_class_of

SERVICES = ("identity", "catalog", "messaging", "library", "support", "observatory")  # (the timeline owns no stream)


@pytest.mark.parametrize("name", SERVICES)
async def test_about_and_stream(
    name: str, nats_server: NatsServer, docstore_server: DocstoreServer, database_name: str
) -> None:
    settings_class = settings_class_of(name)
    settings = settings_class(nats_url=nats_server.url, mongodb_url=docstore_server.url, database=database_name)
    service = create_app(importlib.import_module(f"maille_{name}.main").build(settings))
    async with running(service) as client:
        about = (await client.get(f"/api/{name}/v1/about")).json()
        stream = await service.state.runtime.bus.js.stream_info(name.upper())
        ready = await client.get("/readyz")
        document = (await client.get("/openapi.json")).json()
        paths = document["paths"]
    assert about["name"] == name
    assert about["nats"] == {"url": nats_server.url, "connected": True, "server": "maille-nats", "jetstream": True}
    assert about["docstore"]["database"] == database_name
    assert about["docstore"]["connected"] is True
    assert "FerretDB" in about["docstore"]["server"]
    assert stream.config.subjects == [f"{name}.>"]
    assert ready.json()["checks"] == {"nats": True, "docstore": True}
    assert f"/api/{name}/v1/about" in paths

    # Every operation says its errors are problem documents, and every reference leads somewhere.
    for path, item in paths.items():
        for method, operation in item.items():
            for code in ("4XX", "5XX"):
                assert "application/problem+json" in operation["responses"][code]["content"], (method, path)
    text = json.dumps(document)
    for ref in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert ref in document["components"]["schemas"], ref


@pytest.mark.parametrize("name", (*SERVICES, "timeline"))
def test_a_service_is_declared_by_its_package_and_its_main_module(name: str) -> None:
    """`ServiceSpec.of`: the name, version and description from the service's package, its streams from its events
    module, its hooks from its main module — what a newcomer finds by convention rather than by copying a list."""
    package, main = importlib.import_module(f"maille_{name}"), importlib.import_module(f"maille_{name}.main")
    spec = main.build(settings_class_of(name)())
    assert (spec.name, spec.version) == (name, package.__version__)
    assert spec.description == package.__doc__ and spec.description
    assert tuple(spec.streams) == tuple(importlib.import_module(f"maille_{name}.events").STREAMS)
    assert spec.parts is main.parts and spec.on_start is main.on_start and spec.on_stop is main.on_stop
    assert spec.consumers is getattr(main, "consumers", None) and spec.routers
