"""Practice, the third dimension: how it is coded, where Kantata keeps it, which ERP lines carry it, and how
reconciliation holds a booked line to it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from canonical import BillingModel, Invoice, InvoiceLine, InvoiceState, LegalEntity, Money, Opportunity
from canonical.dimensions import DimensionValue, practice_code
from canonical.parties import Account, Address
from config import default_entities
from connectors.kantata import mapping as kantata
from connectors.xero import mapping as xero
from connectors.xero.reference import booked_dimensions
from domain.project_setup import project_spec
from domain.reconcile import (
    BookedLineFacts,
    ContractTerms,
    ErpInvoiceFacts,
    ProjectEvidence,
    PsaWork,
    reconcile_project,
)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Digital", "DIGITAL"),
        ("  data &  AI ", "DATA-AI"),
        ("Data_AI", "DATA-AI"),
        ("Cloud/Infra 2.0", "CLOUD-INFRA-2-0"),
        ("Études", "ÉTUDES"),
        ("—", ""),
        ("x" * 39 + " y", "X" * 39),
    ],
)
def test_a_practice_is_coded_by_its_name_in_capitals_with_hyphens(name: str, code: str) -> None:
    assert practice_code(name) == code


def _uk(**changes: Any) -> LegalEntity:
    uk = next(e for e in default_entities() if e.code == "UK")
    return LegalEntity.model_validate({**uk.model_dump(), **changes})


def test_an_entity_tracks_project_and_customer_unless_it_says_otherwise() -> None:
    assert _uk().tracked_dimensions == ("project", "customer")
    assert _uk(tracked_dimensions=["project", "practice"]).tracked_dimensions == ("project", "practice")
    assert _uk(tracked_dimensions=["practice"]).tracked_dimensions == ("practice",)


@pytest.mark.parametrize(
    "tracked",
    [[], ["project", "customer", "practice"], ["practice", "practice"]],
)
def test_an_entity_tracking_more_than_xero_has_room_for_is_refused_saying_why(tracked: list[str]) -> None:
    with pytest.raises(
        ValidationError, match="one or two different dimensions of project, customer, practice"
    ):
        _uk(tracked_dimensions=tracked)


def test_an_entity_tracking_an_unknown_dimension_is_refused() -> None:
    with pytest.raises(ValidationError, match="'project', 'customer' or 'practice'"):
        _uk(tracked_dimensions=["project", "region"])


def _workspace(values: list[dict[str, Any]]) -> Any:
    return kantata.to_project(
        {"id": 30100001, "title": "Data platform", "currency": "GBP"},
        references=(),
        values=values,
        stories=(),
    )


def test_the_kantata_project_carries_its_practice_and_a_blank_one_is_none() -> None:
    assert _workspace([{"custom_field_name": "Practice", "value": " Data  & AI "}]).practice == "Data & AI"
    assert _workspace([{"custom_field_name": "Practice", "value": "  "}]).practice is None
    # An account without the field, or a project without a value: no practice, nothing refused.
    assert _workspace([{"custom_field_name": "Legal Entity", "value": "UK"}]).practice is None


def test_a_service_of_a_practice_makes_projects_filed_under_it() -> None:
    uk = _uk()
    opportunity = Opportunity(
        id="006A",
        name="Initech digital",
        stage="Closed Won",
        is_won=True,
        account=Account(
            id="001A", name="Initech", billing_address=Address(street="1", city="L", country="GB")
        ),
        currency="GBP",
        tax_code="OUTPUT2",
        service_code="DIG-TM",
    )
    assert project_spec("salesforce", opportunity, uk).practice == "Digital"
    assert (
        project_spec("salesforce", opportunity.model_copy(update={"service_code": "ADV-TM"}), uk).practice
        is None
    )


PROJECT = DimensionValue(dimension="project", code="4711 Data platform", name="Data platform")
CUSTOMER = DimensionValue(dimension="customer", code="001A Initech", name="Initech")
PRACTICE = DimensionValue(dimension="practice", code="DIGITAL Digital", name="Digital")


def _invoice(dimensions: tuple[DimensionValue, ...]) -> Invoice:
    return Invoice(
        legal_entity="UK",
        customer_id="c",
        customer_name="Initech",
        project_id="4711",
        period="2026-10",
        currency="GBP",
        issue_date=date(2026, 11, 1),
        due_date=date(2026, 12, 1),
        reference="PS-4711-2026-10",
        lines=(
            InvoiceLine(
                description="Consulting",
                quantity=Decimal(1),
                unit_price=Money.of("100", "GBP"),
                tax_code="OUTPUT2",
                dimensions=dimensions,
            ),
        ),
    )


def test_a_xero_line_is_tracked_under_the_categories_its_entity_tracks_only() -> None:
    invoice = _invoice((PROJECT, CUSTOMER, PRACTICE))

    default = xero.invoice_payload(invoice, default_account_code="200")["LineItems"][0]["Tracking"]
    by_practice = xero.invoice_payload(invoice, default_account_code="200", tracked=("project", "practice"))
    only_customer = _invoice((CUSTOMER,))
    untracked = xero.invoice_payload(only_customer, default_account_code="200", tracked=("practice",))

    assert default == [
        {"Name": "Project", "Option": "4711 Data platform"},
        {"Name": "Customer", "Option": "001A Initech"},
    ]
    assert by_practice["LineItems"][0]["Tracking"] == [
        {"Name": "Project", "Option": "4711 Data platform"},
        {"Name": "Practice", "Option": "DIGITAL Digital"},
    ]
    # Nothing tracked is no Tracking at all, not an empty list.
    assert "Tracking" not in untracked["LineItems"][0]


def test_xero_practice_tracking_reads_back_as_the_practice_dimension() -> None:
    assert booked_dimensions([{"Name": "practice", "Option": "DIGITAL Digital"}]) == (
        DimensionValue(dimension="practice", code="DIGITAL Digital", name="DIGITAL Digital"),
    )


EXPECTED = {"project": "4711", "customer": "001A", "practice": "DIGITAL"}


def _evidence(booked: dict[str, str], **changes: Any) -> ProjectEvidence:
    return ProjectEvidence(
        project_id="4711",
        legal_entity="EU",
        period="2026-10",
        currency="EUR",
        terms=ContractTerms(billing_model=BillingModel.FIXED_FEE),
        psa=PsaWork(),
        erp=(
            ErpInvoiceFacts(
                number="INV-1",
                invoice_id="i1",
                reference="PS-4711-2026-10-x",
                state=InvoiceState.AWAITING_PAYMENT,
                net=Decimal("100"),
                lines=1,
                booked=(BookedLineFacts(description="Consulting", dimensions=booked),),
            ),
        ),
        dimensions=EXPECTED,
        **changes,
    )


def _kinds(evidence: ProjectEvidence) -> set[str]:
    return {d.kind for d in reconcile_project(evidence, unbilled_due=True).differences}


def test_a_line_booked_without_its_practice_or_under_another_is_a_difference() -> None:
    assert "line_dimensions_differ" not in _kinds(_evidence(EXPECTED))
    assert "line_dimensions_differ" in _kinds(_evidence({"project": "4711", "customer": "001A"}))
    assert "line_dimensions_differ" in _kinds(_evidence({**EXPECTED, "practice": "CLOUD"}))
    reason = next(
        d.reason
        for d in reconcile_project(
            _evidence({**EXPECTED, "practice": "CLOUD"}), unbilled_due=True
        ).differences
        if d.kind == "line_dimensions_differ"
    )
    assert "practice 'DIGITAL'" in reason and "practice 'CLOUD'" in reason


def test_a_xero_line_is_not_held_to_a_dimension_its_entity_does_not_track() -> None:
    # Made with project, customer and practice; the entity tracks project and practice only now.
    tracked = ("project", "practice")
    assert "line_dimensions_differ" not in _kinds(
        _evidence({"project": "4711", "practice": "DIGITAL"}, tracked_dimensions=tracked)
    )
    # A category outside ps-sync's tracked ones on the line does not count either.
    assert "line_dimensions_differ" not in _kinds(_evidence(EXPECTED, tracked_dimensions=tracked))
    # But a tracked one missing or wrong still does.
    assert "line_dimensions_differ" in _kinds(_evidence({"project": "4711"}, tracked_dimensions=tracked))
    assert "line_dimensions_differ" in _kinds(
        _evidence({"project": "4711", "practice": "CLOUD"}, tracked_dimensions=tracked)
    )
