"""The messaging service's app factory and entry point."""

from fastapi import FastAPI

from maille_kit.app import ServiceSpec, create_app, load_settings, serve
from maille_messaging import __version__, __doc__ as description
from maille_messaging.events import STREAMS
from maille_messaging.settings import MessagingSettings


def build(settings: MessagingSettings) -> ServiceSpec:
    """What the messaging service is made of."""
    return ServiceSpec(name="messaging", version=__version__, settings=settings, streams=STREAMS, description=description or "")


def app(settings: MessagingSettings | None = None) -> FastAPI:
    """The messaging service's ASGI app."""
    return create_app(build(settings or load_settings(MessagingSettings)))


def main() -> None:
    """Serve the messaging service until SIGTERM."""
    settings = load_settings(MessagingSettings)
    serve(app(settings), settings)
