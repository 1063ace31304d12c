"""How an invoice's money state is written on a Kantata project: one line per ERP invoice.

The `ERP Invoices` custom field holds a line per invoice (human-readable in Kantata's project settings and
parseable back); `ERP Amount Due` and `ERP Amount Paid` hold the project totals of those lines in the
project's currency. Rewriting one invoice's line with the same summary produces the same values, so
pushing a summary twice changes nothing.
"""

from __future__ import annotations

from decimal import Decimal

from canonical import Money, ReceivablesSummary

_SEPARATOR = " | "


def line_for(summary: ReceivablesSummary) -> str:
    for text in (summary.invoice_number, summary.invoice_id):
        if "|" in text or "\n" in text:
            raise ValueError(f"invoice reference {text!r} must not contain '|' or a line break")
    currency = summary.total.currency
    return _SEPARATOR.join(
        [
            summary.invoice_number,
            summary.state.value,
            f"total {summary.total.amount}",
            f"due {summary.amount_due.amount}",
            f"paid {summary.amount_paid.amount}",
            f"credited {summary.amount_credited.amount}",
            currency,
            f"id {summary.invoice_id}",
        ]
    )


def merge_line(existing: str | None, summary: ReceivablesSummary) -> str:
    """The field's text with this invoice's line added or replaced; lines stay sorted by invoice number."""
    lines = {
        number: line for number, line in (_keyed(raw) for raw in (existing or "").splitlines() if raw.strip())
    }
    lines[summary.invoice_number] = line_for(summary)
    return "\n".join(lines[number] for number in sorted(lines))


def totals(text: str, currency: str) -> tuple[Money, Money]:
    """(amount due, amount paid) over the lines in `currency`; lines in other currencies are not summed."""
    due, paid = Decimal(0), Decimal(0)
    for raw in text.splitlines():
        parts = raw.split(_SEPARATOR)
        if len(parts) != 8 or parts[6] != currency:
            continue
        due += Decimal(parts[3].removeprefix("due "))
        paid += Decimal(parts[4].removeprefix("paid "))
    return Money(amount=due, currency=currency), Money(amount=paid, currency=currency)


def _keyed(raw: str) -> tuple[str, str]:
    return raw.split(_SEPARATOR, 1)[0], raw
