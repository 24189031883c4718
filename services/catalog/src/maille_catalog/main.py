"""The catalog service's app factory and entry point."""

from fastapi import FastAPI
from pymongo import IndexModel

from maille_kit.app import ServiceSpec, create_app, load_settings, serve
from maille_catalog import __version__, __doc__ as description
from maille_catalog.api import vendor
from maille_catalog.repository import RESOURCES
from maille_catalog.events import STREAMS
from maille_catalog.settings import CatalogSettings


def build(settings: CatalogSettings) -> ServiceSpec:
    """What the catalog service is made of."""
    return ServiceSpec(name="catalog", version=__version__, settings=settings, streams=STREAMS, routers=[vendor.router],
                       indexes={RESOURCES: [IndexModel([("idEditeur", 1), ("_id", 1)])]}, description=description or "")


def app(settings: CatalogSettings | None = None) -> FastAPI:
    """The catalog service's ASGI app."""
    return create_app(build(settings or load_settings(CatalogSettings)))


def main() -> None:
    """Serve the catalog service until SIGTERM."""
    settings = load_settings(CatalogSettings)
    serve(app(settings), settings)
