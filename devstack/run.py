"""`make run` and `make demo`: the local stack, the story, a summary, and a clean stop."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from devstack.processes import StackError, StopRequested, stop_signals
from devstack.stack import Stack, StackConfig
from devstack.story import (
    EU_DEAL,
    MONTH_END_ACCOUNTS,
    UK_DEAL,
    US_DEAL,
    DealOutcome,
    ExceptionStoryOutcome,
    Story,
    StoryFailed,
)
from runs.client import connect_client
from runs.schedules import AppliedSchedule, apply_schedules
from runs.starts import ensure_feed_poller, ensure_payment_pollers

T = TypeVar("T")

# How often `make run` looks for an exited process: also the longest a restart waits beyond its back-off.
SUPERVISE_SECONDS = 0.25


@dataclass
class StoryReport:
    outcomes: list[DealOutcome]
    failure: str | None = None
    exception_story: ExceptionStoryOutcome | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and bool(self.outcomes) and all(o.paid for o in self.outcomes)


def say(message: str) -> None:
    print(f"  {message}", flush=True)


async def play_story(config: StackConfig) -> StoryReport:
    settings = config.settings()
    client = await connect_client(settings)
    await ensure_feed_poller(
        client,
        settings,
        billing_settle_seconds=config.billing_settle_seconds,
        invoice_poll_interval_seconds=config.invoice_poll_interval_seconds,
    )
    await ensure_payment_pollers(client, settings)
    story = Story(settings, client, say=say)
    outcomes: list[DealOutcome] = []
    try:
        await story.prepare()
        await story.map_accounts()
        plans = [UK_DEAL, EU_DEAL, US_DEAL] if config.with_tryton else [UK_DEAL, US_DEAL]
        for plan in plans:
            outcomes.append(await story.play(plan))
        await story.play_payables([(o.plan, o.project_id) for o in outcomes])
        await story.play_subcontracted_time([(o.plan, o.project_id) for o in outcomes])
        # A fixed fee per entity whose ERP keeps journals, so the close recognises revenue there too.
        journal_entities = {entity for entity, _, _ in MONTH_END_ACCOUNTS}
        fixed_fees = [
            (plan, await story.play_fixed_fee(plan)) for plan in plans if plan.entity in journal_entities
        ]
        await story.play_month_end([(o.plan, o.project_id) for o in outcomes] + fixed_fees)
        for plan, project_id in fixed_fees[:1]:
            await story.play_change_order(plan, project_id)
        exception_story = await story.play_exception_fixed_and_retried()
    except StoryFailed as failure:
        return StoryReport(outcomes, failure=str(failure))
    return StoryReport(outcomes, exception_story=exception_story)


def summary(report: StoryReport) -> str:
    lines = ["", "Story summary"]
    for o in report.outcomes:
        lines += [
            f"  {o.plan.entity} deal ({o.plan.account_name}, {o.plan.currency}): {o.outcome.upper()}",
            f"    CRM  salesforce opportunity {o.opportunity_id}, account {o.account_id}",
            f"    PSA  kantata project {o.project_id}",
            f"    ERP  {o.erp} customer {o.erp_customer_id}, invoice {o.invoice_number} ({o.invoice_id}), "
            f"net {o.invoice_total}",
            f"    workflows: {o.opportunity_workflow}",
            f"               {o.billing_workflow}",
            f"               {o.cash_workflow}",
        ]
    if report.exception_story:
        e = report.exception_story
        lines += [
            f"  Exception fixed and retried: opportunity {e.opportunity_id} -> exception #{e.exception_id} "
            f"({e.reason}) -> tax code set in Salesforce -> retried through the ingress -> "
            f"project {e.project_id}; exception {e.exception_status}",
            f"    workflows: {e.opportunity_workflow}",
            f"               {e.action_workflow}",
        ]
    if report.failure:
        lines.append(f"  FAILED: {report.failure}")
    return "\n".join(lines)


async def watched(main: Awaitable[T], watch: Callable[[], None]) -> T:
    """`main`, with `watch()` called every so often while it runs; what `watch` raises cancels `main`.

    The story would otherwise notice a lost process only by timing out, and `make run` would restart
    nothing until the story ended.
    """
    task = asyncio.ensure_future(main)
    try:
        while not task.done():
            watch()
            await asyncio.wait({task}, timeout=SUPERVISE_SECONDS)
        return task.result()
    finally:
        task.cancel()


async def _apply_schedules(config: StackConfig) -> list[AppliedSchedule]:
    settings = config.settings()
    return await apply_schedules(await connect_client(settings), settings)


def _start(stack: Stack) -> None:
    print(f"Starting ps-sync under {stack.config.data_dir} ...", flush=True)
    started = time.monotonic()
    stack.start()
    print(f"Stack up in {time.monotonic() - started:.1f} s", flush=True)
    for applied in asyncio.run(_apply_schedules(stack.config)):
        say(f"schedule {applied.outcome}: {applied.schedule_id} ({applied.description})")


def _print_urls(stack: Stack) -> None:
    print("", flush=True)
    for name, url in stack.urls().items():
        say(f"{name:<20} {url}")


def _stop(stack: Stack) -> None:
    # Before anything else, so that a second Ctrl-C cannot cut the stop short.
    stop_signals.begin_stop()
    if stack.processes:
        received = stop_signals.received
        why = f" on {signal.Signals(received).name}" if received is not None else ""
        print(f"\nStopping{why} ... (Ctrl-C again kills what is left at once)", flush=True)
    stack.stop()


def run_demo(data_dir: Path) -> int:
    # First, before anything is started: whatever this process inherited, a stop signal stops the stack.
    stop_signals.install()
    stack = Stack(StackConfig.from_env(data_dir), progress=say)
    try:
        _start(stack)
        _print_urls(stack)
        print("\nPlaying the story ...", flush=True)
        started = time.monotonic()
        # No restarts here: a demo that lost a process is a failed demo, and says which process at once.
        report = asyncio.run(watched(play_story(stack.config), stack.check_alive))
        print(summary(report), flush=True)
        print(f"\nStory took {time.monotonic() - started:.1f} s", flush=True)
        return 0 if report.ok else 1
    except StackError as err:
        print(f"\ndemo failed: {err}", file=sys.stderr)
        return 1
    except StopRequested as stop:
        # The story did not finish: the shell's convention for a run cut short by a signal.
        return 128 + stop.signum
    finally:
        _stop(stack)


def run_dev(data_dir: Path, *, story: bool) -> int:
    stop_signals.install()
    stack = Stack(StackConfig.from_env(data_dir), progress=say)
    try:
        _start(stack)
        if story:
            print("\nPlaying the story ...", flush=True)
            print(summary(asyncio.run(watched(play_story(stack.config), stack.supervise))), flush=True)
        _print_urls(stack)
        print(
            "\nps-sync is running. A process that exits is restarted (logged to "
            f"{stack.supervisor.events.path}). Ctrl-C stops everything.",
            flush=True,
        )
        # The flag as well as the exception: a library that swallows the first StopRequested must not keep
        # the stack running.
        while stop_signals.received is None:
            stack.supervise()
            time.sleep(SUPERVISE_SECONDS)
    except StopRequested:
        pass
    except StackError as err:
        print(f"\n{err}", file=sys.stderr)
        return 1
    finally:
        _stop(stack)
    # Stopping is how a `make run` ends: a clean stop is a success.
    return 0
