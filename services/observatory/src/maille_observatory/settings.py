"""The observatory's settings, from `MAILLE_OBSERVATORY_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings


class ObservatorySettings(ServiceSettings):
    """Settings of the observatory."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_OBSERVATORY_")
    service_name: ClassVar[str] = "observatory"

    http_port: int = Field(8107, ge=1, le=65535, description="port the HTTP server listens on")
    flush_seconds: float = Field(
        10, gt=0, le=120, description="how often the rollups being filled are written (and the uses acknowledged)"
    )
    refresh_seconds: float = Field(
        60, ge=1, le=3600, description="how often the figures of the collectivités, districts and académie are merged"
    )
    fetch_batch: int = Field(256, ge=1, le=5000, description="batches of uses taken from the stream at once")
