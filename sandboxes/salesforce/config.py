"""Settings of the Salesforce sandbox, from PSSYNC_SANDBOX_SALESFORCE_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandboxes.faults import FaultConfig

DEFAULT_OUTBOUND_FIELDS = (
    "Name",
    "StageName",
    "IsWon",
    "AccountId",
    "CloseDate",
    "Amount",
    "CurrencyIsoCode",
    "Legal_Entity__c",
    "PSSync_Key__c",
    "LastModifiedDate",
)


class SalesforceSandboxConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PSSYNC_SANDBOX_SALESFORCE_", env_nested_delimiter="__", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 8701
    # Where the org's records and the outbound queue survive restarts; None keeps them in memory.
    state_path: str | None = None
    # The URL users and outbound messages see for this org; defaults to http://host:port.
    public_url: str | None = None

    org_id: str = "00D000000000001EAA"
    client_id: str = "dev-salesforce-client"
    client_secret: str = "dev-salesforce-secret"
    latest_api_version: str = "62.0"
    default_currency: str = "GBP"
    # Salesforce's default session timeout is two hours.
    token_lifetime_seconds: int = Field(default=7200, ge=0)

    # JWT bearer flow: the connected app's certificate (or bare public key) as PEM text or a file path.
    jwt_certificate_pem: str | None = None
    jwt_certificate_path: str | None = None
    jwt_audience: str = "https://login.salesforce.com"
    jwt_usernames: list[str] = Field(default_factory=lambda: ["integration@northwind.example"])

    # Daily API request allocation: always counted and reported in Sforce-Limit-Info, refused
    # (403 REQUEST_LIMIT_EXCEEDED) only when enforced, so tests and the demo never trip over it by accident.
    daily_api_limit: int = Field(default=100_000, ge=1)
    enforce_api_limit: bool = False

    # Outbound messages for Opportunity -> Closed Won.
    outbound_url: str | None = None
    outbound_action_id: str = "04k8d0000000001AAA"
    outbound_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_OUTBOUND_FIELDS))
    outbound_max_per_message: int = Field(default=100, ge=1, le=100)
    # Salesforce backs off exponentially up to two hours and gives up after 24 hours.
    outbound_retry_base_seconds: float = Field(default=1.0, gt=0)
    outbound_retry_max_seconds: float = Field(default=7200.0, gt=0)
    outbound_max_age_seconds: float = Field(default=86400.0, gt=0)
    outbound_poll_seconds: float = Field(default=0.5, gt=0)
    outbound_timeout_seconds: float = Field(default=10.0, gt=0)

    faults: FaultConfig = Field(default_factory=FaultConfig)

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
