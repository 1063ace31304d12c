"""Reconciliation checks where each posted line booked: the project's dimensions and the mapped account."""

from __future__ import annotations

from decimal import Decimal

from canonical import BillingModel, ExceptionOwner, InvoiceState
from domain.account_mapping import AccountMap, AccountRule
from domain.reconcile import (
    BookedLineFacts,
    ContractTerms,
    ErpInvoiceFacts,
    PostingFacts,
    ProjectEvidence,
    PsaWork,
    reconcile_project,
)

DIMENSIONS = {"project": "4711 Data platform", "customer": "001A Initech"}
ACCOUNTS = AccountMap(
    legal_entity="UK",
    erp="xero",
    rules=(
        AccountRule(kind="role", key="Senior Consultant", account_code="201"),
        AccountRule(kind="service", key="*", account_code="200"),
        AccountRule(kind="expense_category", key="*", account_code="260"),
    ),
)
GOOD = (
    BookedLineFacts(
        description="Professional services: Consultant", account_code="200", dimensions=DIMENSIONS
    ),
    BookedLineFacts(
        description="Professional services: Senior Consultant", account_code="201", dimensions=DIMENSIONS
    ),
    BookedLineFacts(
        description="Re-billed expenses: Travel (incl. 10% handling)",
        account_code="260",
        dimensions=DIMENSIONS,
    ),
)


def evidence(booked: tuple[BookedLineFacts, ...], **changes: object) -> ProjectEvidence:
    base = ProjectEvidence(
        project_id="4711",
        legal_entity="UK",
        period="2026-10",
        currency="GBP",
        terms=ContractTerms(billing_model=BillingModel.FIXED_FEE),
        psa=PsaWork(),
        erp=(
            ErpInvoiceFacts(
                number="INV-1",
                invoice_id="i1",
                reference="PS-4711-2026-10-x",
                state=InvoiceState.AWAITING_PAYMENT,
                net=Decimal("100"),
                lines=len(booked),
                booked=booked,
            ),
        ),
        ledger=(PostingFacts(number="INV-1", idempotency_key="k", amount=Decimal("100"), state="billed"),),
        accounts=ACCOUNTS,
        dimensions=DIMENSIONS,
    )
    return base.model_copy(update=changes)


def kinds(found: ProjectEvidence) -> dict[str, str]:
    return {d.kind: d.reason for d in reconcile_project(found, unbilled_due=True).differences}


def test_lines_on_their_mapped_accounts_with_the_projects_dimensions_agree() -> None:
    assert kinds(evidence(GOOD)) == {}


def test_a_line_retagged_in_the_erp_is_a_difference_for_finance() -> None:
    moved = GOOD[0].model_copy(update={"dimensions": {**DIMENSIONS, "project": "9999 Other"}})

    result = reconcile_project(evidence((moved, *GOOD[1:])), unbilled_due=True)

    (difference,) = result.differences
    assert difference.kind == "line_dimensions_differ" and difference.owner == ExceptionOwner.FINANCE
    assert "1 of 3 lines of invoice INV-1" in difference.reason and "'9999 Other'" in difference.reason


def test_a_line_reclassified_to_another_account_names_the_rule_that_maps_it() -> None:
    moved = GOOD[2].model_copy(update={"account_code": "200"})

    found = kinds(evidence((*GOOD[:2], moved)))

    assert list(found) == ["line_account_differs"]
    assert (
        "books to account 200; rule UK expense_category '*' maps it to 260" in found["line_account_differs"]
    )


def test_projects_without_dimensions_or_entities_without_a_mapping_are_not_checked_for_them() -> None:
    untagged = tuple(line.model_copy(update={"dimensions": {}, "account_code": "999"}) for line in GOOD)

    assert kinds(evidence(untagged, accounts=None, dimensions=None)) == {}
