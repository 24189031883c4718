"""The support service's settings, from `MAILLE_SUPPORT_*` environment variables."""

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import SealingSettings, tenant_field


class SupportSettings(SealingSettings):
    """Settings of the support service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_SUPPORT_")
    service_name: ClassVar[str] = "support"

    http_port: int = Field(8106, ge=1, le=65535, description="port the HTTP server listens on")
    tenant: str = tenant_field("the tenant of the requests' events")
    public_url: str = Field(
        "http://localhost:8000", description="the portal's address as people reach it: the links in the desks' Redmine"
    )
    file_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="largest screenshot or attachment a request or an article carries"
    )
    referent_functions: list[str] = Field(
        default_factory=list,
        description="JSON list of AAF function codes whose holders are their school's digital referents (beside "
        "those the principal names, and the direction)",
    )
    school_first_answer_hours: float = Field(
        8, gt=0, le=720, description="service level of a school's referents: hours to a first answer"
    )
    school_resolution_hours: float = Field(
        72, gt=0, le=2160, description="service level of a school's referents: hours to resolution"
    )
    reopen_days: int = Field(7, ge=1, le=60, description="days a resolved request can be reopened by a reply")
    redmine_poll_seconds: float = Field(
        10, gt=0, le=3600, description="how often each Redmine-connected desk's tracker is asked what changed"
    )
    redmine_timeout_seconds: float = Field(10, gt=0, le=120, description="how long one call to a Redmine may take")
    secrets_key: SecretStr = Field(
        SecretStr("maille-support-dev-secrets-key"),
        description="key (16+ characters) that encrypts the desks' Redmine API keys at rest",
    )
    clamd_address: str = Field(
        "", description="a ClamAV daemon every file is scanned with (host:port); empty: no virus scan"
    )
    scan_timeout_seconds: float = Field(10.0, gt=0, description="how long an upload waits for the virus scanner")
    queue_refresh_seconds: float = Field(
        600, ge=5, le=86400, description="how often a replica reads every request again (beside the change signals)"
    )
