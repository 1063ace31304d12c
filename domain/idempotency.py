"""Idempotency keys derived from the business event, so a retry can never post twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def invoice_key(*, project_id: str, period: str, entry_ids: Iterable[str]) -> str:
    """Same project, period and set of entries: same key, whatever order they were read in."""
    entries = ",".join(sorted(entry_ids))
    return f"inv-{digest(project_id, period, entries)[:40]}"


def customer_key(*, erp: str, account_id: str) -> str:
    return f"cust-{digest(erp, account_id)[:40]}"
