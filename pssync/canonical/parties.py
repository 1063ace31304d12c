"""Customers, contacts and the firm's own legal entities."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pssync.canonical.money import LineRounding, Money


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
