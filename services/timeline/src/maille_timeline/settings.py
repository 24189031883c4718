"""The timeline service's settings, from `MAILLE_TIMELINE_*` environment variables."""

from typing import ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings


class TimelineSettings(ServiceSettings):
    """Settings of the timeline service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_TIMELINE_")
    service_name: ClassVar[str] = "timeline"

    http_port: int = Field(8105, ge=1, le=65535, description="port the HTTP server listens on")
    public_url: str = Field(
        "http://localhost:8000",
        description="the portal's address as people reach it: the links of the e-mails (and their unsubscribe link)",
    )
    feed_days: int = Field(183, ge=1, le=3660, description="days a notification stays in a person's feed (6 months)")
    smtp_host: str = Field("127.0.0.1", description="the SMTP relay e-mails are handed to")
    smtp_port: int = Field(1025, ge=1, le=65535, description="the SMTP relay's port")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "none", description="none (a relay on the pod's network), starttls (upgraded), or tls (implicit, port 465)"
    )
    smtp_username: str = Field("", description="the relay's user name; none: no authentication")
    smtp_password: SecretStr = Field(SecretStr(""), description="the relay's password")
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=120, description="how long one SMTP exchange may take")
    smtp_connections: int = Field(4, ge=1, le=64, description="SMTP connections kept open to the relay at once")
    mail_from: str = Field(
        "Maille <ne-pas-repondre@ent.example.org>", description="the From of every e-mail (an address of the relay's)"
    )
    bounce_address: str = Field(
        "", description="the envelope sender bounces return to (the relay's bounce mailbox); none: the From's address"
    )
    bounces_to_stop: int = Field(
        3, ge=1, le=100, description="an address refused this many times in a row gets no more e-mail until it changes"
    )
    unsubscribe_key: SecretStr = Field(
        SecretStr("maille-timeline-dev-unsubscribe-key"),
        description="key (16+ characters) that signs the unsubscribe links of the e-mails",
    )
    digest_hour: int = Field(
        17, ge=0, le=23, description="the hour (Europe/Paris) the daily digests are sent, after the school day"
    )
    news_file_max_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="largest image or document a news item carries"
    )
    admins: list[str] = Field(
        default_factory=list,
        description="JSON list of the person ids told of every AAF import's report and of a failed GAR export (the "
        "operator who started an import is told too)",
    )
    daily_digests: bool = Field(
        True,
        description="send the daily digests at `digest_hour` (off: only `maille-timeline send-digests` sends them)",
    )
    mail_check_seconds: float = Field(
        2.0, gt=0, le=60, description="how often the e-mails waiting to be sent are looked for"
    )
