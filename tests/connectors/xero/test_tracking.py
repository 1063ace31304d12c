"""Project and customer as Xero tracking, against a sandbox of their own (its categories start empty), every
request and response validated against xero_accounting.yaml: Xero's two active categories, option names,
and line items that name categories and options."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest

from canonical import Account, Address, Invoice, InvoiceLine, LegalEntity, Money
from canonical.dimensions import DimensionValue, ErpProjectSpec
from config import default_entities
from connectors.errors import Rejected
from connectors.xero import XeroConnector
from connectors.xero.tracking import option_name
from sandboxes.serve import serve_in_thread
from sandboxes.xero import XeroSandboxConfig, create_app

from ..specs import ValidationLog
from .conftest import TEST_WEBHOOKS, XeroSandboxHandle, connector_for


@pytest.fixture(scope="module")
def own_sandbox() -> Iterator[XeroSandboxHandle]:
    config = XeroSandboxConfig(webhooks=TEST_WEBHOOKS)
    app = create_app(config)
    served = serve_in_thread(app)
    yield XeroSandboxHandle(url=served.url, served=served, state=app.state.sandbox, config=config)
    served.stop()


@pytest.fixture
async def xero(own_sandbox: XeroSandboxHandle, spec_log: ValidationLog) -> AsyncIterator[XeroConnector]:
    connector = connector_for(own_sandbox, spec_log)
    yield connector
    await connector.aclose()


@pytest.fixture
def uk() -> LegalEntity:
    return next(e for e in default_entities() if e.code == "UK")


async def _reset(xero: XeroConnector) -> None:
    """Archive and delete every category, as a finance admin would, so each test starts with none."""
    for category in (await xero.client.get("/TrackingCategories", params={"includeArchived": "true"}))[
        "TrackingCategories"
    ]:
        await xero.client.post(
            f"/TrackingCategories/{category['TrackingCategoryID']}",
            {"Status": "DELETED"},
            idempotency_key=f"test-delete:{uuid.uuid4()}",
        )


async def _customer(xero: XeroConnector, uk: LegalEntity) -> tuple[Account, str]:
    suffix = uuid.uuid4().hex[:10].upper()
    account = Account(
        id=f"001{suffix}",
        name=f"Initech {suffix}",
        billing_address=Address(street="1 Main St", city="Leeds", postal_code="LS1 1AA", country="GB"),
    )
    return account, await xero.create_customer(account, entity=uk, idempotency_key=f"c:{suffix}")


def _spec(account: Account, customer_id: str, name: str = "Data platform") -> ErpProjectSpec:
    return ErpProjectSpec(
        project_code=uuid.uuid4().hex[:8],
        project_name=name,
        customer_id=customer_id,
        customer_code=account.id,
        customer_name=account.name,
    )


async def test_project_and_customer_become_options_of_two_categories_made_on_first_use(
    xero: XeroConnector, uk: LegalEntity
) -> None:
    await _reset(xero)
    account, customer_id = await _customer(xero, uk)
    spec = _spec(account, customer_id, "Data platform " + "x" * 120)

    project = await xero.ensure_erp_project(spec, entity=uk)

    categories = (await xero.client.get("/TrackingCategories"))["TrackingCategories"]
    options = {c["Name"]: [o["Name"] for o in c["Options"]] for c in categories}
    project_option = option_name(spec.project_code, spec.project_name)
    assert len(project_option) == 100 and project_option.startswith(f"{spec.project_code} Data platform")
    assert options == {"Project": [project_option], "Customer": [f"{account.id} {account.name}"]}
    assert {v.dimension: v.code for v in project.dimensions} == {
        "project": project_option,
        "customer": f"{account.id} {account.name}",
    }


async def test_no_room_for_ps_syncs_categories_is_refused_naming_what_holds_it(
    xero: XeroConnector, uk: LegalEntity
) -> None:
    await _reset(xero)
    for name in ("Region", "Department"):
        await xero.client.put("/TrackingCategories", {"Name": name}, idempotency_key=f"t:{uuid.uuid4()}")
    account, customer_id = await _customer(xero, uk)

    with pytest.raises(Rejected) as raised:
        await xero.ensure_erp_project(_spec(account, customer_id), entity=uk)

    assert "'Region', 'Department' hold them" in str(raised.value)
    # Xero itself refuses a third active category: the sandbox says so as Xero does.
    with pytest.raises(Rejected) as third:
        await xero.client.put("/TrackingCategories", {"Name": "Project"}, idempotency_key=f"t:{uuid.uuid4()}")
    assert "2 active tracking categories" in str(third.value.field_errors)


async def test_a_line_naming_an_archived_option_is_refused(xero: XeroConnector, uk: LegalEntity) -> None:
    await _reset(xero)
    account, customer_id = await _customer(xero, uk)
    project = await xero.ensure_erp_project(_spec(account, customer_id), entity=uk)
    categories = (await xero.client.get("/TrackingCategories"))["TrackingCategories"]
    category = next(c for c in categories if c["Name"] == "Project")
    (option,) = category["Options"]
    await xero.client.post(
        f"/TrackingCategories/{category['TrackingCategoryID']}/Options/{option['TrackingOptionID']}",
        {"Status": "ARCHIVED"},
        idempotency_key=f"t:{uuid.uuid4()}",
    )
    invoice = _invoice(uk, account, customer_id, project.dimensions)

    with pytest.raises(Rejected) as raised:
        await xero.post_invoice(invoice, entity=uk, idempotency_key=f"inv:{uuid.uuid4()}")

    assert any("is not active in tracking category 'Project'" in e.message for e in raised.value.field_errors)
    # And ensuring the project again says what finance must do rather than making a second option.
    with pytest.raises(Rejected, match="archived"):
        await xero.ensure_erp_project(
            _spec(account, customer_id).model_copy(
                update={"project_code": project.project_id.split(" ", 1)[0]}
            ),
            entity=uk,
        )


async def test_option_names_are_unique_within_their_category(xero: XeroConnector, uk: LegalEntity) -> None:
    await _reset(xero)
    created = await xero.client.put(
        "/TrackingCategories", {"Name": "Project"}, idempotency_key=f"t:{uuid.uuid4()}"
    )
    category_id = created["TrackingCategories"][0]["TrackingCategoryID"]
    await xero.client.put(
        f"/TrackingCategories/{category_id}/Options",
        {"Name": "4711 Audit"},
        idempotency_key=f"t:{uuid.uuid4()}",
    )

    with pytest.raises(Rejected) as raised:
        await xero.client.put(
            f"/TrackingCategories/{category_id}/Options",
            {"Name": "4711 audit"},
            idempotency_key=f"t:{uuid.uuid4()}",
        )

    assert "must be unique" in str(raised.value.field_errors)


def _invoice(
    uk: LegalEntity, account: Account, customer_id: str, dimensions: tuple[DimensionValue, ...]
) -> Invoice:
    today = date.today()
    return Invoice(
        legal_entity="UK",
        customer_id=customer_id,
        customer_name=account.name,
        project_id="p",
        period=f"{today:%Y-%m}",
        currency="GBP",
        issue_date=today,
        due_date=today + timedelta(days=30),
        reference=f"PSS-{uuid.uuid4().hex[:10]}",
        lines=(
            InvoiceLine(
                description="Consulting",
                quantity=Decimal(1),
                unit_price=Money.of("100", "GBP"),
                tax_code=uk.default_tax_code,
                dimensions=dimensions,
            ),
        ),
    )


async def test_default_tracking_leaves_the_practice_off_within_xeros_two_categories(
    xero: XeroConnector, uk: LegalEntity
) -> None:
    await _reset(xero)
    account, customer_id = await _customer(xero, uk)
    spec = _spec(account, customer_id).model_copy(update={"practice": "Digital"})

    project = await xero.ensure_erp_project(spec, entity=uk)

    categories = (await xero.client.get("/TrackingCategories"))["TrackingCategories"]
    assert sorted(c["Name"] for c in categories) == ["Customer", "Project"]
    assert [v.dimension for v in project.dimensions] == ["project", "customer"]


async def test_an_entity_tracking_practice_books_lines_under_project_and_practice(
    xero: XeroConnector, uk: LegalEntity
) -> None:
    await _reset(xero)
    by_practice = uk.model_copy(update={"tracked_dimensions": ("project", "practice")})
    account, customer_id = await _customer(xero, uk)
    spec = _spec(account, customer_id).model_copy(update={"practice": "Data & AI"})

    project = await xero.ensure_erp_project(spec, entity=by_practice)
    again = await xero.ensure_erp_project(spec, entity=by_practice)

    assert again == project
    categories = (await xero.client.get("/TrackingCategories"))["TrackingCategories"]
    options = {c["Name"]: [o["Name"] for o in c["Options"]] for c in categories}
    assert options == {
        "Project": [option_name(spec.project_code, spec.project_name)],
        "Practice": ["DATA-AI Data & AI"],
    }
    assert {v.dimension: v.code for v in project.dimensions} == {
        "project": option_name(spec.project_code, spec.project_name),
        "practice": "DATA-AI Data & AI",
    }
    invoice = _invoice(by_practice, account, customer_id, project.dimensions)
    await xero.post_invoice(invoice, entity=by_practice, idempotency_key=f"inv:{uuid.uuid4()}")
    (booked,) = await xero.booked_invoices(invoice.reference)
    (line,) = booked.lines
    assert {v.dimension: v.code for v in line.dimensions} == {
        "project": option_name(spec.project_code, spec.project_name),
        "practice": "DATA-AI Data & AI",
    }


async def test_a_line_of_a_project_made_before_the_switch_sends_only_the_tracked_categories(
    xero: XeroConnector, uk: LegalEntity
) -> None:
    """Finance moved from customer to practice: the Customer category is archived, and a project made
    before still carries its customer value, which Xero now has no category for."""
    await _reset(xero)
    account, customer_id = await _customer(xero, uk)
    before = await xero.ensure_erp_project(_spec(account, customer_id), entity=uk)
    categories = (await xero.client.get("/TrackingCategories"))["TrackingCategories"]
    customer = next(c for c in categories if c["Name"] == "Customer")
    await xero.client.post(
        f"/TrackingCategories/{customer['TrackingCategoryID']}",
        {"Status": "ARCHIVED"},
        idempotency_key=f"t:{uuid.uuid4()}",
    )
    by_practice = uk.model_copy(update={"tracked_dimensions": ("project", "practice")})
    invoice = _invoice(by_practice, account, customer_id, before.dimensions)

    await xero.post_invoice(invoice, entity=by_practice, idempotency_key=f"inv:{uuid.uuid4()}")

    (booked,) = await xero.booked_invoices(invoice.reference)
    assert [v.dimension for v in booked.lines[0].dimensions] == ["project"]


async def test_a_project_without_a_practice_is_tracked_by_the_rest_and_makes_no_practice_category(
    xero: XeroConnector, uk: LegalEntity
) -> None:
    await _reset(xero)
    by_practice = uk.model_copy(update={"tracked_dimensions": ("practice", "customer")})
    account, customer_id = await _customer(xero, uk)
    spec = _spec(account, customer_id)

    project = await xero.ensure_erp_project(spec, entity=by_practice)

    categories = (await xero.client.get("/TrackingCategories"))["TrackingCategories"]
    assert [c["Name"] for c in categories] == ["Customer"]
    assert [v.dimension for v in project.dimensions] == ["customer"]
    # Not tracking projects, Xero keeps nothing per project: the PSA project id stands for it.
    assert project.project_id == spec.project_code


async def test_a_practice_xero_has_no_room_for_is_refused_naming_what_holds_the_slots(
    xero: XeroConnector, uk: LegalEntity
) -> None:
    await _reset(xero)
    account, customer_id = await _customer(xero, uk)
    await xero.ensure_erp_project(_spec(account, customer_id), entity=uk)
    by_practice = uk.model_copy(update={"tracked_dimensions": ("project", "practice")})
    spec = _spec(account, customer_id).model_copy(update={"practice": "Digital"})

    with pytest.raises(Rejected) as raised:
        await xero.ensure_erp_project(spec, entity=by_practice)

    assert "'Project', 'Customer' hold them, leaving no room for 'Practice'" in str(raised.value)
    # Nothing was made for the refused project: its option would be orphaned in Project.
    categories = (await xero.client.get("/TrackingCategories"))["TrackingCategories"]
    project_options = next(c["Options"] for c in categories if c["Name"] == "Project")
    assert len(project_options) == 1
