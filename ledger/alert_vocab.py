"""The alert ledger's vocabularies: what an incident is about, and where each notification of it stands."""

from __future__ import annotations

from enum import StrEnum


class AlertKind(StrEnum):
    # An exception waiting for a person (its owner's queue got one more item).
    NEW_EXCEPTION = "new_exception"
    # An invoice still waiting for finance past its reminder deadline.
    APPROVAL_OVERDUE = "approval_overdue"
    # A feed not read successfully for longer than its freshness limit.
    FEED_STALE = "feed_stale"
    # A vendor's calls failing for longer than the threshold (an open vendor-trouble exception).
    VENDOR_FAILING = "vendor_failing"


class AlertPhase(StrEnum):
    OPENED = "opened"
    RESOLVED = "resolved"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    # Never sent, and never will be: the incident cleared first, or the channel is no longer configured.
    CANCELLED = "cancelled"
