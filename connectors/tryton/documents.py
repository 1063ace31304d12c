"""Reading, finding and posting Tryton invoices and credit notes (both are `account.invoice`)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from canonical import Money
from canonical.money import minor_units
from connectors.errors import FieldError, Rejected
from connectors.tryton.rpc import TrytonRpc, TrytonUserWarning

SYSTEM = "tryton"

INVOICE_FIELDS = (
    "id",
    "number",
    "state",
    "type",
    "reference",
    "description",
    "comment",
    "currency",
    "untaxed_amount",
    "tax_amount",
    "total_amount",
    "amount_to_pay",
    "party",
    "invoice_address",
    "account",
    "journal",
    "lines",
    "lines_to_pay",
    "payment_lines",
    "reconciliation_lines",
    "cancel_move",
    "invoice_date",
    "create_date",
    "company",
)
MOVE_LINE_FIELDS = (
    "id",
    "move",
    "debit",
    "credit",
    "amount_second_currency",
    "second_currency",
    "date",
    "maturity_date",
    "reconciliation",
    "account",
)
# The one Tryton warning answered by the connector: the tax on a line is the integration's rated choice
# (e.g. VAT0 for a zero-rated customer), so "not the product's default tax" is expected, not a mistake.
ACCEPTED_WARNINGS = (".invoice_taxes",)


async def read_invoices(rpc: TrytonRpc, ids: Sequence[int]) -> list[dict[str, Any]]:
    return await rpc.read("account.invoice", ids, list(INVOICE_FIELDS))


async def read_invoice(rpc: TrytonRpc, invoice_id: int) -> dict[str, Any]:
    (record,) = await read_invoices(rpc, [invoice_id])
    return record


async def by_key(rpc: TrytonRpc, company: int, idempotency_key: str) -> list[dict[str, Any]]:
    """Customer invoices and credit notes carrying our idempotency key."""
    domain = [("description", "=", idempotency_key), ("type", "=", "out"), ("company", "=", company)]
    return await read_invoices(rpc, await rpc.search("account.invoice", domain))


async def post(rpc: TrytonRpc, invoice_id: int) -> None:
    """Post a draft invoice or credit note; a rejected draft is deleted so a retry starts clean."""
    try:
        try:
            await rpc.button("account.invoice", "post", [invoice_id])
        except TrytonUserWarning as warning:
            if not warning.name.endswith(ACCEPTED_WARNINGS):
                raise
            await rpc.acknowledge_warning(warning.name)
            await rpc.button("account.invoice", "post", [invoice_id])
    except Rejected:
        # Tryton rolled the post back: the draft holds nothing a person needs, and leaving it would make the
        # next attempt post a document built from data someone may since have fixed.
        await rpc.delete("account.invoice", [invoice_id])
        raise


async def unit_digits(rpc: TrytonRpc, unit_ids: Sequence[int]) -> dict[int, int]:
    """The decimals Tryton keeps for quantities in each unit (product.uom digits): more are refused."""
    records = await rpc.read("product.uom", sorted(set(unit_ids)), ["id", "digits"])
    return {record["id"]: int(record["digits"]) for record in records}


def origin_id(origin: str | None, model: str) -> int | None:
    """The id in a Reference value such as 'account.invoice,12', when it points at `model`."""
    if not origin or not origin.startswith(f"{model},"):
        return None
    return int(origin.split(",", 1)[1])


def cent(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def check_amount(amount: Money, currency: str) -> None:
    """A payment or credit amount: in the invoice's currency, positive, in whole minor units."""
    if amount.currency != currency:
        raise Rejected(
            f"amount is in {amount.currency}, the invoice is in {currency}",
            system=SYSTEM,
            field_errors=[FieldError(field="amount.currency", message="currency differs")],
        )
    if amount.amount <= 0:
        raise Rejected(
            f"amount must be positive, got {amount}",
            system=SYSTEM,
            field_errors=[FieldError(field="amount", message="not positive")],
        )
    if amount.amount != amount.amount.quantize(cent(currency)):
        raise Rejected(
            f"amount {amount} has more decimals than {currency} allows",
            system=SYSTEM,
            field_errors=[FieldError(field="amount", message="too many decimals")],
        )
