"""The messaging service's settings, from `MAILLE_MESSAGING_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings, tenant_field


class MessagingSettings(ServiceSettings):
    """Settings of the messaging service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_MESSAGING_")
    service_name: ClassVar[str] = "messaging"

    http_port: int = Field(8103, ge=1, le=65535, description="port the HTTP server listens on")
    tenant: str = tenant_field(
        "the tenant a person belongs to when their token names none (claim `tenant`); identity's default tenant"
    )
    rules_timeout_seconds: float = Field(
        2.0, gt=0, le=30, description="how long a send waits for identity's communication rules"
    )
    recall_minutes: int = Field(
        60, ge=0, le=7 * 24 * 60, description="how long after sending a sender may recall the copies still unread"
    )
    body_max_bytes: int = Field(
        512 * 1024, ge=1024, le=16 * 1024 * 1024, description="largest message body (HTML) accepted"
    )
    recipients_max: int = Field(
        5000, ge=1, description="most persons one message may reach once its groups are expanded"
    )
    attachment_max_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="largest attachment accepted")
    quota_bytes: int = Field(
        500 * 1024 * 1024,
        ge=1024,
        description="attachments a person may keep (those they sent, still held by someone, and their drafts')",
    )
    clamd_address: str = Field(
        "", description="a ClamAV daemon every attachment is scanned with (host:port); empty: no virus scan"
    )
    scan_timeout_seconds: float = Field(10.0, gt=0, description="how long an upload waits for the virus scanner")
    trash_retention_days: int = Field(
        30, ge=1, description="days a message stays in the trash before it is deleted for good"
    )
    housekeeping_seconds: float = Field(
        3600, gt=0, description="how often the trash is emptied of messages past their retention"
    )
    summary_cache_size: int = Field(
        100_000,
        ge=0,
        description="sent messages whose listing line (sender, subject, snippet…) a replica keeps in memory",
    )
    schedule_check_seconds: float = Field(5, gt=0, description="how often messages scheduled for later are looked for")
    index_segment_size: int = Field(
        50,
        ge=1,
        le=1000,
        description="messages a replica files into one segment of a person's folder index before it opens the next "
        "(small segments keep each delivery's write small)",
    )
