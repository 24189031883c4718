"""The library service's app factory and entry point."""

from fastapi import FastAPI

from maille_kit.app import ServiceSpec, create_app, load_settings, serve
from maille_library import __version__, __doc__ as description
from maille_library.events import STREAMS
from maille_library.settings import LibrarySettings


def build(settings: LibrarySettings) -> ServiceSpec:
    """What the library service is made of."""
    return ServiceSpec(name="library", version=__version__, settings=settings, streams=STREAMS, description=description or "")


def app(settings: LibrarySettings | None = None) -> FastAPI:
    """The library service's ASGI app."""
    return create_app(build(settings or load_settings(LibrarySettings)))


def main() -> None:
    """Serve the library service until SIGTERM."""
    settings = load_settings(LibrarySettings)
    serve(app(settings), settings)
