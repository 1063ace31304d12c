"""The ingress starts while Temporal is down, answers 503 with Retry-After meanwhile, and serves once
Temporal is up, with no restart: a load balancer sees "not ready", never a crash loop."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from ingress.app import create_app
from runs.search_attributes import ALL as SEARCH_ATTRIBUTES

from .inprocess import BASE_URL, bearer, migrated_ledger, settings_for
from .test_input_limits import SOAP, envelope_for, outbound_url_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_ingress_starts_without_temporal_answers_503_then_serves_when_it_comes(tmp_path: Path) -> None:
    port = _free_port()
    settings = settings_for(tmp_path).model_copy(update={"temporal_address": f"127.0.0.1:{port}"})
    migrated_ledger(settings)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=30) as http:
            health = await http.get("/healthz")
            assert health.status_code == 503 and int(health.headers["retry-after"]) > 0
            assert "Temporal is unavailable" in health.json()["detail"]
            approvals = await http.get("/approvals", headers=bearer(settings, "finance"))
            assert approvals.status_code == 503 and int(approvals.headers["retry-after"]) > 0
            outbound = await http.post(
                outbound_url_for(settings), content=envelope_for(settings), headers=SOAP
            )
            # Salesforce is told in SOAP to deliver again later: nothing was acknowledged.
            assert outbound.status_code == 503 and b"<soapenv:Fault>" in outbound.content

            temporal = await WorkflowEnvironment.start_local(
                port=port,
                dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
                search_attributes=list(SEARCH_ATTRIBUTES),
            )
            try:
                health = await http.get("/healthz")
                assert health.status_code == 200, health.text
                assert health.json() == {"status": "ok", "namespace": settings.temporal_namespace}
                approvals = await http.get("/approvals", headers=bearer(settings, "finance"))
                assert approvals.status_code == 200, approvals.text
            finally:
                await temporal.shutdown()
