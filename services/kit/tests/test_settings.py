"""Settings: the service's own prefix, and default secrets refused outside development."""

from typing import ClassVar

import pytest
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from maille_kit.settings import ServiceSettings, describe, redact_url


class ExampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MAILLE_EXAMPLE_")
    service_name: ClassVar[str] = "example"

    signing_key: SecretStr = Field(SecretStr("dev-signing-key"), description="a secret")


@pytest.fixture(autouse=True)
def development(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about other things than the environment: development, unless a test says otherwise."""
    monkeypatch.setenv("MAILLE_EXAMPLE_ENVIRONMENT", "development")


def test_reads_only_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILLE_EXAMPLE_NATS_URL", "nats://bus:4222")
    monkeypatch.setenv("MAILLE_OTHER_NATS_URL", "nats://elsewhere:4222")
    monkeypatch.setenv("NATS_URL", "nats://nowhere:4222")
    settings = ExampleSettings()
    assert settings.nats_url == "nats://bus:4222"
    assert settings.database_name == "maille_example"


def test_default_secret_accepted_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILLE_EXAMPLE_ENVIRONMENT", "development")
    assert ExampleSettings().signing_key.get_secret_value() == "dev-signing-key"


def test_a_missing_environment_is_production_and_refuses_development_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAILLE_EXAMPLE_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="MAILLE_EXAMPLE_SIGNING_KEY must be set outside development"):
        ExampleSettings()


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_default_secret_refused_outside_development(monkeypatch: pytest.MonkeyPatch, environment: str) -> None:
    monkeypatch.setenv("MAILLE_EXAMPLE_ENVIRONMENT", environment)
    with pytest.raises(ValidationError, match="MAILLE_EXAMPLE_SIGNING_KEY"):
        ExampleSettings()


def test_set_secret_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILLE_EXAMPLE_ENVIRONMENT", "production")
    monkeypatch.setenv("MAILLE_EXAMPLE_SIGNING_KEY", "a-real-one")
    assert ExampleSettings().signing_key.get_secret_value() == "a-real-one"


def test_secrets_never_shown() -> None:
    settings = ExampleSettings()
    assert "dev-signing-key" not in repr(settings)
    rows = {row["field"]: row for row in describe(ExampleSettings)}
    assert "dev-signing-key" not in str(rows["signing_key"]["default"])
    assert rows["nats_url"]["env"] == "MAILLE_EXAMPLE_NATS_URL"


def test_urls_lose_their_credentials() -> None:
    assert redact_url("mongodb://maille:s3cret@db:27017/x?authSource=admin") == "mongodb://db:27017/x"
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
