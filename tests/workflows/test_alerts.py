"""Alerts reach the owning team once per incident, by webhook and by email, and once more when it clears.

Real parts throughout: a Temporal dev server and the worker running AlertScan with its activities, the
ledger on SQLite, an SMTP server and a webhook receiver on free loopback ports.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr
from temporalio import workflow
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.alerts import AlertActivities, RecordAlertIncidentsInput, SendAlertsInput
from activities.vendor_incidents import IncidentRecord
from canonical import Money
from config.alerting import AlertChannels
from ledger.alert_incidents import incidents_about
from ledger.feed_state import record_feed_read
from ledger.repository import act_on_exception, open_exception
from runs import search_attributes as sa
from runs.alert_scan import AlertScanInput, AlertScanResult
from runs.time_to_billing import TimeToBillingStatus
from workflows.alert_scan import AlertScan

from ..support.receivers import SmtpServer, WebhookReceiver, smtp_server, webhook_receiver
from ..support.system import Sandboxes, System, running_system
from .helpers import eventually

FINANCE_MAIL = "accounts@northwind.example"
SUPPORT_MAIL = "integration@northwind.example"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def finance_hook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def support_hook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver


def alert_settings(smtp: SmtpServer, finance: WebhookReceiver, support: WebhookReceiver) -> dict[str, Any]:
    return {
        "alert_channels": {
            "finance": AlertChannels(webhook_url=SecretStr(finance.url), email_to=(FINANCE_MAIL,)),
            "default": AlertChannels(webhook_url=SecretStr(support.url), email_to=(SUPPORT_MAIL,)),
        },
        "alert_smtp_host": smtp.host,
        "alert_smtp_port": smtp.port,
        "alert_email_from": "ps-sync@northwind.example",
        "alert_feed_stale_after_seconds": 600.0,
        "alert_vendor_failing_after_seconds": 300.0,
    }


@pytest.fixture
async def alerting(
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
    sandboxes: Sandboxes,
    smtp: SmtpServer,
    finance_hook: WebhookReceiver,
    support_hook: WebhookReceiver,
) -> AsyncIterator[System]:
    changes = alert_settings(smtp, finance_hook, support_hook)
    async with running_system(dev_env.client, tmp_path, sandboxes, settings_changes=changes) as system:
        yield system


async def scan(system: System) -> AlertScanResult:
    return await system.client.execute_workflow(
        AlertScan.run,
        AlertScanInput(),
        id=f"alert-scan:test:{uuid.uuid4().hex[:10]}",
        task_queue=system.task_queue,
        result_type=AlertScanResult,
    )


def raise_exception(system: System, key: str, reason: str) -> int:
    with system.database.session() as session:
        return open_exception(
            session,
            dedupe_key=key,
            process="time_to_billing",
            owner="finance",
            reason=reason,
            record={"project_id": "30100001"},
            workflow_id="time-to-billing:30100001:2026-11",
        ).id


def act(system: System, exception_id: int, action: str, note: str | None = None) -> None:
    with system.database.session() as session:
        act_on_exception(session, exception_id=exception_id, action=action, actor="Ana Ops <ana>", note=note)


def events(hook: WebhookReceiver) -> list[dict[str, Any]]:
    return [event for payload in hook.payloads() for event in payload["pssync"]["events"]]


async def test_an_exception_raised_twice_and_retried_alerts_its_owner_once_and_its_resolution_once(
    alerting: System, smtp: SmtpServer, finance_hook: WebhookReceiver, support_hook: WebhookReceiver
) -> None:
    system = alerting
    reason = "xero refused invoice INV-7 (GBP 1,200.00): account 200 is archived"
    first = raise_exception(system, "time_to_billing:30100001:2026-11:posting-rejected", reason)
    # The same failure reported again is the same item, and the same incident.
    assert raise_exception(system, "time_to_billing:30100001:2026-11:posting-rejected", reason) == first

    opened = await scan(system)
    assert (opened.opened, opened.notifications_sent, opened.notifications_failed) == (1, 2, 0)

    # Retried by a person, failing again, retried again: still waiting, still the one incident.
    act(system, first, "retry")
    assert (await scan(system)).opened == 0
    assert raise_exception(system, "time_to_billing:30100001:2026-11:posting-rejected", reason) == first
    act(system, first, "retry")
    again = await scan(system)
    assert (again.opened, again.ongoing, again.notifications_sent) == (0, 1, 0)

    [posted] = finance_hook.payloads()
    assert posted["pssync"]["events"][0]["phase"] == "opened"
    assert posted["pssync"]["events"][0]["kind"] == "new_exception"
    assert posted["pssync"]["events"][0]["detail"]["exception_id"] == first
    assert "New exception for Finance" in posted["text"] and "account 200 is archived" in posted["text"]
    assert posted["@type"] == "MessageCard" and posted["summary"] == posted["title"]
    [mail] = smtp.messages()
    assert mail.recipients == [FINANCE_MAIL]
    assert mail.message["Subject"].startswith("[ps-sync] New exception for Finance")
    assert "account 200 is archived" in mail.message.get_content()
    assert "/workflows/time-to-billing%3A30100001%3A2026-11" in mail.message.get_content()
    # Finance's exception went to finance's channels only.
    assert support_hook.payloads() == []

    act(system, first, "resolve", note="account 200 re-activated")
    cleared = await scan(system)
    assert (cleared.cleared, cleared.notifications_sent) == (1, 2)
    assert (await scan(system)).notifications_sent == 0

    assert [event["phase"] for event in events(finance_hook)] == ["opened", "resolved"]
    opening, resolution = smtp.messages()
    assert resolution.message["Subject"].startswith("[ps-sync] Resolved: New exception for Finance")
    # The resolution threads under the opening in a mail client.
    assert resolution.message["In-Reply-To"] == opening.message["Message-ID"]

    # Back after it cleared: a new incident, told again.
    raise_exception(system, "time_to_billing:30100001:2026-11:posting-rejected", reason)
    assert (await scan(system)).opened == 1
    assert [event["phase"] for event in events(finance_hook)] == ["opened", "resolved", "opened"]
    with system.database.session() as session:
        assert [i.occurrence for i in incidents_about(session, subject=f"exception:{first}")] == [1, 2]


async def test_a_failing_channel_keeps_its_notification_queued_without_resending_the_other(
    alerting: System, smtp: SmtpServer, finance_hook: WebhookReceiver
) -> None:
    system = alerting
    finance_hook.status = 503
    raise_exception(system, "time_to_billing:30100002:2026-11:posting-rejected", "xero unavailable")

    first = await scan(system)
    assert (first.opened, first.notifications_sent, first.notifications_failed) == (1, 1, 1)
    assert len(smtp.messages()) == 1 and finance_hook.payloads() == []
    # The failed webhook waits for its back-off; the email, sent, is never sent again.
    second = await scan(system)
    assert (second.notifications_sent, second.notifications_failed) == (0, 0)
    assert len(smtp.messages()) == 1


async def test_stale_feeds_and_failing_vendors_page_integration_support_until_they_recover(
    alerting: System, smtp: SmtpServer, support_hook: WebhookReceiver, finance_hook: WebhookReceiver
) -> None:
    system = alerting
    now = datetime.now(UTC)
    with system.database.session() as session:
        record_feed_read(
            session, feed="psa-feed:kantata", read_at=now - timedelta(hours=1), events=3, newest_event_at=None
        )
        vendor = open_exception(
            session,
            dedupe_key="vendor-trouble:xero:post_invoice",
            process="vendor_trouble",
            owner="integration_support",
            reason="xero post_invoice keeps failing",
            record=IncidentRecord(
                vendor="xero",
                operation="post_invoice",
                error_type="Unavailable",
                status_code=503,
                last_error="Service Unavailable",
                since=now - timedelta(hours=2),
                last_failed_at=now - timedelta(minutes=1),
                failed_attempts=40,
                highest_attempt=12,
                runs=["time-to-billing:30100003:2026-11"],
                calls=["run-1/1"],
            ),
        )

    opened = await scan(system)
    assert opened.opened == 2
    kinds = sorted(event["kind"] for event in events(support_hook))
    # One digest for the team's two incidents, and no "new exception" for the vendor's item.
    assert kinds == ["feed_stale", "vendor_failing"] and len(support_hook.payloads()) == 1
    [mail] = smtp.messages()
    assert mail.recipients == [SUPPORT_MAIL] and "2 new" in mail.message["Subject"]
    assert finance_hook.payloads() == []

    with system.database.session() as session:
        record_feed_read(
            session, feed="psa-feed:kantata", read_at=datetime.now(UTC), events=0, newest_event_at=None
        )
        act_on_exception(
            session, exception_id=vendor.id, action="resolve", actor="ps-sync", note="answers again"
        )
    cleared = await scan(system)
    assert cleared.cleared == 2
    phases = sorted((event["kind"], event["phase"]) for event in events(support_hook))
    assert phases == [
        ("feed_stale", "opened"),
        ("feed_stale", "resolved"),
        ("vendor_failing", "opened"),
        ("vendor_failing", "resolved"),
    ]


# --- an invoice waiting past its reminder deadline ---------------------------------------------------------


class WaitingRunInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str
    period: str


# Outside the sandbox: this test module imports what the sandbox refuses (HTTP and SMTP servers).
@workflow.defn(name="TimeToBilling", sandboxed=False)
class WaitingForFinance:
    """Stands in for a billing run that reached its reminder deadline: the stage and status it shows."""

    def __init__(self) -> None:
        self._decided = False
        self._project = ""

    @workflow.run
    async def run(self, input: WaitingRunInput) -> None:
        self._project = input.project_id
        workflow.upsert_search_attributes(
            [
                sa.SYNC_STAGE.value_set("approval_reminded"),
                sa.PROJECT_ID.value_set(input.project_id),
                sa.BILLING_PERIOD.value_set(input.period),
            ]
        )
        await workflow.wait_condition(lambda: self._decided)
        workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set("posting")])
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def approved(self) -> None:
        self._decided = True

    @workflow.query
    def status(self) -> TimeToBillingStatus:
        return TimeToBillingStatus(
            stage="posting" if self._decided else "approval_reminded",
            project_id=self._project,
            period="2026-11",
            approvals_seen=1,
            entries_rated=12,
            rejected_items=0,
            total=Money.of("7450.00", "GBP"),
        )


async def test_an_invoice_past_its_reminder_deadline_alerts_finance_until_it_is_decided(
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
    sandboxes: Sandboxes,
    smtp: SmtpServer,
    finance_hook: WebhookReceiver,
    support_hook: WebhookReceiver,
) -> None:
    changes = alert_settings(smtp, finance_hook, support_hook)
    async with running_system(dev_env.client, tmp_path, sandboxes, settings_changes=changes) as system:
        # The stand-in runs on a queue of its own, where no real billing run can meet it.
        queue = f"alerts-approval-{uuid.uuid4().hex[:8]}"
        settings = system.settings.model_copy(update={"task_queue": queue})
        activities = AlertActivities(system.database, system.client, settings)
        env = ActivityEnvironment()
        async with Worker(system.client, task_queue=queue, workflows=[WaitingForFinance]):
            handle = await system.client.start_workflow(
                WaitingForFinance.run,
                WaitingRunInput(project_id="30100009", period="2026-11"),
                id=f"time-to-billing:30100009:2026-11:{queue}",
                task_queue=queue,
            )

            async def opened() -> bool:
                found = await env.run(activities.record_alert_incidents, RecordAlertIncidentsInput())
                return found.opened == 1

            await eventually(opened, seconds=60, what="visibility to list the waiting run")
            assert (await env.run(activities.send_alerts, SendAlertsInput())).sent == 2
            [payload] = finance_hook.payloads()
            [event] = payload["pssync"]["events"]
            assert event["kind"] == "approval_overdue" and event["owner"] == "finance"
            assert event["detail"]["total"] == "7450.00 GBP" and event["detail"]["project_id"] == "30100009"
            assert "past its reminder deadline" in payload["text"]

            await handle.signal(WaitingForFinance.approved)

            async def cleared() -> bool:
                found = await env.run(activities.record_alert_incidents, RecordAlertIncidentsInput())
                return found.cleared == 1

            await eventually(cleared, seconds=60, what="visibility to list the run as decided")
            assert (await env.run(activities.send_alerts, SendAlertsInput())).sent == 2
            await handle.terminate("test finished")
        assert [e["phase"] for p in finance_hook.payloads() for e in p["pssync"]["events"]] == [
            "opened",
            "resolved",
        ]
        assert len(smtp.messages()) == 2 and support_hook.payloads() == []
