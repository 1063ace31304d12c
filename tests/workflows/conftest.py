"""Workflows run on real Temporal servers with real activities, connectors and sandboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.story import Story

from ..support.system import Sandboxes, System, running_system
from ..support.temporal import terminate_open_workflows


@pytest.fixture
async def ts_system(
    ts_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> AsyncIterator[System]:
    async with running_system(ts_env.client, tmp_path, sandboxes) as system:
        yield system
    # Runs left open would stop the shared test server from skipping time in the next test.
    await terminate_open_workflows(ts_env, "test finished")


@pytest.fixture
async def dev_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> AsyncIterator[System]:
    async with running_system(dev_env.client, tmp_path, sandboxes) as system:
        yield system


async def prepared_story(system: System) -> Story:
    story = Story(system.settings, system.client, say=lambda _: None)
    await story.prepare()
    return story
