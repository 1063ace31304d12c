"""Every workflow must replay the recorded histories: a non-deterministic change fails here first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from config import Settings
from runs.codec import data_converter
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def _workflow_type(path: Path) -> str:
    first = json.loads(path.read_text())["events"][0]
    return str(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])


def test_every_workflow_has_a_recorded_history() -> None:
    recorded = {_workflow_type(path) for path in HISTORIES}
    missing = {workflow.__name__ for workflow in WORKFLOWS} - recorded
    assert not missing, f"record histories for {sorted(missing)}: python -m tests.replay.record"


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem[:80] for path in HISTORIES])
async def test_recorded_history_replays_without_nondeterminism(path: Path) -> None:
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=data_converter(Settings()))
    await replayer.replay_workflow(_load(path))
