"""Logs are JSON lines that carry workflow id, run id and business key, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from observability.logging import configure_logging

from ..support.system import System
from .conftest import prepared_story
from .helpers import project_from_a_won_deal


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


async def test_activity_logs_carry_workflow_id_run_id_and_business_key_and_no_secrets(
    dev_system: System, json_logs: io.StringIO
) -> None:
    story = await prepared_story(dev_system)
    created = await project_from_a_won_deal(dev_system, story)

    out = json_logs.getvalue()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    completed = [line for line in lines if line.get("event") == "activity_completed"]
    assert {line["activity"] for line in completed} >= {
        "fetch_opportunity",
        "ensure_customer",
        "ensure_project",
    }
    for line in completed:
        assert line["workflow_id"] == f"opportunity-to-project:salesforce:{created.opportunity_id}"
        assert line["business_key"] == f"salesforce:{created.opportunity_id}"
        assert line["run_id"] and line["level"] == "info" and line["timestamp"]
    everything = "\n".join(json.dumps(line) for line in lines)
    for secret in (
        dev_system.settings.salesforce_client_secret,
        dev_system.settings.xero_client_secret,
        dev_system.settings.kantata_client_secret,
        dev_system.settings.xero_webhook_key,
    ):
        assert secret.get_secret_value() not in everything
