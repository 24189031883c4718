"""The identity service's settings, from `MAILLE_IDENTITY_*` environment variables."""

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from maille_identity.gar.push import SftpTarget
from maille_kit.settings import SealingSettings, tenant_field


class IdentitySettings(SealingSettings):
    """Settings of the identity service."""

    model_config = SettingsConfigDict(env_prefix="MAILLE_IDENTITY_")
    service_name: ClassVar[str] = "identity"

    http_port: int = Field(8101, ge=1, le=65535, description="port the HTTP server listens on")
    tenant: str = tenant_field("the tenant (académie or collectivité scope) AAF feeds are imported into by default")
    uai_check_letter: bool | None = Field(
        None, description="refuse UAIs whose check letter is wrong; default: only in production"
    )
    visibles_refresh_seconds: float = Field(
        900,
        gt=0,
        description="how often each replica reads the directory it answers the communication rules from again",
    )
    person_id_key: SecretStr = Field(
        SecretStr("development-only-person-id-key"),
        description="secret from which ENT person ids are derived (HMAC of tenant and AAF join key); never change it "
        "once set",
    )
    gar_id_ent: str = Field(
        "MAILLE-DEMO",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the ENT's idENT at the GAR (names the export files) for a tenant not declared with its own",
    )
    gar_export_dir: str = Field("gar-export", description="folder the GAR export is written to")
    gar_export_at: str | None = Field(
        None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="time of day (HH:MM, UTC) of the nightly GAR export by the service; unset: no nightly export",
    )
    gar_sftp_host: str | None = Field(None, description="SFTP host the GAR export is pushed to; unset: no push")
    gar_sftp_port: int = Field(22, ge=1, le=65535, description="SFTP port")
    gar_sftp_user: str = Field("", description="SFTP user")
    gar_sftp_key: SecretStr = Field(
        SecretStr(""), description="SSH private key for the SFTP push (the key itself, from a Secret)"
    )
    gar_sftp_known_hosts: str = Field(
        "", description="known_hosts line(s) of the SFTP host: any other host key is refused"
    )
    gar_sftp_dir: str = Field(".", description="remote folder of the SFTP push")
    import_dir: str = Field(
        "aaf-imports", description="folder where AAF deliveries uploaded through the API are kept, with their reports"
    )
    import_max_mb: int = Field(2048, ge=1, description="largest AAF delivery accepted through the API, in MB")
    import_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="how far `maille-identity import-aaf` lowers its own CPU priority (nice) on a machine it shares "
        "with the services: people's requests go first, the import takes what they leave; 0: as the services",
    )
    detach_grace_days: float = Field(
        30, ge=0, description="days a person left out of every structure by a full AAF feed is kept before deletion"
    )

    keycloak_url: str | None = Field(
        None,
        description="Keycloak as identity reaches it (admin API), e.g. http://keycloak:8080; unset: no Keycloak as "
        "code, no account linking",
    )
    keycloak_client_id: str = Field(
        "maille-identity",
        description="identity's confidential client in the realm (service account with realm-management roles)",
    )
    keycloak_client_secret: SecretStr = Field(
        SecretStr("maille-identity-dev-secret"), description="that client's secret"
    )
    api_client_grace_seconds: int = Field(
        7 * 86400,
        ge=0,
        le=90 * 86400,
        description="seconds an API client's old secret stays valid after a rotation (Keycloak's secret rotation)",
    )
    keycloak_sync_on_start: bool = Field(
        True, description="reconcile the realm with its declaration when the service starts"
    )
    secrets_key: SecretStr = Field(
        SecretStr("maille-identity-dev-secrets-key"),
        description="key (16+ characters) that encrypts collectivités' IdP client secrets at rest",
    )
    gateway_url: str = Field(
        "http://localhost:8000", description="the gateway's public address (its sign-in client's redirect URIs)"
    )
    gateway_backchannel_url: str = Field(
        "", description="the gateway as Keycloak reaches it, for back-channel logout (default: gateway_url)"
    )
    gateway_client_id: str = Field("maille-gateway", description="the gateway's browser sign-in client in the realm")
    gateway_client_secret: SecretStr = Field(SecretStr("maille-gateway-dev-secret"), description="that client's secret")
    educonnect_metadata_url: str = Field("", description="EduConnect's SAML metadata URL; unset: no EduConnect sign-in")
    academie_metadata_url: str = Field(
        "", description="the académie agents' IdP SAML metadata URL; unset: no agent sign-in"
    )
    gar_sp_entity_id: str = Field("", description="the GAR's SAML SP entity id; unset: no GAR client in the realm")
    gar_sp_acs_url: str = Field("", description="the GAR's assertion consumer service URL (HTTP-POST)")
    pmb_opac_client_id: str = Field(
        "maille-pmb-opac",
        description="the realm's client the schools' PMB OPACs sign readers in with (OpenID Connect); empty: none",
    )
    pmb_opac_client_secret: SecretStr = Field(
        SecretStr("maille-pmb-opac-dev-secret"),
        description="that client's secret (set in each PMB's OpenID Connect source)",
    )

    def keycloak_values(self) -> dict[str, str]:
        """What fills the realm declaration's {{NAME}}s."""
        return {
            "GATEWAY_URL": self.gateway_url.rstrip("/"),
            "GATEWAY_CLIENT_ID": self.gateway_client_id,
            "GATEWAY_BACKCHANNEL_URL": (self.gateway_backchannel_url or self.gateway_url).rstrip("/"),
            "GATEWAY_CLIENT_SECRET": self.gateway_client_secret.get_secret_value(),
            "EDUCONNECT_METADATA_URL": self.educonnect_metadata_url,
            "ACADEMIE_METADATA_URL": self.academie_metadata_url,
            "GAR_SP_ENTITY_ID": self.gar_sp_entity_id,
            "GAR_SP_ACS_URL": self.gar_sp_acs_url,
            "PMB_OPAC_CLIENT_ID": self.pmb_opac_client_id,
            "PMB_OPAC_CLIENT_SECRET": self.pmb_opac_client_secret.get_secret_value(),
        }

    def sftp_target(self) -> SftpTarget | None:
        """Where the GAR export is pushed, when configured."""
        if not self.gar_sftp_host:
            return None
        return SftpTarget(
            self.gar_sftp_host,
            self.gar_sftp_port,
            self.gar_sftp_user,
            self.gar_sftp_key.get_secret_value(),
            self.gar_sftp_known_hosts,
            self.gar_sftp_dir,
        )

    @property
    def check_uai_letter(self) -> bool:
        """Whether a wrong UAI check letter refuses the record (else a warning)."""
        return self.uai_check_letter if self.uai_check_letter is not None else self.environment == "production"
