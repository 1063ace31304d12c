"""What the single-scenario recorders share: where a history is written, and the dev server they play on."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from ..support.temporal import start_dev_server

HISTORIES = Path(__file__).parent / "histories"

T = TypeVar("T")


def write_history(history: WorkflowHistory, name: str) -> Path:
    """Beside the others, under `name`: nothing else is touched."""
    HISTORIES.mkdir(exist_ok=True)
    path = HISTORIES / name
    path.write_text(history.to_json())
    return path


async def on_a_dev_server(play: Callable[[WorkflowEnvironment, Path], Awaitable[T]]) -> T:
    """Play a scenario on a fresh dev server with a scratch directory, then stop the server."""
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return await play(env, Path(tmp))
    finally:
        await env.shutdown()
