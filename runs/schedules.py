"""The Temporal Schedules ps-sync runs by: ReferenceSync every few hours, Reconciliation every morning, the
PayablesScan every morning after it (suppliers owed approved expenses get their bills), the AlertScan every
minute or so (`alert_scan_interval_seconds`), and MonthEndClose of the month before for each legal entity on
the 3rd of every month (`MONTH_END_DAY`, `MONTH_END_HOUR_UTC`), once billing has had its days.

`apply_schedules` is idempotent: a schedule that does not exist is created (reference data is then synced at
once, so a fresh system validates against real data), one that exists is brought to this definition. Run by
`pssync schedules apply` and at `make run` / `make demo`.

Schedule ids carry the task queue, so two deployments (or test runs) on one namespace never share one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from config import Settings
from runs import alert_scan, month_end_close, payables, reconciliation, reference_sync
from runs.alert_scan import AlertScanInput
from runs.month_end_close import MonthEndCloseInput
from runs.payables import PayablesScanInput
from runs.reconciliation import ReconciliationInput
from runs.reference_sync import ReferenceSyncInput

REFERENCE_SYNC_EVERY = timedelta(hours=6)
RECONCILIATION_HOUR_UTC = 6
PAYABLES_SCAN_HOUR_UTC = 7
MONTH_END_DAY = 3
MONTH_END_HOUR_UTC = 5


@dataclass(frozen=True)
class AppliedSchedule:
    schedule_id: str
    outcome: Literal["created", "updated"]
    description: str


def reference_sync_schedule_id(settings: Settings) -> str:
    return f"{settings.task_queue}:reference-sync"


def reconciliation_schedule_id(settings: Settings) -> str:
    return f"{settings.task_queue}:reconciliation"


def payables_scan_schedule_id(settings: Settings) -> str:
    return f"{settings.task_queue}:payables-scan"


def alert_scan_schedule_id(settings: Settings) -> str:
    return f"{settings.task_queue}:alert-scan"


def month_end_schedule_id(settings: Settings, legal_entity: str) -> str:
    return f"{settings.task_queue}:month-end-close:{legal_entity}"


def _month_end(settings: Settings) -> dict[str, tuple[Schedule, str]]:
    """One schedule per entity: each close is its own run, so one entity's closed ERP holds up no other."""
    schedules: dict[str, tuple[Schedule, str]] = {}
    for entity in settings.entities:
        schedule_id = month_end_schedule_id(settings, entity.code)
        schedules[schedule_id] = (
            Schedule(
                action=ScheduleActionStartWorkflow(
                    month_end_close.WORKFLOW_TYPE,
                    MonthEndCloseInput(legal_entity=entity.code, psa=settings.psa),
                    id=schedule_id,
                    task_queue=settings.task_queue,
                ),
                spec=ScheduleSpec(
                    calendars=[
                        ScheduleCalendarSpec(
                            day_of_month=[ScheduleRange(MONTH_END_DAY)],
                            hour=[ScheduleRange(MONTH_END_HOUR_UTC)],
                        )
                    ]
                ),
                policy=_policy(),
                state=ScheduleState(note=f"ps-sync: month-end close of {entity.code} for the month before"),
            ),
            f"MonthEndClose of {entity.code} for the previous month on day {MONTH_END_DAY} at "
            f"{MONTH_END_HOUR_UTC:02d}:00 UTC",
        )
    return schedules


def _policy() -> SchedulePolicy:
    # A run still going when the next is due makes the next one pointless; after downtime, catch up once.
    return SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=1))


def definitions(settings: Settings) -> dict[str, tuple[Schedule, str]]:
    entities = tuple(settings.entities)
    reference_id = reference_sync_schedule_id(settings)
    reconciliation_id = reconciliation_schedule_id(settings)
    alert_scan_id = alert_scan_schedule_id(settings)
    payables_scan_id = payables_scan_schedule_id(settings)
    scan_every = timedelta(seconds=settings.alert_scan_interval_seconds)
    return {
        reference_id: (
            Schedule(
                action=ScheduleActionStartWorkflow(
                    reference_sync.WORKFLOW_TYPE,
                    ReferenceSyncInput(entities=entities, psa=settings.psa),
                    id=reference_id,
                    task_queue=settings.task_queue,
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=REFERENCE_SYNC_EVERY)]),
                policy=_policy(),
                state=ScheduleState(note="ps-sync: ERP and PSA reference data into the ledger"),
            ),
            f"ReferenceSync every {REFERENCE_SYNC_EVERY}",
        ),
        reconciliation_id: (
            Schedule(
                action=ScheduleActionStartWorkflow(
                    reconciliation.WORKFLOW_TYPE,
                    ReconciliationInput(entities=entities, psa=settings.psa),
                    id=reconciliation_id,
                    task_queue=settings.task_queue,
                ),
                spec=ScheduleSpec(
                    calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(RECONCILIATION_HOUR_UTC)])]
                ),
                policy=_policy(),
                state=ScheduleState(note="ps-sync: the month just closed, PSA against ERP and ledger"),
            ),
            f"Reconciliation of the previous month daily at {RECONCILIATION_HOUR_UTC:02d}:00 UTC",
        ),
        payables_scan_id: (
            Schedule(
                action=ScheduleActionStartWorkflow(
                    payables.SCAN_WORKFLOW_TYPE,
                    PayablesScanInput(psa=settings.psa),
                    id=payables_scan_id,
                    task_queue=settings.task_queue,
                ),
                spec=ScheduleSpec(
                    calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(PAYABLES_SCAN_HOUR_UTC)])]
                ),
                policy=_policy(),
                state=ScheduleState(note="ps-sync: approved reimbursable and vendor expenses become bills"),
            ),
            f"PayablesScan of this month and the last daily at {PAYABLES_SCAN_HOUR_UTC:02d}:00 UTC",
        ),
        alert_scan_id: (
            Schedule(
                action=ScheduleActionStartWorkflow(
                    alert_scan.WORKFLOW_TYPE,
                    AlertScanInput(),
                    id=alert_scan_id,
                    task_queue=settings.task_queue,
                ),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=scan_every)]),
                # Missed scans are not worth catching up: the next one sees everything they would have.
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=scan_every),
                state=ScheduleState(note="ps-sync: new and cleared incidents, notified to the owning teams"),
            ),
            f"AlertScan every {scan_every}",
        ),
        **_month_end(settings),
    }


async def apply_schedules(client: Client, settings: Settings) -> list[AppliedSchedule]:
    applied: list[AppliedSchedule] = []
    for schedule_id, (schedule, description) in definitions(settings).items():
        try:
            await client.create_schedule(
                schedule_id,
                schedule,
                trigger_immediately=schedule_id == reference_sync_schedule_id(settings),
            )
            applied.append(AppliedSchedule(schedule_id, "created", description))
        except ScheduleAlreadyRunningError:

            async def to_definition(_: ScheduleUpdateInput, wanted: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=wanted)

            await client.get_schedule_handle(schedule_id).update(to_definition)
            applied.append(AppliedSchedule(schedule_id, "updated", description))
    return applied
