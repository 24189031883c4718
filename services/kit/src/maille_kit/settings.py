"""Settings: one loader for every service, read only from environment variables with the service's prefix.

Each service subclasses `ServiceSettings` and sets its own prefix (``MAILLE_CATALOG_`` …). Secrets are
`SecretStr` fields whose defaults only exist so that a developer's machine starts with no set-up: outside
``development`` a secret left at its default is refused at start.
"""

from __future__ import annotations

import json
import sys
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from maille_kit.secretbox import SecretBox

Environment = Literal["development", "staging", "production"]


def tenant_field(description: str) -> Any:
    """A service's `tenant` setting (which académie or collectivité a thing belongs to when nothing else says):
    a short lower-case name, `demo` by default."""
    return Field("demo", min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$", description=description)


class ServiceSettings(BaseSettings):
    """The settings every Maille service has; subclasses add their own and set the env prefix."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_", extra="ignore", frozen=True)

    # The service's short name ("catalog"); not a setting, set by each subclass.
    service_name: ClassVar[str] = "service"

    environment: Environment = Field(
        "production", description="development, staging or production; default secrets are refused outside development"
    )
    http_host: str = Field("127.0.0.1", description="address the HTTP server listens on")
    http_port: int = Field(8100, ge=1, le=65535, description="port the HTTP server listens on")
    metrics_port: int = Field(
        9464,
        ge=0,
        le=65535,
        description="port /metrics is served on for Prometheus, on the HTTP server's address (0: none; the gateway's "
        "workers: this port plus the worker's number)",
    )
    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server(s), comma-separated")
    nats_password: SecretStr = Field(
        SecretStr(""),
        description="password of the service's own NATS user (named after the service); none: no NATS user",
    )
    nats_tls_ca_file: str = Field(
        "", description="CA certificate to check NATS' TLS certificate with (tls:// URLs); none: the system's"
    )
    stream_replicas: int = Field(
        1,
        ge=1,
        le=5,
        description="copies NATS keeps of each stream and key-value bucket the service owns (3 in production: a node "
        "may go)",
    )
    nats_grace_seconds: float = Field(
        15.0, ge=0, description="seconds NATS may be away before /readyz says the service is not ready"
    )
    nats_connect_timeout: float = Field(
        30.0, gt=0, description="seconds to keep trying to reach NATS at start before giving up"
    )
    mongodb_url: SecretStr = Field(
        SecretStr("mongodb://127.0.0.1:27017"),
        description="MongoDB (or MongoDB-wire docstore) URL; may hold credentials",
    )
    database: str = Field("", description="the service's own database; default maille_<service>")
    takeover_seconds: float = Field(
        60.0,
        gt=0,
        description="seconds after which a replica finishes what a dead one left (its units of work, its outbox)",
    )
    docstore_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="seconds each docstore call may take (client deadline, sent as maxTimeMS); batch jobs set theirs",
    )
    directory_events_per_second: float = Field(
        200,
        ge=0,
        description="for a service keeping a copy of the directory: the directory's changes a replica takes in a "
        "second, on average (a night's delta is followed over a minute or two, leaving the cores to the people "
        "using the platform meanwhile); 0: as fast as they come (a first import of a whole region)",
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP collector base URL (e.g. http://otel-collector:4318); traces and metrics stay local "
        "when unset",
    )
    auth_issuer: str = Field(
        "http://localhost:8080/realms/maille",
        description="issuer (Keycloak realm URL) of the bearer tokens the service accepts",
    )
    auth_audience: str = Field(
        "",
        description="audience a bearer token must name to be accepted; default maille-<service> (the gateway: maille)",
    )
    auth_jwks_url: str | None = Field(
        None, description="where the issuer's keys are published; default <issuer>/protocol/openid-connect/certs"
    )
    usage_key: SecretStr = Field(
        SecretStr(""),
        description="the platform's usage key, the same for every service: the uses told to the observatory carry the "
        "person only as a keyed hash under this month's key derived from it; none: no uses told",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="log level")
    access_log: Literal["all", "problems"] = Field(
        "problems",
        description="which requests get an access-log line: `all`, or `problems` (an error answer, or one over a "
        "second) — the gateway logs every request at the edge; its own default is `all`",
    )
    build: str = Field("dev", description="build id shown by /about (set by the image build)")

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        if self.environment == "development":
            return self
        left = [
            name
            for name, field in type(self).model_fields.items()
            if isinstance(field.default, SecretStr)
            and _is_dev_secret(name, field.default)
            and getattr(self, name).get_secret_value() == field.default.get_secret_value()
        ]
        if left:
            names = ", ".join(self.env_name(n) for n in left)
            raise ValueError(f"{names} must be set outside development (still the development default)")
        return self

    @property
    def audience(self) -> str:
        """The audience the service's tokens must name: the setting, or maille-<service> — each service its
        own, so that a token given to call one service is not accepted by another."""
        return self.auth_audience or f"maille-{self.service_name}"

    @property
    def database_name(self) -> str:
        """The service's database: the setting, or maille_<service>."""
        return self.database or f"maille_{self.service_name}"

    @classmethod
    def env_prefix(cls) -> str:
        """The environment prefix of this service's settings."""
        return str(cls.model_config.get("env_prefix", ""))

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets `field`."""
        return f"{cls.env_prefix()}{field}".upper()


def _is_dev_secret(name: str, default: SecretStr) -> bool:
    # The docstore URL is a SecretStr because it may carry credentials, but its default holds none:
    # only defaults that are real credentials count as development secrets. An empty default is
    # "not configured" (an optional feature left off), not a credential.
    value = default.get_secret_value()
    return value != "" and (name != "mongodb_url" or "@" in value)


def redact_url(url: str) -> str:
    """The URL without its credentials, fit for logs and /about."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def describe(settings_cls: type[ServiceSettings]) -> list[dict[str, Any]]:
    """Every environment variable of a settings class, with default and description (for the README)."""
    rows = []
    for name, field in settings_cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, dict | list):
            default = json.dumps(default, default=lambda o: o.model_dump() if hasattr(o, "model_dump") else str(o))
        if isinstance(default, SecretStr):
            default = "(secret, development default)" if _is_dev_secret(name, default) else default.get_secret_value()
        rows.append(
            {
                "field": name,
                "env": settings_cls.env_name(name),
                "default": default,
                "description": field.description or "",
            }
        )
    return rows


class SealingSettings(ServiceSettings):
    """The settings of a service that keeps secrets in its database, sealed (`secret_box()`): each such service
    declares its own `secrets_key` (a development default of its own, and what the key seals)."""

    secrets_key: SecretStr = Field(SecretStr(""), description="key (16+ characters) that encrypts secrets at rest")
    secrets_old_keys: SecretStr = Field(
        SecretStr(""), description="previous secrets keys, comma-separated, while a rotation runs"
    )

    def secret_box(self) -> SecretBox:
        """What seals the secrets the service keeps in its database (and opens those sealed under an old key)."""
        return SecretBox.of(self.secrets_key.get_secret_value(), self.secrets_old_keys.get_secret_value())


SettingsT = TypeVar("SettingsT", bound="ServiceSettings")


def load_settings(settings_cls: type[SettingsT]) -> SettingsT:
    """The service's settings from the environment, or a clear message and exit 2 when they are wrong."""
    try:
        return settings_cls()
    except ValidationError as exc:
        print(f"maille-{settings_cls.service_name}: invalid settings: {exc}", file=sys.stderr)
        sys.exit(2)
