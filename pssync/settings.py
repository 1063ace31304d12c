"""The one settings class. Built in the composition root (worker, ingress, CLI), never at import."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pssync.canonical import LegalEntity, Money

DEV_SECRET_PREFIX = "dev-"


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
        ),
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PSSYNC_", env_nested_delimiter="__", extra="ignore")

    environment: str = Field(default="development", description="development | test | production")

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "ps-sync"

    database_url: str = "sqlite:///.data/pssync.sqlite"

    salesforce_base_url: str = "http://127.0.0.1:8701"
    salesforce_api_version: str = "v62.0"
    salesforce_client_id: str = "dev-salesforce-client"
    salesforce_client_secret: str = "dev-salesforce-secret"
    salesforce_org_id: str = "00D000000000001EAA"
    # JWT bearer flow instead of client credentials when both are set (PEM file of the connected app's key).
    salesforce_jwt_private_key_path: str | None = None
    salesforce_jwt_username: str | None = None
    # Salesforce outbound messages carry no signature: the endpoint URL holds this shared token.
    salesforce_outbound_token: str = "dev-outbound-token"

    kantata_base_url: str = "http://127.0.0.1:8702"
    kantata_client_id: str = "dev-kantata-client"
    kantata_client_secret: str = "dev-kantata-secret"

    xero_base_url: str = "http://127.0.0.1:8703"
    xero_identity_url: str = "http://127.0.0.1:8703"
    xero_client_id: str = "dev-xero-client"
    xero_client_secret: str = "dev-xero-secret"
    xero_tenant_id: str = "4e3a5f1c-0000-4000-8000-00000000a001"
    xero_webhook_key: str = "dev-xero-webhook-key"
    xero_max_concurrency: int = 5
    # Xero's per-tenant minute limit; this process paces itself under it (split it between workers).
    xero_calls_per_minute: int = 60

    tryton_url: str = "http://127.0.0.1:18000"
    tryton_database: str = "tryton"
    tryton_user: str = "admin"
    tryton_password: str = "dev-tryton-admin"

    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8700
    ingress_public_url: str = "http://127.0.0.1:8700"
    # Role tokens for the approval and exception endpoints ("token:role,token:role").
    api_tokens: str = "dev-finance-token:finance,dev-ops-token:ops"

    # Temporal payload encryption: "key-id:base64(32 bytes)" pairs; the active key encrypts, all decrypt.
    codec_keys: str = "dev-2026:ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="
    codec_active_key_id: str = "dev-2026"
    temporal_ui_url: str = "http://127.0.0.1:8233"

    entities: list[LegalEntity] = Field(default_factory=default_entities)
    kantata_poll_interval_seconds: float = 5.0
    # Payments are polled (If-Modified-Since): no ERP we serve sends payment events.
    payment_poll_interval_seconds: float = 30.0
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            placeholders = [
                name
                for name in (
                    "salesforce_client_secret",
                    "salesforce_outbound_token",
                    "kantata_client_secret",
                    "xero_client_secret",
                    "xero_webhook_key",
                    "tryton_password",
                    "api_tokens",
                    "codec_keys",
                )
                if DEV_SECRET_PREFIX in str(getattr(self, name))
            ]
            if placeholders:
                raise ValueError(
                    f"placeholder secrets are not allowed in production: {', '.join(placeholders)}"
                )
        return self

    def entity(self, code: str) -> LegalEntity:
        for entity in self.entities:
            if entity.code == code:
                return entity
        raise KeyError(f"unknown legal entity {code!r}; configured: {[e.code for e in self.entities]}")

    def token_roles(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        for pair in filter(None, (part.strip() for part in self.api_tokens.split(","))):
            token, _, role = pair.partition(":")
            roles[token] = role
        return roles
