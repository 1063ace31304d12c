"""The ledger's vocabularies: its own closed ones, stored as their string values, and system names.

Which CRM, PSA and ERPs a deployment runs is its configuration's business (`Settings.crm`, `Settings.psa`,
each legal entity's `erp`), not the ledger's: adding a vendor must not need a ledger release. So a system
is an open vocabulary here, checked for its shape only and stored as the configured name.
"""

from __future__ import annotations

from enum import StrEnum

# The width of every column holding a system name (id_map.system, posting.erp, project_contract.psa,
# ref_*.system): the check refuses a longer name with a message naming the argument, before the database
# would refuse it with its own. Widening it needs a migration that alters those columns.
SYSTEM_NAME_LENGTH = 16
SYSTEM_NAME_PATTERN = rf"^[a-z][a-z0-9_-]{{0,{SYSTEM_NAME_LENGTH - 1}}}$"


class LinkStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    ARCHIVED = "archived"


class PostingState(StrEnum):
    POSTED = "posted"
    BILLED = "billed"


class ExceptionStatus(StrEnum):
    OPEN = "open"
    RETRYING = "retrying"
    SKIPPED = "skipped"
    RESOLVED = "resolved"


# A person has dealt with these; a new failure with the same dedupe key re-opens them.
CLOSED_EXCEPTION_STATUSES = frozenset({ExceptionStatus.SKIPPED, ExceptionStatus.RESOLVED})


class ExceptionAction(StrEnum):
    RETRY = "retry"
    SKIP = "skip"
    FIX = "fix"
    RESOLVE = "resolve"
