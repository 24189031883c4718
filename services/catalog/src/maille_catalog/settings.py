"""The catalog service's settings, from `MAILLE_CATALOG_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    """Settings of the catalog service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_CATALOG_")
    service_name: ClassVar[str] = "catalog"

    http_port: int = Field(8102, ge=1, le=65535, description="port the HTTP server listens on")
    tenant: str = Field("national", description="the scope the catalog's events carry (resources are national)")
    bulk_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="largest catalogue a vendor may load in one request")
