"""Settings of the NetSuite sandbox, from the environment (PSSYNC_SANDBOX_NETSUITE_*)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandboxes.faults import FaultConfig


class GovernanceConfig(BaseModel):
    """NetSuite's limits on web services calls.

    Concurrency governance limits the calls in flight per account, across every integration (15 on the
    lowest service tier, plus 10 per SuiteCloud Plus licence); a call beyond it is refused at once with 429
    and CONCURRENCY_LIMIT_EXCEEDED. NetSuite also applies request-frequency limits per integration, whose
    numbers depend on the account and are not published: `requests_per_minute` plays one, off by default.
    """

    model_config = ConfigDict(frozen=True)

    concurrency_limit: int = Field(default=15, ge=1)
    requests_per_minute: int | None = Field(default=None, ge=1)


class NetSuiteSandboxConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PSSYNC_SANDBOX_NETSUITE_", env_nested_delimiter="__", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 8704
    state_path: str | None = Field(default=None, description="SQLite file for persistence; None: memory only")

    account_id: str = "1234567"
    company_name: str = "Northwind Consulting Inc."
    base_currency: str = "USD"

    # Token-based authentication: the integration record's consumer key and secret, and one access token.
    consumer_key: str = "dev-netsuite-consumer-key"
    consumer_secret: str = "dev-netsuite-consumer-secret"
    token_id: str = "dev-netsuite-token-id"
    token_secret: str = "dev-netsuite-token-secret"
    # How far a TBA timestamp may be from the sandbox's clock (NetSuite does not publish its window).
    timestamp_tolerance_seconds: int = Field(default=300, ge=1)

    # OAuth 2.0 client credentials: the integration's client id and the certificates mapped to it
    # (certificate id -> public key or certificate, PEM), which verify client assertions.
    client_id: str = "dev-netsuite-client-id"
    certificates: dict[str, str] = Field(default_factory=dict)
    token_lifetime_seconds: int = Field(
        default=3600, ge=1, description="NetSuite access tokens live 60 minutes"
    )

    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)
