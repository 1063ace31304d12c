"""Payables in Kantata: approved expenses owed to the person who paid them or to their vendor, approved time
of subcontractors owed to their firm at their cost rate, and the ERP bill each was put on.

Kantata keeps no payables state of its own, so the bill is an external reference on the expense or time
entry (service `ps-sync`, model `ErpBill`, the bill number as its ref): `external_status` says `posted` until
the bill is paid, then `reimbursed`. Writing the same reference again changes nothing, so a retried mark is
harmless. A subcontractor is a member whose User custom field `Supplier` names their firm; a time entry's
`cost_rate_in_cents` is the member's cost rate when the time was logged (a later cost rate leaves it alone).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date

from canonical import Period
from canonical.payables import PayableExpense, SubcontractedTime
from connectors.errors import Conflict, NotFound
from connectors.kantata import mapping
from connectors.kantata.access import ID_CHUNK, KantataAccess, chunks, plain_ref
from connectors.kantata.client import SYSTEM, Record
from connectors.kantata.fields import ERP_BILL_MODEL, SERVICE_NAME, SUPPLIER_FIELD
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


def _subcontracted(
    record: Record, user: Record | None, supplier: str, role: str | None, bill: Record | None
) -> SubcontractedTime:
    cost = record.get("cost_rate_in_cents")
    currency = str(record["currency"])
    return SubcontractedTime(
        id=str(record["id"]),
        project_id=str(record["workspace_id"]),
        person_id=str(record["user_id"]),
        person_name=str((user or {}).get("full_name") or f"Kantata user {record['user_id']}"),
        supplier=supplier,
        role=role,
        date=date.fromisoformat(record["date_performed"]),
        minutes=int(record["time_in_minutes"]),
        currency=currency,
        cost_rate=None
        if cost is None
        else mapping.money(int(cost), currency, record.get("currency_base_unit")),
        bill_number=str(bill["service_model_ref"]) if bill else None,
        paid=bool(bill and bill.get("external_status") == REIMBURSED),
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

    async def subcontractors(self) -> dict[str, str]:
        """User id -> the firm the member works for, from the `Supplier` User custom field; an account
        without the field has no subcontractors."""
        fields, _ = await self._client.all_records("/custom_fields", {"subject_types": "User"})
        field = next((f for f in fields if f.get("name") == SUPPLIER_FIELD), None)
        if field is None:
            return {}
        values, _ = await self._client.all_records(
            "/custom_field_values", {"subject_type": "User", "with_custom_field_id": str(field["id"])}
        )
        firms = {str(v["subject_id"]): " ".join(str(v.get("value") or "").split()) for v in values}
        return {user_id: firm for user_id, firm in firms.items() if firm}

    async def subcontracted_time(
        self, period: Period, *, cursor: str | None = None
    ) -> AsyncIterator[Page[SubcontractedTime]]:
        firms = await self.subcontractors()
        if not firms:
            return
        params = {
            "date_performed_between": f"{period.first_day.isoformat()}:{period.last_day.isoformat()}",
            "approved": "true",
            "with_user_ids": ",".join(sorted(firms, key=int)),
            "from_archived_workspaces": "true",
            "include": "user,role,external_references",
            "order": "created_at:asc",
        }
        async for envelope, number in self._client.pages("/time_entries", params, start=cursor):
            items = []
            for record in envelope.records():
                firm = firms.get(str(record["user_id"]))
                if firm is None:
                    continue
                users = envelope.related(record, "user_id", "users")
                roles = envelope.related(record, "role_id", "roles")
                references = envelope.related(record, "external_reference_ids", "external_references")
                items.append(
                    _subcontracted(
                        record,
                        users[0] if users else None,
                        firm,
                        str(roles[0]["name"]) if roles else None,
                        _bill_reference(references),
                    )
                )
            following = envelope.next_page
            yield Page(
                items=items, cursor=str(number), next_cursor=None if following is None else str(following)
            )

    async def mark_on_bill(self, *, expense_ids: Sequence[str], bill_number: str) -> None:
        await self._mark("expenses", expense_ids, bill_number, POSTED)

    async def mark_reimbursed(self, *, expense_ids: Sequence[str], bill_number: str) -> None:
        await self._mark("expenses", expense_ids, bill_number, REIMBURSED)

    async def mark_time_on_bill(self, *, time_entry_ids: Sequence[str], bill_number: str) -> None:
        await self._mark("time_entries", time_entry_ids, bill_number, POSTED)

    async def mark_time_paid(self, *, time_entry_ids: Sequence[str], bill_number: str) -> None:
        await self._mark("time_entries", time_entry_ids, bill_number, REIMBURSED)

    async def _mark(self, kind: str, ids: Sequence[str], bill_number: str, status: str) -> None:
        number = plain_ref(bill_number, "bill_number")
        what = "expense" if kind == "expenses" else "time entry"
        current = await self._bill_references(kind, list(dict.fromkeys(ids)))
        clashes = [
            f"{what} {item_id} is on bill {ref['service_model_ref']}"
            for item_id, ref in current.items()
            if ref is not None and str(ref["service_model_ref"]) != number
        ]
        if clashes:
            raise Conflict(f"cannot mark on bill {number}: {'; '.join(clashes[:10])}", system=SYSTEM)
        for item_id, ref in current.items():
            # A paid bill stays paid: a late `posted` mark (a retried earlier step) must not undo it.
            if ref is not None and (
                ref.get("external_status") == status or ref.get("external_status") == REIMBURSED
            ):
                continue
            await self._client.put(
                f"/{kind}/{item_id}",
                {
                    ("expense" if kind == "expenses" else "time_entry"): {
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

    async def _bill_references(self, kind: str, ids: list[str]) -> dict[str, Record | None]:
        found: dict[str, Record | None] = {}
        for chunk in chunks(ids, ID_CHUNK):
            envelope = await self._client.get(
                f"/{kind}",
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
        missing = sorted(set(ids) - set(found))
        if missing:
            what = "expenses" if kind == "expenses" else "time entries"
            raise NotFound(f"Kantata has no {what} {', '.join(missing[:20])}", system=SYSTEM)
        return found
