"""Settings fail closed: a known environment, real secrets outside development, and secrets never shown."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from pydantic import SecretStr, ValidationError

from config import DEV_SECRET_PREFIX, Settings
from config.settings import TEMPORAL_ENV_VARS
from observability.logging import configure_logging
from runs.client import tls_config
from runs.codec import EncryptionCodec

REAL_SECRETS = {
    "salesforce_client_secret": "sf-secret-8c1f2b",
    "salesforce_outbound_token": "sf-outbound-51d0aa",
    "kantata_client_secret": "kt-secret-77e3c9",
    "xero_client_secret": "xr-secret-0b94de",
    "xero_webhook_key": "xr-webhook-a61f07",
    "tryton_password": "tt-password-3e58b2",
    "netsuite_consumer_secret": "ns-consumer-secret-2d7a91",
    "netsuite_token_secret": "ns-token-secret-c03e5f",
    "api_tokens": "ops-token-9d2c41:ops",
    "jwt_secret": "jwt-secret-f4a7e3",
    "codec_keys": "prod-2027:cHJvZHVjdGlvbi1rZXktMzItYnl0ZXMtbG9uZy4uLi4=",
}
DATABASE_PASSWORD = "pg-password-6b1e9f"


@pytest.fixture(autouse=True)
def no_outside_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: neither this shell's PSSYNC_* nor its Temporal configuration."""
    for name in list(os.environ):
        if name.startswith("PSSYNC_") or name in TEMPORAL_ENV_VARS:
            monkeypatch.delenv(name)


def production(**changes: object) -> Settings:
    return Settings(environment="production", codec_active_key_id="prod-2027", **{**REAL_SECRETS, **changes})


def secret_values() -> Iterator[str]:
    yield from REAL_SECRETS.values()
    yield "ops-token-9d2c41"
    yield "cHJvZHVjdGlvbi1rZXktMzItYnl0ZXMtbG9uZy4uLi4="
    yield DATABASE_PASSWORD


# --- the environment ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["prod", "Production", "staging", ""])
def test_an_unknown_environment_is_refused(name: str) -> None:
    with pytest.raises(
        ValidationError, match="PSSYNC_ENVIRONMENT must be one of development, test, production"
    ):
        Settings(environment=name)


def test_an_unknown_environment_from_the_process_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PSSYNC_ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="not 'prod'"):
        Settings()


@pytest.mark.parametrize("name", ["development", "test"])
def test_development_and_test_run_on_the_placeholders(name: str) -> None:
    settings = Settings(environment=name)
    assert settings.xero_client_secret.get_secret_value().startswith(DEV_SECRET_PREFIX)


# --- placeholders ------------------------------------------------------------------------------------------


def test_production_with_the_placeholders_is_refused_naming_every_one() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production")
    message = str(refused.value)
    assert f"placeholder ({DEV_SECRET_PREFIX}...) secrets are not allowed in production" in message
    for name in REAL_SECRETS:
        assert name in message


def test_production_names_only_the_secrets_still_on_a_placeholder() -> None:
    with pytest.raises(ValidationError) as refused:
        production(xero_webhook_key="dev-xero-webhook-key", temporal_api_key="dev-temporal-key")
    named = str(refused.value).split("set ", 1)[1].split(" [", 1)[0]
    assert named == "temporal_api_key, xero_webhook_key"


def test_production_with_real_secrets_is_accepted_and_readers_get_the_values() -> None:
    settings = production(jwt_secret=None)
    assert settings.environment == "production"
    assert settings.xero_client_secret.get_secret_value() == REAL_SECRETS["xero_client_secret"]
    assert settings.token_roles() == {"ops-token-9d2c41": "ops"}
    assert settings.jwt_secret is None
    EncryptionCodec.from_settings(settings)


def test_a_refused_setting_does_not_echo_the_input() -> None:
    with pytest.raises(ValidationError) as refused:
        production(salesforce_client_secret="dev-salesforce-secret")
    assert not any(value in str(refused.value) for value in secret_values())


# --- secrets are never shown -------------------------------------------------------------------------------


def test_repr_str_and_dumps_show_no_secret() -> None:
    settings = production(database_url=f"postgresql+psycopg://pssync:{DATABASE_PASSWORD}@db:5432/pssync")
    for shown in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
        json.dumps(settings.model_dump(mode="json")),
    ):
        leaked = [value for value in secret_values() if value in shown]
        assert not leaked, leaked
    assert "postgresql+psycopg://pssync:***@db:5432/pssync" in repr(settings)
    # The ledger still reaches its database.
    assert DATABASE_PASSWORD in settings.database_url


def test_every_secret_field_is_a_secret_str() -> None:
    settings = production()
    for name in REAL_SECRETS:
        assert isinstance(getattr(settings, name), SecretStr), name


