"""The library service's settings, from `MAILLE_LIBRARY_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings


class LibrarySettings(ServiceSettings):
    """Settings of the library service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_LIBRARY_")
    service_name: ClassVar[str] = "library"

    http_port: int = Field(8104, ge=1, le=65535, description="port the HTTP server listens on")
