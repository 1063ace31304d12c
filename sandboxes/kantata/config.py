"""Settings of one Kantata sandbox run, from the environment (PSSYNC_SANDBOX_KANTATA_*)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KantataSandboxConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PSSYNC_SANDBOX_KANTATA_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8702
    state_path: str | None = Field(
        default=None, description="SQLite file for persistence; None keeps memory only"
    )
    # The same dev credentials as settings.Settings, so the app and the sandbox agree out of the box.
    client_id: str = "dev-kantata-client"
    client_secret: str = "dev-kantata-secret"
    token_lifetime_seconds: int = 7200
    account_id: str = "4100"
    # Rate limits are off unless switched on (the benchmark does); requests per rolling minute per token.
    rate_limit_per_minute: int | None = None
    endpoint_rate_limit_per_minute: int | None = None
    event_retention_days: float = 9.0
    # Seeded lag between a change and its event becoming visible: the out-of-order feed Kantata warns about.
    event_lag_max_seconds: float = 0.0
    seed: int = 0
