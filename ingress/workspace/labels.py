"""Readable words for the codes the ledger and the runs use, so a person never reads an enum name."""

from __future__ import annotations

from datetime import datetime, timedelta

STAGES = {
    "starting": "starting",
    "waiting_for_period_close": "waiting for the period to close",
    "settling": "letting late entries settle",
    "collecting": "collecting approved time",
    "deferred": "deferred",
    "blocked": "blocked",
    "awaiting_approval": "awaiting approval",
    "approval_reminded": "awaiting approval (reminded)",
    "approval_escalated": "awaiting approval (escalated)",
    "posting": "posting to the ERP",
    "posting_rejected": "refused by the ERP",
}
OWNERS = {
    "finance": "Finance",
    "pmo": "PMO",
    "sales_ops": "Sales ops",
    "hr_ops": "HR ops",
    "integration_support": "Integration support",
}
STATUSES = {
    "open": "open",
    "retrying": "retrying",
    "skipped": "skipped",
    "resolved": "resolved",
}
PROCESSES = {
    "opportunity_to_project": "deal to project",
    "time_to_billing": "time to billing",
    "invoice_to_cash": "invoice to cash",
    "reconciliation": "reconciliation",
    "reference_sync": "reference data sync",
    "vendor_trouble": "vendor failing",
}
ROLES = {
    "finance": "Finance",
    "ops": "Operations",
    "pmo": "PMO",
    "sales_ops": "Sales ops",
    "viewer": "Viewer",
}
LINE_KINDS = {"time": "Time", "expense": "Expense", "milestone": "Milestone", "fee": "Retainer fee"}
AGE_BANDS = {
    "under_1h": "under 1 h",
    "1h_to_1d": "1 h to 1 day",
    "1d_to_7d": "1 to 7 days",
    "over_7d": "over 7 days",
}


def readable(words: dict[str, str], code: object) -> str:
    """The label for a code; an unknown code reads as words rather than as an identifier."""
    text = str(getattr(code, "value", code) or "")
    return words.get(text, text.replace("_", " "))


def age(seconds: float | timedelta | None) -> str:
    if seconds is None:
        return "—"
    whole = int(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)
    if whole >= 86400:
        return f"{whole // 86400} d {whole % 86400 // 3600} h"
    if whole >= 3600:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    if whole >= 60:
        return f"{whole // 60} min"
    return f"{max(whole, 0)} s"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"
