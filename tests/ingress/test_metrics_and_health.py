"""The ingress's /metrics and /health/facts, in process on a real SQLite ledger: who may read them, what the
ledger's state looks like in them, and the ledger's half standing while Temporal is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from canonical import Money
from ledger.feed_state import record_feed_read
from ledger.repository import append_audit, open_exception, record_posting

from .inprocess import Ingress, bearer, ingress_in_process, migrated_ledger, settings_for

SCRAPE_TOKEN = "scrape-token-3f9a"


@pytest.fixture
async def ingress(tmp_path: Path) -> AsyncIterator[Ingress]:
    settings = settings_for(tmp_path).model_copy(update={"metrics_token": SecretStr(SCRAPE_TOKEN)})
    database = migrated_ledger(settings)
    now = datetime.now(UTC)
    with database.session() as session:
        open_exception(
            session, dedupe_key="a", process="time_to_billing", owner="finance", reason="refused", record={}
        )
        record_posting(
            session,
            idempotency_key="k1",
            erp="xero",
            legal_entity="UK",
            project_id="p1",
            period="2026-11",
            target_id="inv-1",
            number="INV-1",
            amount=Money.of("1200", "GBP"),
            content_hash="h",
        )
        for action in ("invoice_approved", "invoice_posted"):
            append_audit(
                session,
                workflow_id="time-to-billing:p1:2026-11",
                run_id=None,
                actor="ps-sync",
                action=action,
                entity="billing_run",
                key="time-to-billing:p1:2026-11",
                detail={"erp": "xero"},
            )
        record_feed_read(
            session,
            feed="psa-feed:kantata",
            read_at=now - timedelta(minutes=30),
            events=4,
            newest_event_at=now - timedelta(hours=2),
        )
    database.dispose()
    async with ingress_in_process(settings) as running:
        yield running


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_answer_only_the_scrape_token_and_show_the_ledgers_state(ingress: Ingress) -> None:
    assert (await ingress.http.get("/metrics")).status_code == 401
    wrong = await ingress.http.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # A person's token is not the scrape token either.
    assert (await ingress.http.get("/metrics", headers=bearer(ingress.settings, "ops"))).status_code == 401

    answer = await ingress.http.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    found = samples(answer.text)
    assert found[("pssync_ledger_up", ())] == 1
    assert found[("pssync_exceptions_waiting", (("owner", "finance"),))] == 1
    assert found[("pssync_exceptions_waiting", (("owner", "pmo"),))] == 0
    assert found[("pssync_postings", (("erp", "xero"), ("state", "posted")))] == 1
    age = found[("pssync_feed_read_age_seconds", (("feed", "psa-feed:kantata"),))]
    assert 1790 <= age <= 1900
    assert 7190 <= found[("pssync_feed_last_event_age_seconds", (("feed", "psa-feed:kantata"),))] <= 7300


async def test_health_facts_are_for_people_with_a_token_and_keep_the_ledgers_half_without_temporal(
    ingress: Ingress,
) -> None:
    assert (await ingress.http.get("/health/facts")).status_code == 401
    ingress.temporal.down = True
    answer = await ingress.http.get(
        "/health/facts", headers=bearer(ingress.settings, "viewer", "Vera Viewer")
    )
    assert answer.status_code == 200
    facts = answer.json()
    assert facts["temporal_error"] and "tcp connect error" in facts["temporal_error"]
    assert facts["approved_not_billed"] == {"runs": [], "totals": [], "runs_without_total": 0}
    assert facts["posting"] == {"window_days": 30, "posted": 1, "refused": 0, "success_rate": 1.0}
    assert facts["billing_latency"]["samples"] == 1 and facts["billing_latency"]["p50_seconds"] >= 0
    [feed] = facts["feeds"]
    assert feed["feed"] == "psa-feed:kantata" and feed["events_read"] == 4
    # The default freshness limit is 15 minutes: half an hour without a read is stale.
    assert feed["stale"] is True and 1790 <= feed["read_age_seconds"] <= 1900
    finance = next(queue for queue in facts["exceptions"] if queue["owner"] == "finance")
    assert finance["open"] == 1 and finance["by_age"]["under_1h"] == 1
