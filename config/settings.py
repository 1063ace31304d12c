"""The one settings class. Built in the composition root (worker, ingress, CLI), never at import."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_serializer, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.envconfig import ClientConfigProfile, DataSource

from canonical import LegalEntity, Money
from config.alerting import AlertChannels

DEV_SECRET_PREFIX = "dev-"

Environment = Literal["development", "test", "production"]
# Where the development placeholders may stand in for secrets; every other environment needs real ones.
PLACEHOLDERS_ALLOWED: frozenset[str] = frozenset({"development", "test"})

# Temporal's own client configuration (docs.temporal.io/develop/environment-configuration). Only when one of
# these is set, or PSSYNC_TEMPORAL_PROFILE, is it read: a developer's temporal CLI profile in
# ~/.config/temporalio must not silently point ps-sync at another cluster.
TEMPORAL_ENV_VARS = (
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_PROFILE",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_DATA",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_DATA",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
    "TEMPORAL_TLS_SERVER_NAME",
)


def default_entities() -> list[LegalEntity]:
    return [
        LegalEntity(
            code="UK",
            name="Northwind Consulting Ltd",
            erp="xero",
            currency="GBP",
            countries=("GB", "IE"),
            tax_codes=("OUTPUT2", "ZERORATEDOUTPUT", "EXEMPTOUTPUT"),
            default_tax_code="OUTPUT2",
            approval_threshold=Money(amount=Decimal("5000"), currency="GBP"),
            # Xero keeps Quantity to 4 decimals and, with the `unitdp=4` the connector sends, UnitAmount to 4;
            # LineAmount is Quantity x UnitAmount rounded half-up to the cent
            # (developer.xero.com/documentation/api-guides/rounding-in-xero).
            quantity_places=4,
            unit_price_places=4,
        ),
        LegalEntity(
            code="EU",
            name="Northwind Consulting B.V.",
            erp="tryton",
            currency="EUR",
            countries=("NL", "DE", "FR", "BE", "ES", "IT", "AT", "PT", "LU", "FI"),
            tax_codes=("VAT21", "VAT0"),
            default_tax_code="VAT21",
            approval_threshold=Money(amount=Decimal("5000"), currency="EUR"),
            line_rounding="half_even",
            # Tryton keeps a line's quantity to its unit's digits (2 for the stock Hour unit), refusing more;
            # unit_price to price_digits (4); the amount is currency.round(quantity x unit_price), half-even.
            quantity_places=2,
            unit_price_places=4,
        ),
        LegalEntity(
            code="US",
            name="Northwind Consulting Inc.",
            erp="netsuite",
            currency="USD",
            countries=("US",),
            tax_codes=("US-SALES-6", "US-EXEMPT"),
            default_tax_code="US-SALES-6",
            approval_threshold=Money(amount=Decimal("5000"), currency="USD"),
            # NetSuite books a line at quantity x rate rounded to the currency's precision (2 for USD) and
            # keeps an amount it is sent; the connector sends quantities and rates to 4 decimals and the
            # amount rounded half-up (connectors/netsuite/mapping.py says what could not be confirmed).
            quantity_places=4,
            unit_price_places=4,
        ),
    ]


class Settings(BaseSettings):
    # A refused value is named, never echoed: pydantic would print the whole input, secrets included.
    model_config = SettingsConfigDict(
        env_prefix="PSSYNC_", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )

    environment: Environment = "development"

    # Temporal's own settings (a profile of its TOML file, TEMPORAL_* variables) fill whichever of these
    # are not set here, as the Temporal CLI would read them; a PSSYNC_TEMPORAL_* value always wins.
    temporal_profile: str | None = None
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    # An API key (Temporal Cloud) turns TLS on unless temporal_tls is explicitly false.
    temporal_api_key: SecretStr | None = None
    # None: TLS only when an API key or any TLS setting below asks for it.
    temporal_tls: bool | None = None
    temporal_tls_server_name: str | None = None
    # Each PEM as a file path or as the text itself, not both.
    temporal_tls_server_ca_cert_path: str | None = None
    temporal_tls_server_ca_cert_data: str | None = None
    temporal_tls_client_cert_path: str | None = None
    temporal_tls_client_cert_data: str | None = None
    temporal_tls_client_key_path: str | None = None
    temporal_tls_client_key_data: SecretStr | None = None
    task_queue: str = "ps-sync"

    database_url: str = "sqlite:///.data/pssync.sqlite"

    salesforce_base_url: str = "http://127.0.0.1:8701"
    salesforce_api_version: str = "v62.0"
    salesforce_client_id: str = "dev-salesforce-client"
    salesforce_client_secret: SecretStr = SecretStr("dev-salesforce-secret")
    salesforce_org_id: str = "00D000000000001EAA"
    # JWT bearer flow instead of client credentials when both are set (PEM file of the connected app's key).
    salesforce_jwt_private_key_path: str | None = None
    salesforce_jwt_username: str | None = None
    # Salesforce outbound messages carry no signature: the endpoint URL holds this shared token.
    salesforce_outbound_token: SecretStr = SecretStr("dev-outbound-token")

    kantata_base_url: str = "http://127.0.0.1:8702"
    kantata_client_id: str = "dev-kantata-client"
    kantata_client_secret: SecretStr = SecretStr("dev-kantata-secret")

    xero_base_url: str = "http://127.0.0.1:8703"
    xero_identity_url: str = "http://127.0.0.1:8703"
    xero_client_id: str = "dev-xero-client"
    xero_client_secret: SecretStr = SecretStr("dev-xero-secret")
    xero_tenant_id: str = "4e3a5f1c-0000-4000-8000-00000000a001"
    xero_webhook_key: SecretStr = SecretStr("dev-xero-webhook-key")
    xero_max_concurrency: int = 5
    # Xero's per-tenant minute limit. The workers share it through the ledger, so this is the deployment's
    # budget for the tenant, not one worker's.
    xero_calls_per_minute: int = Field(default=60, ge=1)
    # Calls of each minute kept for posting and new deals: background work (status polls, the payment feed,
    # reference and reconciliation reads) stops while only these remain. None: a third of the minute.
    xero_background_reserve: int | None = Field(default=None, ge=0)
    # A hold on a Xero call up to this long is waited out inside the activity attempt; a longer one fails the
    # attempt with the wait as its retry delay.
    xero_max_wait_in_attempt_seconds: float = Field(default=5.0, ge=0)

    tryton_url: str = "http://127.0.0.1:18000"
    tryton_database: str = "tryton"
    tryton_user: str = "admin"
    tryton_password: SecretStr = SecretStr("dev-tryton-admin")

    # NetSuite: https://<account id>.suitetalk.api.netsuite.com (account 1234567_SB1 is host 1234567-sb1).
    netsuite_base_url: str = "http://127.0.0.1:8704"
    netsuite_account_id: str = "1234567"
    # OAuth 2.0 client credentials (a JWT signed with the certificate mapped to the integration) is what
    # NetSuite recommends and the only scheme for new integrations from 2027.1; token-based authentication
    # (OAuth 1.0a) keeps existing ones working. Development uses TBA: its credentials need no key pair.
    netsuite_auth: Literal["tba", "oauth2"] = "tba"
    netsuite_consumer_key: str = "dev-netsuite-consumer-key"
    netsuite_consumer_secret: SecretStr = SecretStr("dev-netsuite-consumer-secret")
    netsuite_token_id: str = "dev-netsuite-token-id"
    netsuite_token_secret: SecretStr = SecretStr("dev-netsuite-token-secret")
    netsuite_client_id: str = "dev-netsuite-client-id"
    netsuite_certificate_id: str = "dev-netsuite-certificate-id"
    # The certificate's private key (PEM text, or the path of a PEM file), for netsuite_auth=oauth2 only.
    netsuite_private_key: SecretStr | None = None
    # The subsidiary that books the entity, and the service item invoice lines are booked against (its name).
    netsuite_subsidiary_id: str = "1"
    netsuite_service_item: str = "Consulting"
    # This deployment's share of the account's concurrency limit (shared with every other integration).
    netsuite_max_concurrency: int = Field(default=4, ge=1)

    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8700
    ingress_public_url: str = "http://127.0.0.1:8700"
    # Role tokens for the approval and exception endpoints ("token:role,token:role"). Development only: they
    # name a role, not a person, so the ingress refuses them in production.
    api_tokens: SecretStr = SecretStr("dev-finance-token:finance,dev-ops-token:ops")
    # People's tokens are signed JWTs (sub, name, role, exp). HS256 with this shared secret suits development
    # and tests; production verifies RS256/ES256 tokens from its identity provider against the public key
    # (PEM text, or the path of a PEM file), and checks issuer and audience when they are set. Clear the
    # secret (PSSYNC_JWT_SECRET=) where only the identity provider may issue tokens.
    jwt_secret: SecretStr | None = SecretStr("dev-jwt-secret-for-local-development-only")
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Clock skew tolerated between the token's issuer and this host.
    jwt_leeway_seconds: int = 30

    # Temporal payload encryption: "key-id:base64(32 bytes)" pairs; the active key encrypts, all decrypt.
    codec_keys: SecretStr = SecretStr("dev-2026:ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE=")
    codec_active_key_id: str = "dev-2026"
    temporal_ui_url: str = "http://127.0.0.1:8233"

    # The systems this deployment runs: a connector of that name serves each role. The ERPs are named by the
    # legal entities below, one per entity.
    crm: str = "salesforce"
    psa: str = "kantata"
    entities: list[LegalEntity] = Field(default_factory=default_entities)
    psa_poll_interval_seconds: float = 5.0
    # Payments are polled (If-Modified-Since): no ERP we serve sends payment events.
    payment_poll_interval_seconds: float = 30.0
    # A vendor call still failing on this attempt, or this long after it was first scheduled, opens an
    # integration-support exception for its vendor and operation (one per incident), resolved by ps-sync
    # once such a call succeeds again.
    vendor_trouble_attempts: int = Field(default=5, ge=1)
    vendor_trouble_after_seconds: float = Field(default=120.0, gt=0)
    # How stale a worker's view of the open incidents (other workers' too) may be before a retried call's
    # success makes it read them again; it never reads them more often than this.
    vendor_trouble_recheck_seconds: float = Field(default=5.0, gt=0)
    # How often a worker writes the counts and latest error of an incident it already knows: a new run or
    # call joining it is written at once.
    vendor_trouble_update_seconds: float = Field(default=15.0, ge=0)

    # Alerts: each owning team's channels (config.alerting; JSON, e.g.
    # {"finance": {"webhook_url": "https://...", "email_to": ["ar@example.com"]}, "default": {...}}).
    alert_channels: dict[str, AlertChannels] = Field(default_factory=dict)
    alert_smtp_host: str | None = None
    alert_smtp_port: int = Field(default=25, ge=1, le=65535)
    alert_smtp_starttls: bool = False
    alert_smtp_username: str | None = None
    alert_smtp_password: SecretStr | None = None
    alert_email_from: str = "ps-sync@localhost"
    # How often the alert scan looks for new and cleared incidents (a Temporal Schedule).
    alert_scan_interval_seconds: float = Field(default=60.0, ge=5)
    # A feed not read successfully for this long is stale; a vendor-trouble incident this old pages its team.
    alert_feed_stale_after_seconds: float = Field(default=900.0, gt=0)
    alert_vendor_failing_after_seconds: float = Field(default=600.0, ge=0)
    # host:port where the worker serves the Temporal SDK's and ps-sync's metrics (/metrics); None: not served.
    worker_metrics_address: str | None = None
    # Runs the worker keeps in memory between their tasks (about 140 KB each); one evicted is replayed from
    # its history when it next has work. The benchmark's 500 projects bill at once and leave 500 invoices
    # waiting for payment each month: with 600, three months peaked at 333 MB where the SDK's 1,000 reached
    # 375 MB, for the same CPU. Raise it to the runs a worker has active at once.
    worker_cached_runs: int = Field(default=600, ge=1)
    # When set, the ingress's /metrics answers only `Authorization: Bearer <this>` (Prometheus's token).
    metrics_token: SecretStr | None = None
    log_level: str = "INFO"

    @field_validator("environment", mode="before")
    @classmethod
    def _known_environment(cls, value: Any) -> Any:
        # Refused rather than guessed: "prod" or "staging" must not run with development placeholders.
        if value not in get_args(Environment):
            raise ValueError(
                f"PSSYNC_ENVIRONMENT must be one of {', '.join(get_args(Environment))}, not {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _fill_from_temporal_configuration(self) -> Settings:
        if self.temporal_profile is None and not any(os.environ.get(name) for name in TEMPORAL_ENV_VARS):
            return self
        try:
            # Temporal's precedence: its TEMPORAL_* variables over the profile's file entries.
            profile = ClientConfigProfile.load(self.temporal_profile)
        except Exception as error:
            # Only the first line: a TOML parse error goes on to quote the offending line, API key and all.
            where = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(f"Temporal client configuration could not be loaded: {where}") from None
        explicit = self.model_fields_set
        fill: dict[str, Any] = {
            "temporal_address": profile.address,
            "temporal_namespace": profile.namespace,
            "temporal_api_key": SecretStr(profile.api_key) if profile.api_key is not None else None,
        }
        tls = profile.tls
        if tls is not None:
            fill["temporal_tls"] = None if tls.disabled is None else not tls.disabled
            fill["temporal_tls_server_name"] = tls.server_name
            for pem, source in (
                ("server_ca_cert", tls.server_root_ca_cert),
                ("client_cert", tls.client_cert),
                ("client_key", tls.client_private_key),
            ):
                path, data = f"temporal_tls_{pem}_path", f"temporal_tls_{pem}_data"
                # A path given here replaces the profile's PEM however the profile gives it, and so does text.
                if path in explicit or data in explicit:
                    continue
                fill[path], fill[data] = _path_or_text(source, secret=pem == "client_key")
        for name, value in fill.items():
            if value is not None and name not in explicit:
                setattr(self, name, value)
        return self

    @model_validator(mode="after")
    def _temporal_tls_is_consistent(self) -> Settings:
        for pem in ("server_ca_cert", "client_cert", "client_key"):
            if getattr(self, f"temporal_tls_{pem}_path") and getattr(self, f"temporal_tls_{pem}_data"):
                raise ValueError(f"set temporal_tls_{pem}_path or temporal_tls_{pem}_data, not both")
        has_cert = bool(self.temporal_tls_client_cert_path or self.temporal_tls_client_cert_data)
        has_key = bool(self.temporal_tls_client_key_path or self.temporal_tls_client_key_data)
        if has_cert != has_key:
            raise ValueError(
                "a Temporal TLS client certificate needs its private key, and the key its certificate"
            )
        return self

    @model_validator(mode="after")
    def _no_dev_secrets_outside_development(self) -> Settings:
        if self.environment not in PLACEHOLDERS_ALLOWED:
            placeholders = [name for name, value in self._secrets() if DEV_SECRET_PREFIX in value]
            if placeholders:
                raise ValueError(
                    f"placeholder ({DEV_SECRET_PREFIX}...) secrets are not allowed in {self.environment}: "
                    f"set {', '.join(placeholders)}"
                )
        return self

    def _secrets(self) -> Iterator[tuple[str, str]]:
        # Every SecretStr field, so a secret added later is checked without being listed here.
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                yield name, value.get_secret_value()
        for team, channels in self.alert_channels.items():
            if channels.webhook_url is not None:
                yield f"alert_channels.{team}.webhook_url", channels.webhook_url.get_secret_value()

    # The ledger's URL carries the PostgreSQL password in production; it stays a plain str for its readers,
    # so repr and dumps mask the password instead.
    @field_serializer("database_url")
    def _database_url_without_password(self, url: str) -> str:
        return _mask_password(url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, _mask_password(value) if name == "database_url" else value

    def entity(self, code: str) -> LegalEntity:
        for entity in self.entities:
            if entity.code == code:
                return entity
        raise KeyError(f"unknown legal entity {code!r}; configured: {[e.code for e in self.entities]}")

    def token_roles(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        for pair in filter(None, (part.strip() for part in self.api_tokens.get_secret_value().split(","))):
            token, _, role = pair.partition(":")
            roles[token] = role
        return roles


def _path_or_text(source: DataSource | None, *, secret: bool) -> tuple[str | None, str | SecretStr | None]:
    if source is None:
        return None, None
    if isinstance(source, Path):
        return str(source), None
    text = source.decode() if isinstance(source, bytes) else source
    return None, SecretStr(text) if secret else text


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
