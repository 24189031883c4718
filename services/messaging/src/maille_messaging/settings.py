"""The messaging service's settings, from `MAILLE_MESSAGING_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings


class MessagingSettings(ServiceSettings):
    """Settings of the messaging service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_MESSAGING_")
    service_name: ClassVar[str] = "messaging"

    http_port: int = Field(8103, ge=1, le=65535, description="port the HTTP server listens on")
