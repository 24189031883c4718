"""The gateway's settings, from `MAILLE_GATEWAY_*` environment variables."""

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings

DEFAULT_ROUTES = {
    "identity": "http://127.0.0.1:8101",
    "catalog": "http://127.0.0.1:8102",
    "messaging": "http://127.0.0.1:8103",
    "library": "http://127.0.0.1:8104",
    "timeline": "http://127.0.0.1:8105",
    "support": "http://127.0.0.1:8106",
    "observatory": "http://127.0.0.1:8107",
}


class RoutePolicy(BaseModel):
    """Who may call a path prefix: any caller holding one of `roles` or one of `scopes` (both empty:
    any signed-in person or authenticated client)."""

    roles: list[str] = []
    scopes: list[str] = []


DEFAULT_POLICIES = {
    "/api/identity/v1/operator/": RoutePolicy(roles=["operator"]),
    "/api/timeline/v1/operator/": RoutePolicy(roles=["operator"]),
    "/api/support/v1/operator/": RoutePolicy(roles=["operator"]),
    "/api/observatory/v1/operator/": RoutePolicy(roles=["operator"]),
    "/api/catalog/v1/vendor/": RoutePolicy(roles=["vendor"], scopes=["catalog.vendor"]),
    "/api/catalog/v1/abonnements": RoutePolicy(
        roles=["vendor"], scopes=["catalog.vendor"]
    ),  # the GAR's subscription web service
}


class GatewaySettings(ServiceSettings):
    """Settings of the gateway."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_GATEWAY_")

    access_log: Literal["all", "problems"] = Field(
        "all",
        description="which requests get an access-log line: `all` (the edge's log of every request), or `problems`",
    )
    service_name: ClassVar[str] = "gateway"

    http_port: int = Field(8000, ge=1, le=65535, description="port the HTTP server listens on")
    workers: int = Field(1, ge=1, le=64, description="server processes (one per core in production)")
    public_url: str = Field(
        "http://localhost:8000", description="the gateway's address as browsers reach it (sign-in redirects)"
    )
    portal_dir: str = Field(
        "",
        description="the built portal (index.html and assets/) served at /; default: portal/dist beside the sources, "
        "/app/portal in the image",
    )
    routes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ROUTES),
        description='JSON object: path prefix /api/<name>/ -> the service base URL, e.g. {"catalog": "http://catalog:8080"}',
    )
    public_paths: list[str] = Field(
        # the e-mails' one-click unsubscribe (RFC 8058): a mail client posts it, nobody signed in
        default_factory=lambda: ["/api/*/v1/about", "/api/timeline/v1/unsubscribe"],
        description="JSON list of path patterns (* = one segment or more) open without signing in",
    )
    policies: dict[str, RoutePolicy] = Field(
        default_factory=lambda: dict(DEFAULT_POLICIES),
        description='JSON object: path prefix -> {"roles": [...], "scopes": [...]}, one of which a caller must hold '
        "(longest prefix wins)",
    )
    upstream_timeout: float = Field(
        30.0, gt=0, description="seconds an upstream may take to send its response's headers"
    )
    upstream_connect_timeout: float = Field(2.0, gt=0, description="seconds to open a connection to an upstream")
    upstream_max_connections: int = Field(256, ge=1, description="open connections per upstream and gateway process")
    upstream_retries: int = Field(
        2, ge=0, le=5, description="retries of a GET, HEAD or OPTIONS the upstream could not answer"
    )
    circuit_failures: int = Field(5, ge=1, description="failures in a row that open an upstream's circuit")
    circuit_open_seconds: float = Field(
        10.0, gt=0, description="seconds an open circuit stays open before one request probes it"
    )
    retry_after: int = Field(5, ge=1, description="Retry-After seconds sent when an upstream is unavailable")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=0, description="largest request body accepted, in bytes")
    body_read_timeout: float = Field(15.0, gt=0, description="seconds a client may pause while sending a request body")
    rate_person: float = Field(
        20.0, gt=0, description="requests per second allowed to each signed-in person (sustained)"
    )
    rate_client: float = Field(200.0, gt=0, description="requests per second allowed to each API client (sustained)")
    rate_anonymous: float = Field(10.0, gt=0, description="requests per second allowed to each address without a token")
    rate_sign_in: float = Field(
        20.0,
        gt=0,
        description="sign-ins per second (/login, /auth/…) allowed to each address (a school's NAT is one address)",
    )
    rate_new_tokens: float = Field(
        10.0, gt=0, description="bearer tokens not seen yet whose signature each address may have checked, per second"
    )
    trace_sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="share of the traces starting at the gateway that are recorded when OTLP is on (a caller's own "
        "decision is followed)",
    )
    live_seconds: float = Field(
        900.0,
        ge=10,
        le=86400,
        description="how long a live stream (/live, a page's notifications) stays open before the browser opens it "
        "again and the session is checked again",
    )
    fast_lane: bool = Field(
        True,
        description="relay the common request (a GET with a known token, a small answer) in the connection's callbacks "
        "(lane.py)",
    )
    rate_share: int = Field(1, ge=1, description="gateway processes the rates are shared between (replicas × workers)")
    rate_burst_seconds: float = Field(
        5.0, gt=0, description="a caller may burst up to this many seconds' worth of requests"
    )
    oidc_client_id: str = Field(
        "maille-gateway", description="the gateway's OIDC client in the realm (browser sign-in)"
    )
    oidc_client_secret: SecretStr = Field(SecretStr("maille-gateway-dev-secret"), description="that client's secret")
    oidc_backchannel_url: str | None = Field(
        None,
        description="Keycloak as the gateway reaches it, when not at the issuer's address (e.g. http://keycloak:8080)",
    )
    link_accounts: bool = Field(
        True, description="at each browser sign-in, ask identity (route identity) which directory person the account is"
    )
    session_key: SecretStr = Field(
        SecretStr("maille-dev-session-key-change-me-0000"),
        description="key (32+ characters) that encrypts sessions at rest in NATS KV",
    )
    session_ttl_seconds: int = Field(36000, ge=60, description="a browser session's lifetime, at most")
    cookie_secure: bool = Field(
        True, description="Secure flag on the session cookie (browsers keep it on http://localhost too)"
    )

    @property
    def audience(self) -> str:
        """The gateway accepts tokens meant for Maille as a whole (audience maille); each service checks its own."""
        return self.auth_audience or "maille"

    @field_validator("routes")
    @classmethod
    def _routes_are_urls(cls, routes: dict[str, str]) -> dict[str, str]:
        for name, url in routes.items():
            if not name.isidentifier() or not url.startswith(("http://", "https://")):
                raise ValueError(f"route {name!r} -> {url!r}: names are plain words, targets http(s) URLs")
            if name == "docs":
                raise ValueError("route 'docs' is the gateway's own (/api/docs)")
        return routes

    @field_validator("session_key")
    @classmethod
    def _long_enough(cls, key: SecretStr) -> SecretStr:
        if len(key.get_secret_value()) < 32:
            raise ValueError("the session key must be 32 characters or more")
        return key
