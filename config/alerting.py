"""Where each owning team hears about its incidents: a JSON webhook and email recipients.

A team's channels are looked up by the exception owner's name (`finance`, `pmo`, `sales_ops`, `hr_ops`,
`integration_support`); the `default` entry serves every team not listed. The webhook URL is a secret:
Slack and Teams incoming webhooks carry their credential in the URL itself.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_TEAM = "default"


class AlertChannels(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    webhook_url: SecretStr | None = None
    email_to: tuple[str, ...] = Field(default=())

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            local, at, domain = address.strip().rpartition("@")
            if not (local and at and domain) or address != address.strip():
                raise ValueError(f"{address!r} is not an email address")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The URL is never echoed: it holds the webhook's credential.
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("webhook_url must be an http(s) URL")
        return value