def test_logged_settings_and_secrets_show_no_value() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO", stream=stream)
    try:
        settings = production(database_url=f"postgresql+psycopg://pssync:{DATABASE_PASSWORD}@db/pssync")
        log = structlog.get_logger("test")
        # Keys the redaction does not know: the values must hide themselves.
        log.info("started", settings=settings, codec_keys=settings.codec_keys, tokens=settings.api_tokens)
        log.info("secret", xero_client_secret=settings.xero_client_secret.get_secret_value())
        logging.getLogger("stdlib").warning("settings %s", settings)
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = handlers, level
    written = stream.getvalue()
    assert written.count("\n") == 3
    leaked = [value for value in secret_values() if value in written]
    assert not leaked, leaked


# --- Temporal's own client configuration -------------------------------------------------------------------


def test_without_temporal_configuration_the_defaults_connect_in_plaintext() -> None:
    settings = Settings()
    assert (settings.temporal_address, settings.temporal_namespace) == ("127.0.0.1:7233", "default")
    assert settings.temporal_api_key is None
    assert tls_config(settings) is False


def test_temporal_environment_variables_fill_what_pssync_settings_leave_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "ns.acct.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "ns.acct")
    monkeypatch.setenv("TEMPORAL_API_KEY", "cloud-api-key-1")
    monkeypatch.setenv("PSSYNC_TEMPORAL_NAMESPACE", "ours.acct")
    settings = Settings()
    assert settings.temporal_address == "ns.acct.tmprl.cloud:7233"
    assert settings.temporal_namespace == "ours.acct"
    assert settings.temporal_api_key is not None
    assert settings.temporal_api_key.get_secret_value() == "cloud-api-key-1"
    assert "cloud-api-key-1" not in repr(settings)
    # An API key means Temporal Cloud, which takes TLS only.
    assert tls_config(settings) is True


@pytest.mark.parametrize(("variable", "value"), [("TEMPORAL_TLS", "false"), ("PSSYNC_TEMPORAL_TLS", "false")])
def test_an_api_key_goes_without_tls_only_when_tls_is_explicitly_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str
) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("PSSYNC_TEMPORAL_API_KEY", "key")
    monkeypatch.setenv(variable, value)
    assert tls_config(Settings()) is False


def test_a_temporal_profile_gives_address_namespace_key_and_tls_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, pem in (("ca.pem", b"CA"), ("client.pem", b"CERT"), ("client.key", b"KEY")):
        (tmp_path / name).write_bytes(pem)
    config = tmp_path / "temporal.toml"
    config.write_text(
        f"""
[profile.default]
address = "localhost:7233"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"

[profile.cloud.tls]
server_name = "ns.acct.tmprl.cloud"
server_ca_cert_path = "{tmp_path / "ca.pem"}"
client_cert_path = "{tmp_path / "client.pem"}"
client_key_path = "{tmp_path / "client.key"}"
"""
    )
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    monkeypatch.setenv("PSSYNC_TEMPORAL_PROFILE", "cloud")
    settings = Settings()
    assert settings.temporal_address == "ns.acct.tmprl.cloud:7233"
    assert settings.temporal_namespace == "ns.acct"
    assert settings.temporal_tls_client_key_path == str(tmp_path / "client.key")
    tls = tls_config(settings)
    assert not isinstance(tls, bool)
    assert (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key) == (b"CA", b"CERT", b"KEY")
    assert tls.domain == "ns.acct.tmprl.cloud"

    # A PSSYNC_ value replaces the profile's, however the profile gave it.
    monkeypatch.setenv("PSSYNC_TEMPORAL_TLS_CLIENT_KEY_DATA", "OTHER KEY")
    tls = tls_config(Settings())
    assert not isinstance(tls, bool) and tls.client_private_key == b"OTHER KEY"


def test_temporal_pem_text_from_the_environment_is_used_and_the_key_kept_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_DATA", "CERT TEXT")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_DATA", "KEY TEXT")
    settings = Settings()
    assert "KEY TEXT" not in repr(settings)
    tls = tls_config(settings)
    assert not isinstance(tls, bool)
    assert (tls.client_cert, tls.client_private_key) == (b"CERT TEXT", b"KEY TEXT")


def test_a_missing_temporal_profile_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ValidationError, match="Temporal client configuration could not be loaded"):
        Settings(temporal_profile="cloud")


def test_an_unreadable_temporal_config_file_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text('[profile.default]\napi_key = "cloud-api-key-unterminated\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config))
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "line 2" in str(refused.value)
    assert "cloud-api-key-unterminated" not in str(refused.value)


def test_a_client_certificate_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs its private key"):
        Settings(temporal_tls_client_cert_path=str(tmp_path / "client.pem"))
    with pytest.raises(ValidationError, match="not both"):
        Settings(
            temporal_tls_server_ca_cert_path=str(tmp_path / "ca.pem"), temporal_tls_server_ca_cert_data="CA"
        )


def test_any_tls_setting_turns_tls_on(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"CA")
    tls = tls_config(Settings(temporal_tls_server_ca_cert_path=str(tmp_path / "ca.pem")))
    assert not isinstance(tls, bool) and tls.server_root_ca_cert == b"CA"
    assert tls_config(Settings(temporal_tls=True)) is True
