"""The identity service's app factory and entry point."""

from fastapi import FastAPI

from maille_kit.app import Runtime, ServiceSpec, create_app, load_settings, serve
from maille_identity import __version__, __doc__ as description
from maille_identity.directory.repository import DirectoryRepository
from maille_identity.events import STREAMS
from maille_identity.rules.service import VisiblesService
from maille_identity.settings import IdentitySettings


async def on_start(runtime: Runtime) -> None:
    """Answer the communication rules' requests over NATS."""
    assert runtime.docstore is not None
    service = VisiblesService(runtime.bus, DirectoryRepository(runtime.docstore))
    await service.start()
    runtime.state["visibles"] = service


async def on_stop(runtime: Runtime) -> None:
    service = runtime.state.pop("visibles", None)
    if service is not None:
        await service.stop()


def build(settings: IdentitySettings) -> ServiceSpec:
    """What the identity service is made of."""
    return ServiceSpec(
        name="identity", version=__version__, settings=settings, streams=STREAMS, description=description or "",
        on_start=on_start, on_stop=on_stop,
    )


def app(settings: IdentitySettings | None = None) -> FastAPI:
    """The identity service's ASGI app."""
    return create_app(build(settings or load_settings(IdentitySettings)))


def main() -> None:
    """Serve the identity service until SIGTERM."""
    settings = load_settings(IdentitySettings)
    serve(app(settings), settings)
