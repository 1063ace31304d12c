"""Settings of the Xero sandbox, from the environment (PSSYNC_SANDBOX_XERO_*)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandboxes.faults import FaultConfig


class RateLimitConfig(BaseModel):
    """Xero's per-tenant limits (developer.xero.com/documentation/guides/oauth2/limits).

    The remaining-call headers always count against these numbers; `enabled` decides only whether a call
    past them is refused with 429.
    """

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    concurrent: int = Field(default=5, ge=1)
    per_minute: int = Field(default=60, ge=1)
    per_day: int = Field(default=5000, ge=1)
    app_per_minute: int = Field(default=10_000, ge=1)


class WebhookConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str | None = Field(default=None, description="delivery URL; no deliveries while unset")
    key: str = "dev-xero-webhook-key"
    # Events raised within this window travel in one payload, as Xero batches them.
    batch_window_ms: int = Field(default=100, ge=0)
    max_events_per_payload: int = Field(default=50, ge=1)
    # Xero retries with decreasing frequency for up to 24 h; tests shorten the schedule.
    retry_delays_seconds: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0, 600.0, 3600.0)
    timeout_seconds: float = Field(default=5.0, gt=0, description="Xero expects an answer within 5 s")


class XeroSandboxConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PSSYNC_SANDBOX_XERO_", env_nested_delimiter="__", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 8703
    state_path: str | None = Field(
        default=None, description="SQLite file for persistence; None keeps memory only"
    )

    client_id: str = "dev-xero-client"
    client_secret: str = "dev-xero-secret"
    token_lifetime_seconds: int = Field(default=1800, ge=1, description="Xero access tokens live 30 minutes")
    tenant_id: str = "4e3a5f1c-0000-4000-8000-00000000a001"
    tenant_name: str = "Northwind Consulting Ltd"
    provider_name: str = "ps-sync"

    idempotency_window_seconds: int = Field(default=24 * 3600, ge=1)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    faults: FaultConfig = Field(default_factory=FaultConfig)
