"""The ingress on loopback, wired to a real Temporal dev server, a worker and the sandboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from ..support.system import Sandboxes, System, running_system
from ..support.temporal import target_of


@pytest.fixture
async def system(dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes) -> AsyncIterator[System]:
    async with running_system(
        dev_env.client, tmp_path, sandboxes, temporal_target=target_of(dev_env)
    ) as running:
        yield running
