"""The identity service's settings, from `MAILLE_IDENTITY_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    """Settings of the identity service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_IDENTITY_")
    service_name: ClassVar[str] = "identity"

    http_port: int = Field(8101, ge=1, le=65535, description="port the HTTP server listens on")
