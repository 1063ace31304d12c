"""What a team reads: an incident's notification as an email and as a JSON webhook payload.

One notification names one incident; several queued for the same channel at once go out as one digest,
so a burst of exceptions is one message per team, not hundreds. The webhook payload is Slack- and
Teams-compatible (`text`, and the MessageCard fields of a Teams incoming webhook) and carries every event
as data under `pssync` for any other receiver. Message ids are derived from the incidents, so a resend
after a crash is recognisable as the same message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

from ledger.alert_incidents import QueuedNotification
from ledger.alert_vocab import AlertKind, AlertPhase

KIND_LABELS = {
    AlertKind.NEW_EXCEPTION: "New exception",
    AlertKind.APPROVAL_OVERDUE: "Invoice waiting for approval past its deadline",
    AlertKind.FEED_STALE: "Feed not read for too long",
    AlertKind.VENDOR_FAILING: "Vendor failing",
}
TEAM_LABELS = {
    "finance": "Finance",
    "pmo": "PMO",
    "sales_ops": "Sales ops",
    "hr_ops": "HR ops",
    "integration_support": "Integration support",
    "default": "ps-sync",
}
TITLE_SHOWN = 160
DIGEST_LISTED = 50
OPEN_COLOUR, RESOLVED_COLOUR = "D93F0B", "2EB67D"


@dataclass(frozen=True)
class Links:
    temporal_ui_url: str
    namespace: str
    ops_url: str

    def run(self, workflow_id: str | None) -> str | None:
        if not workflow_id:
            return None
        base = self.temporal_ui_url.rstrip("/")
        return f"{base}/namespaces/{quote(self.namespace)}/workflows/{quote(workflow_id, safe='')}"


@dataclass(frozen=True)
class AlertMessage:
    team: str
    subject: str
    body: str
    message_id: str
    in_reply_to: str | None
    events: list[dict[str, Any]]
    resolved_only: bool

    def email(self, sender: str, recipients: Sequence[str]) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = self.subject
        message["From"] = sender
        message["To"] = ", ".join(recipients)
        message["Message-ID"] = self.message_id
        if self.in_reply_to:
            # Mail clients thread the resolution under the opening.
            message["In-Reply-To"] = self.in_reply_to
            message["References"] = self.in_reply_to
        message.set_content(self.body)
        return message

    def webhook_payload(self) -> dict[str, Any]:
        return {
            "text": f"*{self.subject}*\n{self.body}",
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": self.subject,
            "title": self.subject,
            "themeColor": RESOLVED_COLOUR if self.resolved_only else OPEN_COLOUR,
            "pssync": {"team": self.team, "message_id": self.message_id, "events": self.events},
        }


def team_label(team: str) -> str:
    return TEAM_LABELS.get(team, team)


def compose(
    team: str, notifications: Sequence[QueuedNotification], links: Links, *, sender_domain: str
) -> AlertMessage:
    if not notifications:
        raise ValueError("a message needs at least one notification")
    events = [_event(item, links) for item in notifications]
    resolved_only = all(item.phase == AlertPhase.RESOLVED for item in notifications)
    if len(notifications) == 1:
        item = notifications[0]
        return AlertMessage(
            team=team,
            subject=_subject(item, team),
            body=_body(item, links),
            message_id=_message_id(item.incident.id, item.phase, sender_domain),
            in_reply_to=(
                _message_id(item.incident.id, AlertPhase.OPENED, sender_domain)
                if item.phase == AlertPhase.RESOLVED
                else None
            ),
            events=events,
            resolved_only=resolved_only,
        )
    opened = [item for item in notifications if item.phase == AlertPhase.OPENED]
    resolved = [item for item in notifications if item.phase == AlertPhase.RESOLVED]
    counts = ", ".join(
        part
        for part in (f"{len(opened)} new" if opened else "", f"{len(resolved)} resolved" if resolved else "")
        if part
    )
    lines = [f"{team_label(team)}: {counts}.", ""]
    for item in notifications[:DIGEST_LISTED]:
        mark = "RESOLVED" if item.phase == AlertPhase.RESOLVED else "NEW"
        lines.append(f"- [{mark}] {KIND_LABELS[item.incident.kind]}: {_short(item.incident.title)}")
    if len(notifications) > DIGEST_LISTED:
        lines.append(f"- ... and {len(notifications) - DIGEST_LISTED} more")
    lines += ["", f"Ops page: {links.ops_url}"]
    digest = hashlib.sha256(",".join(str(item.delivery_id) for item in notifications).encode()).hexdigest()
    return AlertMessage(
        team=team,
        subject=f"[ps-sync] {team_label(team)}: {counts}",
        body="\n".join(lines),
        message_id=f"<pssync.digest.{digest[:24]}@{sender_domain}>",
        in_reply_to=None,
        events=events,
        resolved_only=resolved_only,
    )


def _subject(item: QueuedNotification, team: str) -> str:
    what = f"{KIND_LABELS[item.incident.kind]} for {team_label(team)}: {_short(item.incident.title)}"
    return f"[ps-sync] {'Resolved: ' if item.phase == AlertPhase.RESOLVED else ''}{what}"


def _body(item: QueuedNotification, links: Links) -> str:
    incident = item.incident
    lines = [incident.title, ""]
    lines.append(f"Opened: {_when(incident.opened_at)}")
    if item.phase == AlertPhase.RESOLVED and incident.cleared_at is not None:
        open_for = _age(incident.cleared_at - incident.opened_at)
        lines.append(f"Resolved: {_when(incident.cleared_at)} (open for {open_for})")
    for key, value in incident.detail.items():
        if value not in (None, "", [], {}):
            lines.append(f"{key.replace('_', ' ').capitalize()}: {value}")
    run = links.run(incident.detail.get("workflow_id"))
    if run:
        lines.append(f"Run: {run}")
    lines.append(f"Ops page: {links.ops_url}")
    return "\n".join(lines)


def _event(item: QueuedNotification, links: Links) -> dict[str, Any]:
    incident = item.incident
    return {
        "phase": item.phase.value,
        "incident_id": incident.id,
        "kind": incident.kind.value,
        "owner": incident.owner,
        "subject": incident.subject,
        "occurrence": incident.occurrence,
        "title": incident.title,
        "opened_at": incident.opened_at.isoformat(),
        "cleared_at": incident.cleared_at.isoformat() if incident.cleared_at else None,
        "detail": incident.detail,
        "run_url": links.run(incident.detail.get("workflow_id")),
    }


def _message_id(incident_id: int, phase: AlertPhase, domain: str) -> str:
    return f"<pssync.incident-{incident_id}.{phase.value}@{domain}>"


def _short(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= TITLE_SHOWN else line[: TITLE_SHOWN - 1] + "…"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min {seconds % 60} s"
