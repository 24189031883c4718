"""The gateway's app factory and entry point."""

from fastapi import FastAPI

from maille_gateway import __doc__ as description
from maille_gateway import __version__
from maille_gateway.api.proxy import router as proxy_router
from maille_gateway.settings import GatewaySettings
from maille_gateway.upstreams import Upstreams
from maille_kit.app import Runtime, ServiceSpec, create_app, load_settings, serve


async def _open_upstreams(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, GatewaySettings)
    runtime.state["upstreams"] = Upstreams(
        settings.routes, timeout=settings.upstream_timeout, connect_timeout=settings.upstream_connect_timeout
    )


async def _close_upstreams(runtime: Runtime) -> None:
    upstreams = runtime.state.pop("upstreams", None)
    if upstreams is not None:
        await upstreams.close()


def build(settings: GatewaySettings) -> ServiceSpec:
    """What the gateway is made of."""
    return ServiceSpec(
        name="gateway",
        version=__version__,
        settings=settings,
        routers=[proxy_router],
        uses_docstore=False,
        on_start=_open_upstreams,
        on_stop=_close_upstreams,
        description=description or "",
    )


def app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway's ASGI app."""
    return create_app(build(settings or load_settings(GatewaySettings)))


def main() -> None:
    """Serve the gateway until SIGTERM."""
    settings = load_settings(GatewaySettings)
    serve(app(settings), settings)
