"""Credit notes: Tryton's credit mechanism, in full or in part, then allocated to the credited invoice.

A Tryton credit note is an `account.invoice` whose lines are negative and point (`origin`) at the credited
invoice's lines; Tryton's own `Invoice._credit` builds exactly that for a full credit, and we do the same
in one `create` call so the idempotency key is stored atomically with it. A part credit gets one line per
tax group, priced so that Tryton's taxed total is the credited gross to the cent. The credit note then
pays the invoice as a Tryton user would: its receivable line joins the invoice's payment lines, and once
nothing is left to pay the lines are reconciled, which moves both documents to "paid".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from canonical import Money
from connectors.errors import FieldError, Rejected
from connectors.tryton import documents
from connectors.tryton.rpc import TrytonRpc

SYSTEM = "tryton"

SOURCE_LINE_FIELDS = (
    "id",
    "type",
    "product",
    "unit",
    "account",
    "taxes",
    "quantity",
    "unit_price",
    "amount",
    "description",
)


async def create_credit_note(
    rpc: TrytonRpc, record: Mapping[str, Any], amount: Money, reason: str, idempotency_key: str
) -> dict[str, Any]:
    """A draft credit note of `amount` (gross) against the posted invoice `record`."""
    source = [
        line
        for line in await rpc.read("account.invoice.line", record["lines"], list(SOURCE_LINE_FIELDS))
        if line["type"] == "line"
    ]
    common = {
        "type": "line",
        "invoice_type": "out",
        "company": record["company"],
        "currency": record["currency"],
        "party": record["party"],
    }
    full = amount.amount == record["total_amount"]
    if full:
        lines = [
            {
                **common,
                "product": s["product"],
                "unit": s["unit"],
                "account": s["account"],
                "description": s["description"],
                "quantity": -float(s["quantity"]),
                "unit_price": s["unit_price"],
                "taxes": [["add", s["taxes"]]],
                "origin": f"account.invoice.line,{s['id']}",
            }
            for s in source
        ]
    else:
        lines = partial_credit_lines(source, common, record, amount, reason)
    values = {
        "type": "out",
        "company": record["company"],
        "party": record["party"],
        "invoice_address": record["invoice_address"],
        "currency": record["currency"],
        "account": record["account"],
        "journal": record["journal"],
        "reference": record["number"],
        "description": idempotency_key,
        "comment": reason,
        "lines": [["create", lines]],
    }
    (credit_id,) = await rpc.create("account.invoice", [values])
    credit = await documents.read_invoice(rpc, credit_id)
    if not full:
        credit = await _adjust_to_gross(rpc, credit, -amount.amount, amount.currency)
    return credit


def partial_credit_lines(
    source: Iterable[Mapping[str, Any]],
    common: Mapping[str, Any],
    record: Mapping[str, Any],
    amount: Money,
    reason: str,
) -> list[dict[str, Any]]:
    """One line per (taxes, account, product) group, sharing the credited net in the invoice's proportions."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for line in source:
        key = (tuple(sorted(line["taxes"])), line["account"], line["product"], line["unit"])
        group = groups.setdefault(key, {"first": line, "net": Decimal(0)})
        group["net"] += line["amount"]
    untaxed, total = record["untaxed_amount"], record["total_amount"]
    if untaxed <= 0 or total <= 0:
        raise Rejected("only an invoice with a positive total can be credited in part", system=SYSTEM)
    cent = documents.cent(amount.currency)
    target_net = (amount.amount * untaxed / total).quantize(cent)
    shares = [(group, (target_net * group["net"] / untaxed).quantize(cent)) for group in groups.values()]
    # Whatever rounding left over goes to the last group, so the shares add up to the target.
    last_group, last_share = shares[-1]
    shares[-1] = (last_group, last_share + target_net - sum(share for _, share in shares))
    return [
        {
            **common,
            "product": group["first"]["product"],
            "unit": group["first"]["unit"],
            "account": group["first"]["account"],
            "description": f"Credit: {reason}",
            "quantity": -1.0,
            "unit_price": share,
            "taxes": [["add", list(group["first"]["taxes"])]],
            "origin": f"account.invoice.line,{group['first']['id']}",
        }
        for group, share in shares
    ]


async def _adjust_to_gross(
    rpc: TrytonRpc, credit: dict[str, Any], target: Decimal, currency: str
) -> dict[str, Any]:
    """Make Tryton's taxed total of a draft credit note exactly `target` (negative).

    Tryton computes and rounds the tax, so the net estimate can miss the gross by a cent; the last line's
    price is nudged. Some grosses are unreachable at a tax rate (at 21 %, nets of 0.83 and 0.84 give 1.00
    and 1.02, never 1.01): the last cent then goes on an untaxed rounding line.
    """
    lines = await rpc.read(
        "account.invoice.line", credit["lines"], ["id", "unit_price", "product", "unit", "account"]
    )
    last = max(lines, key=lambda line: line["id"])
    price = last["unit_price"]
    for _attempt in range(3):
        difference = target - credit["total_amount"]
        if difference == 0:
            return credit
        # Quantity is -1, so a higher price lowers the total. Written through the invoice: only an invoice
        # write makes Tryton recompute a draft's taxes.
        price -= difference
        await rpc.write(
            "account.invoice", [credit["id"]], {"lines": [["write", [last["id"]], {"unit_price": price}]]}
        )
        credit = await documents.read_invoice(rpc, credit["id"])
    difference = target - credit["total_amount"]
    if difference == 0:
        return credit
    if abs(difference) > 2 * documents.cent(currency):
        await rpc.delete("account.invoice", [credit["id"]])
        raise Rejected(
            f"Tryton cannot express a credit of {-target} {currency} (nearest {-credit['total_amount']})",
            system=SYSTEM,
            field_errors=[FieldError(field="amount", message="not reachable with tax rounding")],
        )
    rounding = {
        "type": "line",
        "invoice_type": "out",
        "company": credit["company"],
        "currency": credit["currency"],
        "party": credit["party"],
        "product": last["product"],
        "unit": last["unit"],
        "account": last["account"],
        "description": "Tax rounding",
        "quantity": -1.0,
        "unit_price": -difference,
    }
    await rpc.write("account.invoice", [credit["id"]], {"lines": [["create", [rounding]]]})
    return await documents.read_invoice(rpc, credit["id"])


async def allocate(rpc: TrytonRpc, invoice_id: int, credit: Mapping[str, Any]) -> None:
    """Let the posted credit note pay the invoice; reconcile once nothing is left. Safe to repeat."""
    record = await documents.read_invoice(rpc, invoice_id)
    credit_lines = await rpc.read("account.move.line", credit["lines_to_pay"], ["id", "reconciliation"])
    to_add = [
        line["id"]
        for line in credit_lines
        if not line["reconciliation"] and line["id"] not in record["payment_lines"]
    ]
    if to_add and record["state"] == "posted":
        await rpc.write("account.invoice", [invoice_id], {"payment_lines": [["add", to_add]]})
        record = await documents.read_invoice(rpc, invoice_id)
    if record["state"] != "posted" or record["amount_to_pay"] != 0:
        return
    candidates = await rpc.read(
        "account.move.line", [*record["lines_to_pay"], *record["payment_lines"]], ["id", "reconciliation"]
    )
    open_lines = [line["id"] for line in candidates if not line["reconciliation"]]
    if open_lines:
        # Balanced lines: the wizard's start transition reconciles them without asking to write anything off.
        await rpc.wizard(
            "account.move.reconcile_lines",
            [],
            context={
                "active_model": "account.move.line",
                "active_id": open_lines[0],
                "active_ids": open_lines,
            },
        )
