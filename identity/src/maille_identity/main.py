"""The identity service's app factory and entry point."""

from fastapi import FastAPI

from maille_kit.app import ServiceSpec, create_app, load_settings, serve
from maille_identity import __version__, __doc__ as description
from maille_identity.events import STREAMS
from maille_identity.settings import IdentitySettings


def build(settings: IdentitySettings) -> ServiceSpec:
    """What the identity service is made of."""
    return ServiceSpec(name="identity", version=__version__, settings=settings, streams=STREAMS, description=description or "")


def app(settings: IdentitySettings | None = None) -> FastAPI:
    """The identity service's ASGI app."""
    return create_app(build(settings or load_settings(IdentitySettings)))


def main() -> None:
    """Serve the identity service until SIGTERM."""
    settings = load_settings(IdentitySettings)
    serve(app(settings), settings)
