"""The library service's settings, from `MAILLE_LIBRARY_*` environment variables."""

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import SealingSettings, tenant_field


class LibrarySettings(SealingSettings):
    """Settings of the library service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_LIBRARY_")
    service_name: ClassVar[str] = "library"

    http_port: int = Field(8104, ge=1, le=65535, description="port the HTTP server listens on")
    tenant: str = tenant_field("the tenant of the connections an operator registers when their token names none")
    pmb_timeout_seconds: float = Field(2.0, gt=0, le=30, description="how long one call to a school's PMB may take")
    pmb_retries: int = Field(
        1, ge=0, le=5, description="how many times a read from PMB is tried again when PMB is unavailable"
    )
    pmb_max_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="largest answer accepted from a PMB")
    search_timeout_seconds: float = Field(
        2.5, gt=0, le=30, description="how long a search waits for a school's PMB before answering without it"
    )
    search_cache_seconds: float = Field(60, ge=0, description="how long a school's answer to a search is kept")
    secrets_key: SecretStr = Field(
        SecretStr("maille-library-dev-secrets-key"),
        description="key (16+ characters) that encrypts PMB passwords and OPAC salts at rest",
    )
    connection_cache_seconds: float = Field(
        30, ge=0, description="how long a replica keeps a school's PMB connection before reading it again"
    )
    loan_notices_at: str = Field(
        "06:30",
        pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9])?$",
        description="when (HH:MM, Europe/Paris) the day's look at the CDIs' loans runs (due in two days, late, "
        "reservations waiting: told to the timeline); empty: never (an operator runs it: POST /operator/loans/look)",
    )
    loan_notices_concurrency: int = Field(
        4, ge=1, le=32, description="readers of one school whose loans are read at once in the daily look"
    )
    sync_concurrency: int = Field(
        8, ge=1, le=64, description="persons whose PMB readers are written at once (reader sync)"
    )
    sync_updates_per_second: float = Field(
        20,
        ge=0,
        description="changed readers the reader sync writes to one school's PMB a second, per replica (new readers "
        "and removals go at once; a night's delta reaches the PMBs over minutes, not as fast as they take it); "
        "0: no limit",
    )
