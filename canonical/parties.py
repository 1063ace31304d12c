"""Customers, contacts and the firm's own legal entities."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canonical.dimensions import Dimension
from canonical.money import LineRounding, Money

# Xero allows two active tracking categories per organisation: an entity booked in Xero tracks two of the
# dimensions at most, and by default the ones every line has.
MAX_TRACKED_DIMENSIONS = 2
DEFAULT_TRACKED_DIMENSIONS: tuple[Dimension, ...] = ("project", "customer")


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    street: str
    city: str
    postal_code: str | None = None
    region: str | None = None
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    first_name: str | None = None
    last_name: str
    email: str | None = None


class Account(BaseModel):
    """A customer as the CRM knows it; ERP and PSA ids are attached as they become known."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    billing_address: Address | None = None
    tax_number: str | None = None
    owner_id: str | None = None
    erp_customer_id: str | None = None


class ErpCustomer(BaseModel):
    """A customer as an ERP holds it: enough to tell whether it is the CRM account we are about to create."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="the ERP's customer id")
    name: str
    tax_number: str | None = None
    external_ref: str | None = Field(default=None, description="the CRM account id the ERP record carries")


def name_key(name: str) -> str:
    """A customer name compared the way a person would: case, outer and repeated spaces ignored."""
    return " ".join(name.split()).casefold()


def tax_number_key(tax_number: str | None) -> str | None:
    """A tax number as ERPs store it compacted: 'GB 123.456-789' and 'gb123456789' are the same number."""
    if tax_number is None:
        return None
    compact = "".join(ch for ch in tax_number if ch.isalnum()).upper()
    return compact or None


class LegalEntity(BaseModel):
    """One of the firm's own companies; it decides which ERP books the work."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="short code, e.g. 'UK' or 'EU'")
    name: str
    erp: str = Field(description="ERP system key, e.g. 'xero' or 'tryton'")
    currency: str
    countries: tuple[str, ...] = Field(description="customer billing countries booked by this entity")
    tax_codes: tuple[str, ...] = Field(description="tax codes valid for this entity")
    default_tax_code: str
    approval_threshold: Money
    payment_terms_days: int = 30
    line_rounding: LineRounding = Field(default="half_up", description="how this entity's ERP rounds lines")
    # What the entity's ERP stores of a line: invoices are rated at these places, so the ERP books the
    # amounts we computed. Two places of each is what any ERP stores exactly.
    quantity_places: int = Field(default=2, ge=0, le=8, description="decimals the ERP keeps of a quantity")
    unit_price_places: int = Field(default=2, ge=0, le=8, description="decimals the ERP keeps of a price")
    # Finance's answer to "the ERP booked a slightly different total" (its own tax or rounding set-up): a
    # difference up to this is accepted and audited, a larger one is voided in the ERP and comes back to
    # finance. None (or zero) accepts only an exact match, so nothing is booked that finance did not agree to.
    booking_tolerance: Money | None = Field(
        default=None,
        description="largest difference between the ERP's booked net total and ours that is accepted, "
        "in the entity's currency; None or zero: exact",
    )
    # Where the ERP has room for only some dimensions (Xero's two tracking categories), the ones it tracks;
    # a firm that reports by practice rather than customer sets ("project", "practice"). An ERP with room
    # for every dimension (Tryton's analytic roots) books them all and does not read this.
    tracked_dimensions: tuple[Dimension, ...] = Field(
        default=DEFAULT_TRACKED_DIMENSIONS,
        description="the dimensions an ERP with limited room tracks (Xero: one or two of project, customer, "
        "practice)",
    )

    @model_validator(mode="after")
    def _tolerance_in_entity_currency(self) -> LegalEntity:
        tolerance = self.booking_tolerance
        if tolerance is not None and (tolerance.currency != self.currency or tolerance.amount < 0):
            raise ValueError(
                f"booking_tolerance of entity {self.code} must be a non-negative amount in {self.currency}, "
                f"got {tolerance}"
            )
        return self

    @model_validator(mode="after")
    def _tracked_dimensions_fit_xero(self) -> LegalEntity:
        tracked = self.tracked_dimensions
        if not tracked or len(tracked) > MAX_TRACKED_DIMENSIONS or len(set(tracked)) != len(tracked):
            raise ValueError(
                f"tracked_dimensions of entity {self.code} must name one or two different dimensions of "
                f"project, customer, practice (Xero tracks at most {MAX_TRACKED_DIMENSIONS} categories), "
                f"got {list(tracked)}"
            )
        return self
