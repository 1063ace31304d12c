"""`GET /runs/{workflow_id}/status` and the ops page's vendors-failing section, in-process on a stand-in
Temporal client: who may read, what is refused before Temporal is asked, 404 for an unknown run, 503 while
Temporal is out of reach, and open vendor incidents listed from the ledger even then. (A real run retrying a
real call is in tests/workflows/test_vendor_trouble.py.)"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activities.errors import to_application_error
from activities.vendor_incidents import FailedCall, report_failed_call, vendor_failure
from connectors.errors import Unavailable

from .inprocess import Ingress, bearer, ingress_in_process, migrated_ledger, settings_for, static_token

RUN = "time-to-billing:30100001:2026-04"


@pytest.fixture
async def ingress(tmp_path: Path) -> AsyncIterator[Ingress]:
    settings = settings_for(tmp_path)
    database = migrated_ledger(settings)
    failure = vendor_failure(
        to_application_error(Unavailable("Service is unavailable", system="kantata", status_code=503))
    )
    assert failure is not None
    first = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
    with database.session() as session:
        report_failed_call(
            session,
            FailedCall(
                failure=failure,
                operation="read_project_resources",
                call="run-1/3",
                workflow_id=RUN,
                run_id="run-1",
                attempt=5,
                first_scheduled=first,
                failed_at=first + timedelta(seconds=15),
            ),
            may_open=True,
        )
    database.dispose()
    async with ingress_in_process(settings) as running:
        yield running


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer not-a-token"}, 401),
        ({"Authorization": "Basic !!!"}, 401),
        ("pmo", 403),
        ("sales_ops", 403),
    ],
)
async def test_only_people_who_may_read_the_ops_page_read_a_run_status(
    ingress: Ingress, headers: dict[str, str] | str, status: int
) -> None:
    sent = bearer(ingress.settings, headers) if isinstance(headers, str) else headers
    response = await ingress.http.get(f"/runs/{RUN}/status", headers=sent)
    assert response.status_code == status
    assert ingress.temporal.calls == []


@pytest.mark.parametrize("role", ["ops", "finance"])
async def test_an_unknown_run_is_a_404_for_a_reader(ingress: Ingress, role: str) -> None:
    response = await ingress.http.get(f"/runs/{RUN}/status", headers=bearer(ingress.settings, role))
    assert response.status_code == 404
    assert response.json()["detail"] == f"no run with workflow id {RUN!r}"


async def test_the_ops_token_as_a_basic_password_reads_a_run_status_too(ingress: Ingress) -> None:
    token = static_token(ingress.settings, "ops")["Authorization"][7:]
    basic = base64.b64encode(f"browser:{token}".encode()).decode()
    response = await ingress.http.get(f"/runs/{RUN}/status", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 404


@pytest.mark.parametrize("workflow_id", ["%20", "%00", "a%09b", "x" * 1001])
async def test_what_cannot_be_a_workflow_id_is_refused_before_temporal_is_asked(
    ingress: Ingress, workflow_id: str
) -> None:
    ingress.temporal.down = True
    response = await ingress.http.get(f"/runs/{workflow_id}/status", headers=bearer(ingress.settings, "ops"))
    assert response.status_code == 422
    assert "not a workflow id" in response.json()["detail"]


async def test_a_workflow_id_with_slashes_is_looked_up_whole(ingress: Ingress) -> None:
    response = await ingress.http.get(
        "/runs/exception-action:a/b:1/status", headers=bearer(ingress.settings, "ops")
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "no run with workflow id 'exception-action:a/b:1'"


async def test_temporal_out_of_reach_is_a_503_with_retry_after(ingress: Ingress) -> None:
    ingress.temporal.down = True
    response = await ingress.http.get(f"/runs/{RUN}/status", headers=bearer(ingress.settings, "ops"))
    assert response.status_code == 503 and response.headers["retry-after"]


async def test_the_ops_page_lists_failing_vendors_from_the_ledger_even_while_temporal_is_down(
    ingress: Ingress,
) -> None:
    ingress.temporal.down = True
    response = await ingress.http.get("/ops", headers=bearer(ingress.settings, "ops"))
    assert response.status_code == 200
    html = response.text
    assert "Temporal visibility unavailable" in html
    assert '<h2 class="warn">Vendors failing</h2>' in html
    section = html[html.index("Vendors failing</h2>") : html.index("Approved time not yet billed")]
    assert "<strong>kantata</strong>" in section and "<td>read_project_resources</td>" in section
    assert "2026-05-04 09:30 UTC" in section and "5 (longest call on attempt 5)" in section
    assert "503 Unavailable: Service is unavailable" in section
    assert "time-to-billing%3A30100001%3A2026-04" in section
