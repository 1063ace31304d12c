"""The Xero connector against the sandbox: limits, concurrency, idempotency, batches, paging, polling,
auth and injected faults. Every request and response is validated against xero_accounting.yaml."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError

from activities.errors import connector_errors
from canonical import Account, LegalEntity, Money
from config import Settings, default_entities
from connectors.call_budget import patient_calls
from connectors.errors import AuthFailed, Conflict, RateLimited, Rejected, Timeout, Unavailable
from connectors.xero import XeroConnector, XeroRateLimited
from connectors.xero.client import MAX_IDEMPOTENCY_KEY, bounded_key
from connectors.xero.pacing import MinutePacer
from sandboxes.faults import FaultConfig
from sandboxes.xero import RateLimitConfig
from sandboxes.xero.control import XeroSandboxControl
from sandboxes.xero.seed import XeroFinanceUser

from ..contract.erp_contract import build_invoice, net_thousand_lines
from ..specs import ValidationLog
from .conftest import XeroSandboxHandle, connector_for
from .held_budget import HoldsOneCall


def _invoice_element(contact_id: str, reference: str, tax_type: str = "OUTPUT2") -> dict[str, object]:
    return {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "Date": "2026-01-15",
        "DueDate": "2026-02-14",
        "LineAmountTypes": "Exclusive",
        "Reference": reference,
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Consulting",
                "Quantity": Decimal("2"),
                "UnitAmount": Decimal("150.00"),
                "AccountCode": "200",
                "TaxType": tax_type,
            }
        ],
    }


async def _customer(erp: XeroConnector, entity: LegalEntity, account: Account) -> str:
    return await erp.create_customer(account, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")


async def _references(erp: XeroConnector, reference: str) -> list[dict[str, object]]:
    body = await erp.client.get("/Invoices", params={"where": f'Reference=="{reference}"', "page": 1})
    invoices: list[dict[str, object]] = body["Invoices"]
    return invoices


# --- rate limits ------------------------------------------------------------------------------------------


async def test_every_response_reports_remaining_limits_to_the_client(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_rate_limits(RateLimitConfig(enabled=True))
    await erp.find_customer(seed_account)
    first = erp.client.limits
    await erp.find_customer(seed_account)
    second = erp.client.limits

    assert first is not None and second is not None
    assert (first.minute, first.day, first.app_minute) == (59, 4999, 9999)
    assert (second.minute, second.day) == (58, 4998)
    assert erp.client.pacer.armed


async def test_the_client_paces_itself_even_when_the_sandbox_does_not_enforce_its_limits(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    erp.client.pacer = MinutePacer(3)
    await control.set_rate_limits(RateLimitConfig(enabled=False))

    for _ in range(3):
        await erp.find_customer(seed_account)
    # The answers still report Xero's limits, so the pacer stays armed and holds the fourth call back.
    with pytest.raises(RateLimited) as held:
        await erp.find_customer(seed_account)

    assert erp.client.pacer.armed and erp.client.pacer.held_back == 1
    assert held.value.retry_after is not None and 0 < held.value.retry_after <= 60
    assert erp.client.limits is not None and erp.client.limits.minute == 57
    assert (await control.stats())["rate_limited"] == 0


async def test_a_held_call_fails_its_attempt_unless_the_activity_asked_for_patience(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    before = (await control.stats())["calls"]
    erp.client.max_wait_in_attempt = 0.0
    erp.client.pacer = HoldsOneCall(0.3)
    with pytest.raises(XeroRateLimited) as held:
        await erp.find_customer(seed_account)
    assert held.value.retry_after == pytest.approx(0.3)

    erp.client.pacer = HoldsOneCall(0.3)
    with patient_calls(1.0):
        await erp.find_customer(seed_account)

    # One call reached Xero, after the wait, and in the same attempt.
    assert erp.client.waited_seconds == pytest.approx(0.3)
    assert (await control.stats())["calls"] - before == 1
    # Patience ends with the block: the next held call fails its attempt again.
    erp.client.pacer = HoldsOneCall(0.3)
    with pytest.raises(XeroRateLimited):
        await erp.find_customer(seed_account)


async def test_a_server_reporting_more_than_xeros_minute_limit_is_not_paced(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    # A stand-in configured beyond Xero's limits (a benchmark's baseline world) has no limit to keep under.
    erp.client.pacer = MinutePacer(3)
    await control.set_rate_limits(RateLimitConfig(enabled=False, per_minute=100_000))

    for _ in range(5):
        await erp.find_customer(seed_account)

    assert not erp.client.pacer.armed and erp.client.pacer.held_back == 0
    assert erp.client.limits is not None and erp.client.limits.minute == 100_000 - 5


async def test_xeros_retry_after_becomes_the_activitys_next_retry_delay(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_rate_limits(RateLimitConfig(enabled=True, per_minute=1))
    await erp.find_customer(seed_account)
    with pytest.raises(ApplicationError) as raised:
        async with connector_errors():
            await erp.find_customer(seed_account)

    limited = raised.value.__cause__
    assert isinstance(limited, XeroRateLimited) and limited.retry_after is not None
    assert raised.value.next_retry_delay == timedelta(seconds=limited.retry_after)
    assert timedelta(0) < raised.value.next_retry_delay <= timedelta(seconds=60)
    assert not raised.value.non_retryable and raised.value.type == limited.kind


async def test_minute_limit_exceeded_raises_rate_limited_with_retry_after_and_problem(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_rate_limits(RateLimitConfig(enabled=True, per_minute=3))
    for _ in range(3):
        await erp.find_customer(seed_account)

    with pytest.raises(XeroRateLimited) as raised:
        await erp.find_customer(seed_account)

    assert raised.value.problem == "minute"
    assert raised.value.retry_after is not None and 0 < raised.value.retry_after <= 60
    assert raised.value.retryable
    assert (await control.stats())["rate_limited_by_problem"] == {"minute": 1}


async def test_day_limit_exceeded_names_the_day_limit(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_rate_limits(RateLimitConfig(enabled=True, per_day=2))
    await erp.find_customer(seed_account)
    await erp.find_customer(seed_account)

    with pytest.raises(XeroRateLimited) as raised:
        await erp.find_customer(seed_account)

    assert raised.value.problem == "day"
    assert raised.value.retry_after is not None and raised.value.retry_after > 60


async def test_twenty_concurrent_calls_stay_within_xeros_concurrent_limit(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_rate_limits(RateLimitConfig(enabled=True, concurrent=5, per_minute=1000))
    # Slow answers make the calls overlap, as they would against a busy Xero.
    await control.set_faults(FaultConfig(latency_ms=60))

    results = await asyncio.gather(*(erp.find_customer(seed_account) for _ in range(20)))
    stats = await control.stats()

    assert results == [None] * 20
    assert stats["rate_limited"] == 0
    assert max(stats["max_in_flight"].values()) == 5, "the sandbox should have seen the bound reached"
    assert erp.client.max_in_flight == 5


async def test_without_the_client_side_bound_xero_refuses_calls_over_the_concurrent_limit(
    xero_sandbox: XeroSandboxHandle,
    spec_log: ValidationLog,
    control: XeroSandboxControl,
    seed_account: Account,
) -> None:
    await control.set_rate_limits(RateLimitConfig(enabled=True, concurrent=5, per_minute=1000))
    await control.set_faults(FaultConfig(latency_ms=60))
    unbounded = connector_for(xero_sandbox, spec_log, max_concurrency=20)
    try:
        results = await asyncio.gather(
            *(unbounded.find_customer(seed_account) for _ in range(20)), return_exceptions=True
        )
    finally:
        await unbounded.aclose()

    refused = [r for r in results if isinstance(r, XeroRateLimited)]
    assert refused and all(r.problem == "concurrent" for r in refused)


# --- idempotency ------------------------------------------------------------------------------------------


async def test_idempotency_key_replay_returns_the_first_invoice_and_creates_no_second(
    erp: XeroConnector, control: XeroSandboxControl, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    reference = f"IDEM-{uuid.uuid4().hex[:10]}"
    key = f"test:{uuid.uuid4()}"
    replays_before = (await control.stats())["idempotent_replays"]

    first = await erp.client.put(
        "/Invoices",
        {"Invoices": [_invoice_element(contact_id, reference)]},
        idempotency_key=key,
        params={"unitdp": 4},
    )
    second = await erp.client.put(
        "/Invoices",
        {"Invoices": [_invoice_element(contact_id, reference)]},
        idempotency_key=key,
        params={"unitdp": 4},
    )

    assert second["Invoices"][0]["InvoiceID"] == first["Invoices"][0]["InvoiceID"]
    assert len(await _references(erp, reference)) == 1
    assert (await control.stats())["idempotent_replays"] == replays_before + 1


async def test_idempotency_key_reused_for_a_different_request_raises_conflict(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    key = f"test:{uuid.uuid4()}"
    await erp.client.put(
        "/Invoices", {"Invoices": [_invoice_element(contact_id, "FIRST")]}, idempotency_key=key
    )

    with pytest.raises(Conflict, match="different request"):
        await erp.client.put(
            "/Invoices", {"Invoices": [_invoice_element(contact_id, "SECOND")]}, idempotency_key=key
        )


async def test_business_keys_longer_than_128_characters_are_hashed_to_a_stable_xero_key(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    long_key = "time-to-billing:" + "PRJ-0042:" * 20
    hashed = bounded_key(long_key)

    assert len(long_key) > MAX_IDEMPOTENCY_KEY and len(hashed) <= MAX_IDEMPOTENCY_KEY
    assert hashed == bounded_key(long_key) and hashed != bounded_key(long_key + "x")
    assert bounded_key("short-key") == "short-key"
    # Xero refuses keys over 128 characters; the hashed one goes through.
    assert await erp.create_customer(seed_account, entity=entity, idempotency_key=long_key)


# --- batches and summarizeErrors --------------------------------------------------------------------------


async def test_summarize_errors_false_saves_the_good_elements_and_reports_the_bad_ones(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    good, bad = f"GOOD-{uuid.uuid4().hex[:8]}", f"BAD-{uuid.uuid4().hex[:8]}"

    results = await erp.client.save_each(
        "PUT",
        "/Invoices",
        "Invoices",
        [
            _invoice_element(contact_id, good),
            _invoice_element(contact_id, bad, tax_type="NO-SUCH-TAX"),
        ],
        idempotency_key=f"test:{uuid.uuid4()}",
    )

    assert [r.ok for r in results] == [True, False]
    assert results[0].element["InvoiceID"]
    assert [e.field for e in results[1].errors] == ["TaxType"]
    assert "NO-SUCH-TAX" in results[1].errors[0].message
    assert len(await _references(erp, good)) == 1
    assert await _references(erp, bad) == []


async def test_summarized_batch_with_one_bad_element_saves_nothing_and_names_the_element(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    good, bad = f"GOOD-{uuid.uuid4().hex[:8]}", f"BAD-{uuid.uuid4().hex[:8]}"

    with pytest.raises(Rejected) as raised:
        await erp.client.put(
            "/Invoices",
            {
                "Invoices": [
                    _invoice_element(contact_id, good),
                    _invoice_element(contact_id, bad, tax_type="NO-SUCH-TAX"),
                ]
            },
            idempotency_key=f"test:{uuid.uuid4()}",
        )

    assert [e.field for e in raised.value.field_errors] == ["[1].TaxType"]
    assert await _references(erp, good) == []


# --- paging and polling -----------------------------------------------------------------------------------


async def test_paging_walks_every_page_and_a_cursor_resumes_where_it_stopped(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    prefix = f"PAGE-{uuid.uuid4().hex[:8]}"
    await erp.client.put(
        "/Invoices",
        {"Invoices": [_invoice_element(contact_id, f"{prefix}-{n}") for n in range(5)]},
        idempotency_key=f"test:{uuid.uuid4()}",
    )
    params = {"where": f'Reference.StartsWith("{prefix}")', "order": "Reference ASC"}

    pages = [page async for page in erp.client.pages("/Invoices", "Invoices", params=params, page_size=2)]
    resumed = [
        page
        async for page in erp.client.pages(
            "/Invoices", "Invoices", params=params, page_size=2, cursor=pages[0].next_cursor
        )
    ]

    assert [(p.cursor, p.next_cursor, len(p.items)) for p in pages] == [
        ("1", "2", 2),
        ("2", "3", 2),
        ("3", None, 1),
    ]
    assert [i["Reference"] for p in pages for i in p.items] == [f"{prefix}-{n}" for n in range(5)]
    assert [p.cursor for p in resumed] == ["2", "3"]
    assert all(i["LineItems"] for p in pages for i in p.items), "paged invoices carry their lines"


async def test_payments_since_returns_only_payments_changed_after_the_instant(
    erp: XeroConnector, finance: XeroFinanceUser, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    invoice = await finance.create_invoice(
        contact_id, [("Consulting", Decimal(1), Decimal("500.00"), "OUTPUT2")]
    )
    earlier = await finance.apply_payment(invoice["InvoiceID"], Decimal("100.00"), reference="earlier")
    await asyncio.sleep(1.1)  # If-Modified-Since counts whole seconds
    since = datetime.now(UTC)
    later = await finance.apply_payment(invoice["InvoiceID"], Decimal("50.00"), reference="later")

    polled = {p.id: p for p in await erp.payments_since(since)}

    assert later["PaymentID"] in polled
    assert earlier["PaymentID"] not in polled
    assert polled[later["PaymentID"]].amount == Money.of("50.00", "GBP")
    assert polled[later["PaymentID"]].reference == "later"


async def test_deleted_payments_drop_out_of_polling_and_reopen_the_invoice(
    erp: XeroConnector, finance: XeroFinanceUser, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    invoice = await finance.create_invoice(
        contact_id, [("Consulting", Decimal(1), Decimal("100.00"), "OUTPUT2")]
    )
    payment = await finance.apply_payment(invoice["InvoiceID"], Decimal("120.00"))
    assert (await erp.get_invoice(invoice["InvoiceID"])).state.value == "paid"

    await finance.delete_payment(payment["PaymentID"])
    status = await erp.get_invoice(invoice["InvoiceID"])

    assert status.state.value == "awaiting_payment"
    assert status.amount_due == Money.of("120.00", "GBP")
    assert payment["PaymentID"] not in {
        p.id for p in await erp.payments_since(datetime.now(UTC) - timedelta(1))
    }


# --- business rules surfaced as errors --------------------------------------------------------------------


async def test_voiding_a_paid_invoice_is_rejected_with_xeros_reason(
    erp: XeroConnector, finance: XeroFinanceUser, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    invoice = await finance.create_invoice(
        contact_id, [("Consulting", Decimal(1), Decimal("10.00"), "OUTPUT2")]
    )
    await finance.apply_payment(invoice["InvoiceID"], Decimal("5.00"))

    with pytest.raises(Rejected, match="payment or credit note allocated"):
        await erp.void_invoice(invoice["InvoiceID"])


async def test_payment_in_another_currency_is_rejected_before_reaching_xero(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    contact_id = await _customer(erp, entity, seed_account)
    body = await erp.client.put(
        "/Invoices",
        {"Invoices": [_invoice_element(contact_id, "FX")]},
        idempotency_key=f"test:{uuid.uuid4()}",
    )

    with pytest.raises(Rejected, match="in GBP"):
        await erp.apply_payment(
            body["Invoices"][0]["InvoiceID"],
            Money.of("10.00", "EUR"),
            reference="x",
            idempotency_key=f"test:{uuid.uuid4()}",
        )


async def test_invoice_for_another_legal_entity_is_rejected(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    eu = next(e for e in default_entities() if e.code == "EU")
    invoice = build_invoice(eu, seed_account, str(uuid.uuid4()), net_thousand_lines(eu))

    with pytest.raises(Rejected, match="entity EU"):
        await erp.post_invoice(invoice, entity=entity, idempotency_key="test:wrong-entity")


# --- auth -------------------------------------------------------------------------------------------------


async def test_expired_token_is_refreshed_once_and_the_call_succeeds(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await erp.find_customer(seed_account)
    assert erp.client.auth.token_fetches == 1
    unauthorized_before = (await control.stats())["responses_by_status"].get("401", 0)

    await control.expire_tokens()
    await erp.find_customer(seed_account)

    assert erp.client.auth.token_fetches == 2
    assert (await control.stats())["responses_by_status"].get("401", 0) == unauthorized_before + 1


async def test_wrong_client_secret_raises_auth_failed(
    xero_sandbox: XeroSandboxHandle, spec_log: ValidationLog, seed_account: Account
) -> None:
    connector = connector_for(xero_sandbox, spec_log, client_secret="not-the-secret")
    try:
        with pytest.raises(AuthFailed, match="invalid_client"):
            await connector.find_customer(seed_account)
    finally:
        await connector.aclose()


async def test_tenant_not_connected_raises_auth_failed_from_a_403(
    xero_sandbox: XeroSandboxHandle, spec_log: ValidationLog, seed_account: Account
) -> None:
    connector = connector_for(xero_sandbox, spec_log, tenant_id=str(uuid.uuid4()))
    try:
        with pytest.raises(AuthFailed) as raised:
            await connector.find_customer(seed_account)
    finally:
        await connector.aclose()
    assert raised.value.status_code == 403


async def test_connections_lists_the_connected_tenant(
    erp: XeroConnector, xero_sandbox: XeroSandboxHandle
) -> None:
    connections = await erp.client.connections()

    assert [(c["tenantId"], c["tenantType"]) for c in connections] == [
        (xero_sandbox.config.tenant_id, "ORGANISATION")
    ]


# --- injected faults --------------------------------------------------------------------------------------


async def test_injected_server_errors_become_unavailable(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_faults(FaultConfig(server_error_rate=1.0))

    with pytest.raises(Unavailable) as raised:
        await erp.find_customer(seed_account)

    assert raised.value.status_code == 503 and raised.value.retryable


async def test_injected_429_carries_retry_after_into_rate_limited(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_faults(FaultConfig(rate_limit_rate=1.0))

    with pytest.raises(XeroRateLimited) as raised:
        await erp.find_customer(seed_account)

    assert raised.value.retry_after == 60.0 and raised.value.problem == "minute"


async def test_dropped_connection_becomes_unavailable(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_faults(FaultConfig(drop_rate=1.0))

    with pytest.raises(Unavailable, match="connection failed"):
        await erp.find_customer(seed_account)


async def test_a_hanging_call_becomes_timeout(
    xero_sandbox: XeroSandboxHandle,
    spec_log: ValidationLog,
    control: XeroSandboxControl,
    seed_account: Account,
) -> None:
    await control.set_faults(FaultConfig(timeout_rate=1.0, timeout_seconds=1.0))
    impatient = connector_for(xero_sandbox, spec_log, timeout=0.3)
    try:
        # The token endpoint is never faulted, so the hang is the accounting call's.
        with pytest.raises(Timeout):
            await impatient.find_customer(seed_account)
    finally:
        await impatient.aclose()


async def test_faults_follow_the_seed_so_a_run_can_be_replayed(
    erp: XeroConnector, control: XeroSandboxControl, seed_account: Account
) -> None:
    async def outcomes() -> list[str]:
        await control.set_faults(FaultConfig(seed=11, server_error_rate=0.4, rate_limit_rate=0.2))
        seen = []
        for _ in range(12):
            # After a 429 the client's pacer holds every later call back (tested in
            # test_xero_pacing); this test is about the sandbox's seeded faults, so each call starts afresh.
            erp.client.pacer = MinutePacer(60)
            try:
                await erp.find_customer(seed_account)
                seen.append("ok")
            except Exception as exc:  # the outcome itself is what is compared
                seen.append(type(exc).__name__)
        return seen

    first, second = await outcomes(), await outcomes()

    assert first == second
    assert {"ok", "Unavailable", "XeroRateLimited"} <= set(first)


async def test_connector_built_from_settings_reaches_the_configured_organisation(
    xero_sandbox: XeroSandboxHandle, seed_account: Account
) -> None:
    settings = Settings(xero_base_url=xero_sandbox.url, xero_identity_url=xero_sandbox.url)
    connector = XeroConnector.from_settings(settings)
    try:
        assert await connector.find_customer(seed_account) is None
        assert connector.client.tenant_id == settings.xero_tenant_id
        assert connector.client.max_concurrency == settings.xero_max_concurrency
    finally:
        await connector.aclose()


async def test_client_paces_itself_under_the_minute_limit_so_xero_refuses_almost_nothing(
    xero_sandbox: XeroSandboxHandle, control: XeroSandboxControl, seed_account: Account
) -> None:
    await control.set_rate_limits(RateLimitConfig(enabled=True, per_minute=10))
    connector = XeroConnector(
        base_url=xero_sandbox.url,
        identity_url=xero_sandbox.url,
        client_id="dev-xero-client",
        client_secret="dev-xero-secret",
        tenant_id=xero_sandbox.config.tenant_id,
        calls_per_minute=10,
    )
    try:
        outcomes = await asyncio.gather(
            *(connector.find_customer(seed_account) for _ in range(30)), return_exceptions=True
        )
    finally:
        await connector.aclose()
    held = [o for o in outcomes if isinstance(o, RateLimited)]
    assert len(held) == 20 and all(o.retry_after and 0 < o.retry_after <= 60 for o in held)
    assert (await control.stats())["rate_limited"] == 0
