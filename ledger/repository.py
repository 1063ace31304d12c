"""Every ledger repository function in one import: keyword-only, an explicit session first, records out.

The functions live in small modules by table; this module only gathers them.
"""

from ledger.audit import append_audit, audit_trail
from ledger.bill_postings import bill_postings_for, get_bill_posting, record_bill_posting
from ledger.contracts import contracts_for, get_contract, save_contract
from ledger.crosswalk import (
    find_canonical_key,
    find_external_id,
    get_link,
    link_ids,
    links_for,
    set_link_status,
)
from ledger.exception_queue import (
    act_on_exception,
    exception_counts_by_owner,
    get_exception,
    get_exception_by_dedupe_key,
    list_exceptions,
    open_exception,
    reopen_exception,
)
from ledger.postings import get_posting, mark_posting_billed, postings_for, record_posting
from ledger.reference import (
    get_account,
    get_currency_rate,
    get_item,
    get_resource,
    get_tax_rate,
    list_accounts,
    list_currency_rates,
    list_items,
    list_resources,
    list_tax_rates,
    upsert_accounts,
    upsert_currency_rates,
    upsert_items,
    upsert_resources,
    upsert_tax_rates,
)

__all__ = [
    "act_on_exception",
    "append_audit",
    "audit_trail",
    "bill_postings_for",
    "contracts_for",
    "exception_counts_by_owner",
    "find_canonical_key",
    "find_external_id",
    "get_account",
    "get_bill_posting",
    "get_contract",
    "get_currency_rate",
    "get_exception",
    "get_exception_by_dedupe_key",
    "get_item",
    "get_link",
    "get_posting",
    "get_resource",
    "get_tax_rate",
    "link_ids",
    "links_for",
    "list_accounts",
    "list_currency_rates",
    "list_exceptions",
    "list_items",
    "list_resources",
    "list_tax_rates",
    "mark_posting_billed",
    "open_exception",
    "postings_for",
    "record_bill_posting",
    "record_posting",
    "reopen_exception",
    "save_contract",
    "set_link_status",
    "upsert_accounts",
    "upsert_currency_rates",
    "upsert_items",
    "upsert_resources",
    "upsert_tax_rates",
]
