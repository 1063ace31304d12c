"""Customer invoices: finding one, and posting one idempotently with Tryton's total checked against ours.

Tryton has no idempotency header, so a post is "look up by our key, then create": the key is stored on the
invoice in the same `create` call (see mapping.py for which field), which makes a retried post find the
first one instead of making a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canonical import Invoice, LegalEntity, PostedInvoice
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.tryton import documents, mapping
from connectors.tryton.analytic import TrytonAnalytics
from connectors.tryton.analytic import rejected as analytic_rejected
from connectors.tryton.books import TrytonBooks
from connectors.tryton.rpc import TrytonRpc

SYSTEM = "tryton"


async def customer_invoice(rpc: TrytonRpc, books: TrytonBooks, invoice_id: str) -> dict[str, Any]:
    """One of the company's customer invoices by our id for it; NotFound for anything else."""
    try:
        number = mapping.tryton_id(invoice_id, what="invoice")
    except ValueError as exc:
        raise NotFound(str(exc), system=SYSTEM, status_code=None) from None
    company = await books.company()
    domain = [("id", "=", number), ("type", "=", "out"), ("company", "=", company)]
    if not await rpc.search("account.invoice", domain):
        raise NotFound(f"Tryton has no customer invoice {invoice_id}", system=SYSTEM, status_code=None)
    return await documents.read_invoice(rpc, number)


async def find_invoice(rpc: TrytonRpc, books: TrytonBooks, reference: str) -> PostedInvoice | None:
    company = await books.company()
    domain = [("reference", "=", reference), ("type", "=", "out"), ("company", "=", company)]
    found = await documents.read_invoices(rpc, await rpc.search("account.invoice", domain))
    records = [r for r in found if r["total_amount"] >= 0]  # our credit notes never carry the reference
    candidates = [r for r in records if r["state"] != "cancelled"] or records
    if not candidates:
        return None
    if len(candidates) > 1:
        raise Conflict(f"{len(candidates)} Tryton invoices carry reference {reference!r}", system=SYSTEM)
    return mapping.posted_invoice(candidates[0], await books.currency_code(candidates[0]["currency"]))


async def post_invoice(
    rpc: TrytonRpc,
    books: TrytonBooks,
    invoice: Invoice,
    *,
    entity: LegalEntity,
    idempotency_key: str,
    analytics: TrytonAnalytics | None = None,
) -> PostedInvoice:
    if invoice.legal_entity != entity.code:
        raise Rejected(
            f"invoice is for entity {invoice.legal_entity}, this is {entity.code}",
            system=SYSTEM,
            field_errors=[FieldError(field="legal_entity", message="wrong legal entity")],
        )
    if not invoice.lines:
        raise Rejected(
            "an invoice needs at least one line",
            system=SYSTEM,
            field_errors=[FieldError(field="lines", message="empty")],
        )
    company = await books.company()
    # Credit notes share the field (same model); only an invoice counts here.
    existing = [r for r in await documents.by_key(rpc, company, idempotency_key) if r["total_amount"] >= 0]
    if len(existing) > 1:
        raise Conflict(f"several Tryton invoices carry idempotency key {idempotency_key!r}", system=SYSTEM)
    if existing:
        record = existing[0]
        if record["reference"] != invoice.reference:
            raise Conflict(
                f"idempotency key {idempotency_key!r} was used for invoice {record['reference']!r}, "
                f"not {invoice.reference!r}",
                system=SYSTEM,
            )
    else:
        record = await _create_invoice(rpc, books, invoice, entity, idempotency_key, analytics)
    if record["state"] in ("draft", "validated"):
        await _check_total(rpc, record, invoice)
        await documents.post(rpc, record["id"])
        record = await documents.read_invoice(rpc, record["id"])
    return mapping.posted_invoice(record, invoice.currency)


async def _create_invoice(
    rpc: TrytonRpc,
    books: TrytonBooks,
    invoice: Invoice,
    entity: LegalEntity,
    idempotency_key: str,
    analytics: TrytonAnalytics | None,
) -> dict[str, Any]:
    try:
        party = mapping.tryton_id(invoice.customer_id, what="customer")
    except ValueError as exc:
        raise Rejected(
            str(exc), system=SYSTEM, field_errors=[FieldError(field="customer_id", message=str(exc))]
        ) from None
    days = (invoice.due_date - invoice.issue_date).days
    if days < 0:
        raise Rejected(
            "due date is before the issue date",
            system=SYSTEM,
            field_errors=[FieldError(field="due_date", message="before issue_date")],
        )
    line_refs = await books.line_refs(invoice, entity)
    customer = await books.customer(party)
    refs = mapping.InvoiceRefs(
        company=await books.company(),
        party=party,
        invoice_address=customer["address"],
        currency=await books.currency(invoice.currency, "currency"),
        receivable=customer["receivable"],
        journal=await books.journal(),
        payment_term=await books.payment_term(days),
    )
    digits = await documents.unit_digits(rpc, [r.unit for r in line_refs])
    lines = [
        mapping.invoice_line_values(
            line, index, line_refs[index], refs, unit_digits=digits[line_refs[index].unit]
        )
        for index, line in enumerate(invoice.lines)
    ]
    if any(line.dimensions for line in invoice.lines):
        if analytics is None:
            raise Rejected("this Tryton connector books no analytic dimensions", system=SYSTEM)
        errors: list[FieldError] = []
        for index, line in enumerate(invoice.lines):
            entries, missing = await analytics.entries(line, index)
            errors += missing
            if entries:
                lines[index]["analytic_accounts"] = [["create", entries]]
        if errors:
            raise analytic_rejected(errors)
    values = mapping.invoice_values(invoice, idempotency_key=idempotency_key, refs=refs, lines=lines)
    (invoice_id,) = await rpc.create("account.invoice", [values])
    return await documents.read_invoice(rpc, invoice_id)


async def _check_total(rpc: TrytonRpc, record: Mapping[str, Any], invoice: Invoice) -> None:
    """Refuse to post when Tryton's net total differs from ours; the draft is removed, nothing is left.

    Ours is `Invoice.total`: each line's quantity x unit price rounded by the line's rounding, the rule
    rating used; a line rated for another ERP's rounding is what this catches.
    """
    if record["untaxed_amount"] == invoice.total.amount:
        return
    lines = await rpc.read("account.invoice.line", record["lines"], ["sequence", "amount"])
    lines.sort(key=lambda line: (line["sequence"] or 0, line["id"]))
    errors = [
        FieldError(
            field=f"lines[{index}].amount",
            code="rounding",
            message=f"line {index} ({ours.description!r}): Tryton {theirs['amount']}, "
            f"ours {ours.amount.amount}",
        )
        for index, (ours, theirs) in enumerate(zip(invoice.lines, lines, strict=False))
        if theirs["amount"] != ours.amount.amount
    ]
    await rpc.delete("account.invoice", [record["id"]])
    raise Rejected(
        f"Tryton computes a net total of {record['untaxed_amount']} {invoice.currency}, we billed "
        f"{invoice.total.amount}: Tryton rounds each line to the currency half-even; not posted",
        system=SYSTEM,
        field_errors=errors or [FieldError(field="total", message="totals differ")],
    )
