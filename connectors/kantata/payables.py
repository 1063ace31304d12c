"""Payables in Kantata: approved expenses owed to the person who paid them or to their vendor, and the
ERP bill each was put on.

Kantata keeps no payables state of its own, so the bill is an external reference on the expense (service
`ps-sync`, model `ErpBill`, the bill number as its ref): `external_status` says `posted` until the bill is
paid, then `reimbursed`. Writing the same reference again changes nothing, so a retried mark is harmless.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date

from canonical import Period
from canonical.payables import PayableExpense
from connectors.errors import Conflict, NotFound
from connectors.kantata import mapping
from connectors.kantata.access import ID_CHUNK, KantataAccess, chunks, plain_ref
from connectors.kantata.client import SYSTEM, Record
from connectors.kantata.fields import ERP_BILL_MODEL, SERVICE_NAME
from connectors.paging import Page

POSTED = "posted"
REIMBURSED = "reimbursed"


def _bill_reference(references: list[Record]) -> Record | None:
    return next(
        (
            ref
            for ref in references
            if ref.get("service_name") == SERVICE_NAME and ref.get("service_model") == ERP_BILL_MODEL
        ),
        None,
    )


def _payable(record: Record, user: Record | None, bill: Record | None) -> PayableExpense:
    vendor = str(record.get("vendor") or "").strip() or None
    return PayableExpense(
        id=str(record["id"]),
        project_id=str(record["workspace_id"]),
        person_id=str(record["user_id"]),
        person_name=str((user or {}).get("full_name") or f"Kantata user {record['user_id']}"),
        person_email=(user or {}).get("email_address"),
        date=date.fromisoformat(record["date"]),
        amount=mapping.money(
            int(record["amount_in_cents"]), record["currency"], record.get("currency_base_unit")
        ),
        category=record.get("category"),
        notes=record.get("notes"),
        reimbursable=bool(record.get("reimbursable")),
        vendor=vendor,
        receipt_ref=f"Kantata expense {record['id']}",
        bill_number=str(bill["service_model_ref"]) if bill else None,
        reimbursed=bool(bill and bill.get("external_status") == REIMBURSED),
    )


class KantataPayables(KantataAccess):
    async def payable_expenses(
        self, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[PayableExpense]]:
        params = {
            "date_expensed_between": f"{period.first_day.isoformat()}:{period.last_day.isoformat()}",
            "approved": "true",
            "from_archived_workspaces": "true",
            "include": "user,external_references",
            "order": "created_at:asc",
        }
        async for envelope, number in self._client.pages("/expenses", params, start=cursor):
            items = []
            for record in envelope.records():
                # Kantata has no filter for either, so what nobody is owed is dropped here.
                if not record.get("reimbursable") and not str(record.get("vendor") or "").strip():
                    continue
                users = envelope.related(record, "user_id", "users")
                references = envelope.related(record, "external_reference_ids", "external_references")
                items.append(_payable(record, users[0] if users else None, _bill_reference(references)))
            following = envelope.next_page
            yield Page(
                items=items, cursor=str(number), next_cursor=None if following is None else str(following)
            )

    async def mark_on_bill(self, *, expense_ids: Sequence[str], bill_number: str) -> None:
        await self._mark(expense_ids, bill_number, POSTED)

    async def mark_reimbursed(self, *, expense_ids: Sequence[str], bill_number: str) -> None:
        await self._mark(expense_ids, bill_number, REIMBURSED)

    async def _mark(self, expense_ids: Sequence[str], bill_number: str, status: str) -> None:
        number = plain_ref(bill_number, "bill_number")
        current = await self._bill_references(list(dict.fromkeys(expense_ids)))
        clashes = [
            f"expense {expense_id} is on bill {ref['service_model_ref']}"
            for expense_id, ref in current.items()
            if ref is not None and str(ref["service_model_ref"]) != number
        ]
        if clashes:
            raise Conflict(f"cannot mark on bill {number}: {'; '.join(clashes[:10])}", system=SYSTEM)
        for expense_id, ref in current.items():
            # A paid bill stays paid: a late `posted` mark (a retried earlier step) must not undo it.
            if ref is not None and (
                ref.get("external_status") == status or ref.get("external_status") == REIMBURSED
            ):
                continue
            await self._client.put(
                f"/expenses/{expense_id}",
                {
                    "expense": {
                        "external_reference": {
                            "service_name": SERVICE_NAME,
                            "service_model": ERP_BILL_MODEL,
                            "service_model_ref": number,
                            "external_status": status,
                            "external_message": f"On ERP bill {number} ({status}); recorded by ps-sync.",
                            "status": "successful",
                        }
                    }
                },
            )

    async def _bill_references(self, expense_ids: list[str]) -> dict[str, Record | None]:
        found: dict[str, Record | None] = {}
        for chunk in chunks(expense_ids, ID_CHUNK):
            envelope = await self._client.get(
                "/expenses",
                {
                    "only": ",".join(chunk),
                    "from_archived_workspaces": "true",
                    "include": "external_references",
                    "per_page": ID_CHUNK,
                },
            )
            for record in envelope.records():
                references = envelope.related(record, "external_reference_ids", "external_references")
                found[str(record["id"])] = _bill_reference(references)
        missing = sorted(set(expense_ids) - set(found))
        if missing:
            raise NotFound(f"Kantata has no expenses {', '.join(missing[:20])}", system=SYSTEM)
        return found
