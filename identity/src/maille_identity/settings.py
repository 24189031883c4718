"""The identity service's settings, from `MAILLE_IDENTITY_*` environment variables."""

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    """Settings of the identity service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_IDENTITY_")
    service_name: ClassVar[str] = "identity"

    http_port: int = Field(8101, ge=1, le=65535, description="port the HTTP server listens on")
    tenant: str = Field(
        "demo", min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="the tenant (académie or collectivité scope) AAF feeds are imported into by default",
    )
    uai_check_letter: bool | None = Field(
        None, description="refuse UAIs whose check letter is wrong; default: only in production"
    )
    person_id_key: SecretStr = Field(
        SecretStr("development-only-person-id-key"),
        description="secret from which ENT person ids are derived (HMAC of tenant and AAF join key); never change it once set",
    )
    gar_id_ent: str = Field(
        "MAILLE-DEMO", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
        description="the ENT's idENT at the GAR (names the export files)",
    )
    detach_grace_days: float = Field(
        30, ge=0, description="days a person left out of every structure by a full AAF feed is kept before deletion"
    )

    @property
    def check_uai_letter(self) -> bool:
        """Whether a wrong UAI check letter refuses the record (else a warning)."""
        return self.uai_check_letter if self.uai_check_letter is not None else self.environment == "production"
