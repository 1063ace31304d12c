"""The configured channels each team is reached through, and sending one message through one of them.

A channel is named `webhook:{team}` or `email:{team}`, the team as `Settings.alert_channels` lists it (the
`default` entry serves the teams it does not list). Email needs `alert_smtp_host` as well as recipients.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass

import httpx

from activities.alert_messages import AlertMessage
from config import Settings
from config.alerting import DEFAULT_TEAM, AlertChannels

WEBHOOK, EMAIL = "webhook", "email"
SEND_TIMEOUT_SECONDS = 15.0


class ChannelUnavailable(Exception):
    """The channel is not configured (any more): its queued notifications can never be sent."""


@dataclass(frozen=True)
class ChannelName:
    kind: str
    team: str

    @classmethod
    def parse(cls, name: str) -> ChannelName:
        kind, _, team = name.partition(":")
        return cls(kind=kind, team=team)

    def __str__(self) -> str:
        return f"{self.kind}:{self.team}"


def team_channels(settings: Settings, owner: str) -> tuple[str, AlertChannels | None]:
    """The team entry that serves `owner`: its own, else `default`, else none."""
    if owner in settings.alert_channels:
        return owner, settings.alert_channels[owner]
    return DEFAULT_TEAM, settings.alert_channels.get(DEFAULT_TEAM)


def channels_for(settings: Settings, owner: str) -> list[str]:
    team, channels = team_channels(settings, owner)
    if channels is None:
        return []
    names = []
    if channels.webhook_url is not None:
        names.append(str(ChannelName(WEBHOOK, team)))
    if channels.email_to and settings.alert_smtp_host:
        names.append(str(ChannelName(EMAIL, team)))
    return names


async def send(
    settings: Settings, http: httpx.AsyncClient, channel: ChannelName, message: AlertMessage
) -> None:
    """Deliver `message`; raises ChannelUnavailable, or whatever the transport raised."""
    configured = settings.alert_channels.get(channel.team)
    if channel.kind == WEBHOOK and configured is not None and configured.webhook_url is not None:
        try:
            response = await http.post(
                configured.webhook_url.get_secret_value(),
                json=message.webhook_payload(),
                timeout=SEND_TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as error:
            # Named by type only: httpx's messages can quote the URL, which holds the webhook's credential.
            raise RuntimeError(f"webhook unreachable ({type(error).__name__})") from None
        if response.status_code >= 300:
            # The body, not the URL: the URL holds the webhook's credential.
            raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:300]}")
        return
    if channel.kind == EMAIL and configured is not None and configured.email_to and settings.alert_smtp_host:
        await asyncio.to_thread(_send_email, settings, message, list(configured.email_to))
        return
    raise ChannelUnavailable(f"channel {channel} is not configured")


def _send_email(settings: Settings, message: AlertMessage, recipients: list[str]) -> None:
    host = settings.alert_smtp_host
    assert host is not None
    email = message.email(settings.alert_email_from, recipients)
    with smtplib.SMTP(host, settings.alert_smtp_port, timeout=SEND_TIMEOUT_SECONDS) as smtp:
        if settings.alert_smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.alert_smtp_username:
            password = settings.alert_smtp_password.get_secret_value() if settings.alert_smtp_password else ""
            smtp.login(settings.alert_smtp_username, password)
        smtp.send_message(email, from_addr=settings.alert_email_from, to_addrs=recipients)
