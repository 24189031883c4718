"""The library service's app factory and entry point."""

from __future__ import annotations

from fastapi import FastAPI

from maille_kit.app import Runtime, ServiceSpec, create_app, load_settings, serve
from maille_kit.consumer import EventConsumer
from maille_library import __version__, __doc__ as description
from maille_library.account import Accounts
from maille_library.api import router
from maille_library.connections import Connections
from maille_library.directory import SUBJECTS, Directory
from maille_library.events import STREAMS
from maille_library.pmb import PmbClient
from maille_library.search import Search
from maille_library.settings import LibrarySettings


def parts(runtime: Runtime) -> Directory:
    """The service's directory copy, connections, PMB client and search, made once per runtime."""
    if "directory" not in runtime.state:
        settings: LibrarySettings = runtime.settings  # type: ignore[assignment]
        assert runtime.docstore is not None
        directory = Directory(runtime.docstore)
        connections = Connections(runtime.docstore, ttl=settings.connection_cache_seconds)
        client = PmbClient(timeout=settings.pmb_timeout_seconds, retries=settings.pmb_retries, max_bytes=settings.pmb_max_bytes)
        runtime.state |= {"directory": directory, "connections": connections, "pmb": client,
                          "search": Search(client, connections, directory, timeout=settings.search_timeout_seconds,
                                           cache_seconds=settings.search_cache_seconds),
                          "accounts": Accounts(client, connections, directory, timeout=settings.search_timeout_seconds)}
    return runtime.state["directory"]


def consumers(runtime: Runtime) -> list[EventConsumer]:
    """Identity's person events (its stream may come up after the library)."""
    assert runtime.docstore is not None
    return [EventConsumer(runtime.bus, runtime.docstore, service="library", durable="library-directory", stream="IDENTITY",
                          subjects=SUBJECTS, handler=parts(runtime).handle)]


async def on_start(runtime: Runtime) -> None:
    parts(runtime)


async def on_stop(runtime: Runtime) -> None:
    client = runtime.state.get("pmb")
    if client is not None:
        await client.close()


def build(settings: LibrarySettings) -> ServiceSpec:
    """What the library service is made of."""
    return ServiceSpec(name="library", version=__version__, settings=settings, streams=STREAMS, routers=[router], consumers=consumers,
                       on_start=on_start, on_stop=on_stop, description=description or "")


def app(settings: LibrarySettings | None = None) -> FastAPI:
    """The library service's ASGI app."""
    return create_app(build(settings or load_settings(LibrarySettings)))


def main() -> None:
    """Serve the library service until SIGTERM."""
    settings = load_settings(LibrarySettings)
    serve(app(settings), settings)
