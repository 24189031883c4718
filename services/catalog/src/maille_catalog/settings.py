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
    bulk_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="largest catalogue a vendor may load in one request"
    )
    ent_id: str = Field(
        "MAILLE",
        min_length=1,
        max_length=100,
        description="the ENT's idENT towards the GAR (one per tenant in a multi-tenant deployment)",
    )
    gar_url: str = Field(
        "",
        description="the GAR's resource-list web service (…/ressources/{idENT}/{UAI}/{person}); empty: the GAR is not "
        "asked",
    )
    gar_client_cert: str = Field("", description="the ENT's client certificate for the GAR (PEM file)")
    gar_client_key: str = Field("", description="its private key (PEM file, from a Secret)")
    gar_ca_file: str = Field(
        "", description="CA certificates the GAR's server certificate is checked against (default: the system's)"
    )
    gar_timeout_seconds: float = Field(
        1.0, gt=0, le=30, description="how long a médiacentre waits for the GAR before answering without its list"
    )
    gar_cache_seconds: float = Field(300, ge=0, description="how long a person's GAR list (and médiacentre) is kept")
    gar_link_url: str = Field(
        "https://sp-auth.gar.education.fr/domaineGar", description="the GAR's address that resource links go to"
    )
    mediacentre_cache_size: int = Field(
        100_000, ge=0, description="persons whose médiacentre is kept in memory, per replica"
    )
    expiry_check_seconds: float = Field(
        60, gt=0, description="how often subscriptions past their end are looked for (and announced expired)"
    )
    offer_reload_seconds: float = Field(
        300, gt=0, description="how often a replica reloads the resources and subscriptions it holds in memory"
    )
