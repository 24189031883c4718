"""The gateway's settings, from `MAILLE_GATEWAY_*` environment variables."""

from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings

DEFAULT_ROUTES = {
    "identity": "http://127.0.0.1:8101",
    "catalog": "http://127.0.0.1:8102",
    "messaging": "http://127.0.0.1:8103",
    "library": "http://127.0.0.1:8104",
}


class GatewaySettings(ServiceSettings):
    """Settings of the gateway."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_GATEWAY_")
    service_name: ClassVar[str] = "gateway"

    http_port: int = Field(8000, ge=1, le=65535, description="port the HTTP server listens on")
    routes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ROUTES),
        description='JSON object: path prefix /api/<name>/ -> the service base URL, e.g. {"catalog": "http://catalog:8080"}',
    )
    upstream_timeout: float = Field(30.0, gt=0, description="seconds an upstream may take to answer")
    upstream_connect_timeout: float = Field(2.0, gt=0, description="seconds to open a connection to an upstream")
    retry_after: int = Field(5, ge=1, description="Retry-After seconds sent when an upstream is unavailable")

    @field_validator("routes")
    @classmethod
    def _routes_are_urls(cls, routes: dict[str, str]) -> dict[str, str]:
        for name, url in routes.items():
            if not name.isidentifier() or not url.startswith(("http://", "https://")):
                raise ValueError(f"route {name!r} -> {url!r}: names are plain words, targets http(s) URLs")
        return routes
