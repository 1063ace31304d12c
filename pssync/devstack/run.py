"""`make run` and `make demo`: the local stack, the story, a summary, and a clean stop."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pssync.devstack.processes import StackError
from pssync.devstack.stack import Stack, StackConfig
from pssync.devstack.story import EU_DEAL, UK_DEAL, DealOutcome, ExceptionStoryOutcome, Story, StoryFailed
from pssync.operations import ensure_feed_poller, ensure_payment_pollers
from pssync.schedules import AppliedSchedule, apply_schedules
from pssync.temporal_client import connect_client


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
        plans = [UK_DEAL, EU_DEAL] if config.with_tryton else [UK_DEAL]
        for plan in plans:
            outcomes.append(await story.play(plan))
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


async def _apply_schedules(config: StackConfig) -> list[AppliedSchedule]:
    settings = config.settings()
    return await apply_schedules(await connect_client(settings), settings)


def _start(data_dir: Path) -> tuple[Stack, StackConfig]:
    config = StackConfig.from_env(data_dir)
    stack = Stack(config)
    print(f"Starting ps-sync under {data_dir} ...", flush=True)
    started = time.monotonic()
    stack.start()
    print(f"Stack up in {time.monotonic() - started:.1f}s", flush=True)
    for applied in asyncio.run(_apply_schedules(config)):
        print(f"  schedule {applied.outcome}: {applied.schedule_id} ({applied.description})", flush=True)
    return stack, config


def _print_urls(stack: Stack) -> None:
    print("", flush=True)
    for name, url in stack.urls().items():
        print(f"  {name:<20} {url}", flush=True)


def run_demo(data_dir: Path) -> int:
    try:
        stack, config = _start(data_dir)
    except StackError as err:
        print(f"could not start the stack: {err}", file=sys.stderr)
        return 1
    try:
        _print_urls(stack)
        print("\nPlaying the story ...", flush=True)
        started = time.monotonic()
        report = asyncio.run(play_story(config))
        print(summary(report), flush=True)
        print(f"\nStory took {time.monotonic() - started:.1f}s", flush=True)
        return 0 if report.ok else 1
    finally:
        stack.stop()


def run_dev(data_dir: Path, *, story: bool) -> int:
    try:
        stack, config = _start(data_dir)
    except StackError as err:
        print(f"could not start the stack: {err}", file=sys.stderr)
        return 1
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    try:
        if story:
            print("\nPlaying the story ...", flush=True)
            print(summary(asyncio.run(play_story(config))), flush=True)
        _print_urls(stack)
        print("\nps-sync is running. Ctrl-C stops everything.", flush=True)
        while not stopping:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    except StackError as err:
        print(f"\n{err}", file=sys.stderr)
        return 1
    finally:
        print("\nStopping ...", flush=True)
        stack.stop()
    return 0
