"""Salesforce records <-> canonical models: field names, picklist labels, money."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from canonical import (
    Account,
    Address,
    BillingModel,
    Contact,
    CrmTask,
    CrmWriteBack,
    InvoiceState,
    Money,
    Opportunity,
    ReceivablesSummary,
)
from canonical.reference import OpportunityFix

ACCOUNT_FIELDS = (
    "Id",
    "Name",
    "BillingStreet",
    "BillingCity",
    "BillingPostalCode",
    "BillingState",
    "BillingCountryCode",
    "Tax_Number__c",
    "OwnerId",
    "ERP_Customer_Id__c",
)
CONTACT_FIELDS = ("Id", "FirstName", "LastName", "Email")
OPPORTUNITY_FIELDS = (
    "Id",
    "Name",
    "StageName",
    "IsWon",
    "CloseDate",
    "Amount",
    "Not_To_Exceed__c",
    "CurrencyIsoCode",
    "Legal_Entity__c",
    "Billing_Model__c",
    "Service_Code__c",
    "Tax_Code__c",
    "Project_Manager__c",
    "PSA_Project_Id__c",
    "ERP_Customer_Id__c",
    "AccountId",
    "Bill_To_Contact__c",
    "SystemModstamp",
    "Amendment_Effective_Date__c",
)
# One SOQL query reads the opportunity with its account and bill-to contact (parent relationships).
OPPORTUNITY_SELECT = ", ".join(
    [
        *OPPORTUNITY_FIELDS,
        *(f"Account.{name}" for name in ACCOUNT_FIELDS),
        *(f"Bill_To_Contact__r.{name}" for name in CONTACT_FIELDS),
    ]
)

BILLING_MODEL_LABELS = {
    "Time and Materials": BillingModel.TIME_AND_MATERIALS,
    "Fixed Fee": BillingModel.FIXED_FEE,
    "Retainer": BillingModel.RETAINER,
}
INVOICE_STATUS_LABELS = {
    InvoiceState.DRAFT: "Draft",
    InvoiceState.AWAITING_PAYMENT: "Awaiting Payment",
    InvoiceState.PAID: "Paid",
    InvoiceState.VOIDED: "Voided",
    InvoiceState.WRITTEN_OFF: "Written Off",
}
OPEN_INVOICE_STATUS = INVOICE_STATUS_LABELS[InvoiceState.AWAITING_PAYMENT]


class MappingError(ValueError):
    """A Salesforce value ps-sync cannot represent; names the field and the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def billing_model(label: str | None) -> BillingModel | None:
    if label is None:
        return None
    try:
        return BILLING_MODEL_LABELS[label]
    except KeyError:
        raise MappingError(
            "Billing_Model__c",
            f"unknown billing model {label!r}; ps-sync knows {sorted(BILLING_MODEL_LABELS)}",
        ) from None


def address(record: Mapping[str, Any]) -> Address | None:
    street, city, country = (
        _text(record, name) for name in ("BillingStreet", "BillingCity", "BillingCountryCode")
    )
    # An incomplete address is reported missing as a whole; readiness checks name the empty fields.
    if street is None or city is None or country is None:
        return None
    return Address(
        street=street,
        city=city,
        postal_code=_text(record, "BillingPostalCode"),
        region=_text(record, "BillingState"),
        country=country,
    )


def account(record: Mapping[str, Any]) -> Account:
    return Account(
        id=str(record["Id"]),
        name=str(record["Name"]),
        billing_address=address(record),
        tax_number=_text(record, "Tax_Number__c"),
        owner_id=_text(record, "OwnerId"),
        erp_customer_id=_text(record, "ERP_Customer_Id__c"),
    )


def contact(record: Mapping[str, Any]) -> Contact:
    return Contact(
        id=str(record["Id"]),
        first_name=_text(record, "FirstName"),
        last_name=str(record["LastName"]),
        email=_text(record, "Email"),
    )


def _money(record: Mapping[str, Any], name: str, currency: str | None) -> Money | None:
    """A currency field in the record's CurrencyIsoCode (Salesforce keeps no currency per field)."""
    amount = record.get(name)
    if amount is None or currency is None:
        return None
    if isinstance(amount, float):
        raise MappingError(name, "arrived as a float; the client parses JSON numbers as Decimal")
    return Money(amount=Decimal(str(amount)), currency=currency)


def opportunity(record: Mapping[str, Any]) -> Opportunity:
    """An opportunity row from OPPORTUNITY_SELECT (with its Account and Bill_To_Contact__r parents)."""
    parent = record.get("Account")
    if not isinstance(parent, Mapping):
        raise MappingError("AccountId", f"opportunity {record.get('Id')} has no account")
    bill_to = record.get("Bill_To_Contact__r")
    currency = _text(record, "CurrencyIsoCode")
    close_date = _text(record, "CloseDate")
    return Opportunity(
        id=str(record["Id"]),
        name=str(record["Name"]),
        stage=str(record["StageName"]),
        is_won=bool(record.get("IsWon")),
        close_date=date.fromisoformat(close_date) if close_date else None,
        amount=_money(record, "Amount", currency),
        not_to_exceed=_money(record, "Not_To_Exceed__c", currency),
        account=account(parent),
        bill_to_contact=contact(bill_to) if isinstance(bill_to, Mapping) else None,
        legal_entity=_text(record, "Legal_Entity__c"),
        currency=currency,
        tax_code=_text(record, "Tax_Code__c"),
        billing_model=billing_model(_text(record, "Billing_Model__c")),
        service_code=_text(record, "Service_Code__c"),
        project_manager=_text(record, "Project_Manager__c"),
        psa_project_id=_text(record, "PSA_Project_Id__c"),
        erp_customer_id=_text(record, "ERP_Customer_Id__c") or _text(parent, "ERP_Customer_Id__c"),
        modified_at=_datetime(record, "SystemModstamp"),
        amendment_effective_date=_date(record, "Amendment_Effective_Date__c"),
    )


def _date(record: Mapping[str, Any], name: str) -> date | None:
    raw = _text(record, name)
    return date.fromisoformat(raw) if raw else None


def _datetime(record: Mapping[str, Any], name: str) -> datetime | None:
    """A Salesforce dateTime ("2026-12-07T06:30:00.000+0000"), always with its offset."""
    raw = _text(record, name)
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError as error:
        raise MappingError(name, f"{raw!r} is not a Salesforce dateTime") from error


def write_back_fields(write_back: CrmWriteBack) -> tuple[dict[str, Any], dict[str, Any]]:
    """(opportunity fields, account fields): only what is known, so a partial write-back blanks nothing."""
    opportunity_fields: dict[str, Any] = {}
    account_fields: dict[str, Any] = {}
    if write_back.psa_project_id is not None:
        opportunity_fields["PSA_Project_Id__c"] = write_back.psa_project_id
    if write_back.erp is not None:
        opportunity_fields["ERP_System__c"] = write_back.erp
        account_fields["ERP_System__c"] = write_back.erp
    if write_back.erp_customer_id is not None:
        opportunity_fields["ERP_Customer_Id__c"] = write_back.erp_customer_id
        account_fields["ERP_Customer_Id__c"] = write_back.erp_customer_id
    if write_back.legal_entity is not None:
        opportunity_fields["Legal_Entity__c"] = write_back.legal_entity
    if write_back.sync_status is not None:
        opportunity_fields["Sync_Status__c"] = write_back.sync_status
    return opportunity_fields, account_fields


def invoice_fields(summary: ReceivablesSummary) -> dict[str, Any]:
    return {
        "Invoice_Number__c": summary.invoice_number,
        "Invoice_Status__c": INVOICE_STATUS_LABELS[summary.state],
        "Invoice_Due_Date__c": summary.due_date.isoformat() if summary.due_date else None,
        "Amount_Invoiced__c": summary.total.amount,
        "Amount_Paid__c": summary.amount_paid.amount,
        "Amount_Due__c": summary.amount_due.amount,
    }


def receivables_totals(rows: Sequence[Mapping[str, Any]], currency: str, today: date) -> dict[str, Any]:
    """The account's open and overdue receivables from its opportunities' latest invoices in one currency."""
    open_total = Decimal(0)
    overdue_total = Decimal(0)
    for row in rows:
        if row.get("CurrencyIsoCode") != currency or row.get("Invoice_Status__c") != OPEN_INVOICE_STATUS:
            continue
        due = Decimal(str(row.get("Amount_Due__c") or 0))
        open_total += due
        due_date = _text(row, "Invoice_Due_Date__c")
        if due_date is not None and date.fromisoformat(due_date) < today:
            overdue_total += due
    return {
        "Receivables_Open__c": open_total,
        "Receivables_Overdue__c": overdue_total,
        "Receivables_Currency__c": currency,
    }


def task_fields(task: CrmTask) -> dict[str, Any]:
    # Status is left out on purpose: a retried create must not reopen a task someone has completed.
    fields: dict[str, Any] = {
        "Subject": task.subject,
        "Description": task.description,
        "WhatId": task.related_to_id,
        "ActivityDate": task.due_date.isoformat(),
    }
    if task.owner_id is not None:
        fields["OwnerId"] = task.owner_id
    return fields


# Canonical opportunity field -> Salesforce field, for corrections a person makes through ps-sync.
OPPORTUNITY_FIX_FIELDS = {
    "legal_entity": "Legal_Entity__c",
    "currency": "CurrencyIsoCode",
    "tax_code": "Tax_Code__c",
    "billing_model": "Billing_Model__c",
    "service_code": "Service_Code__c",
    "project_manager": "Project_Manager__c",
}


def opportunity_fix_fields(fix: OpportunityFix) -> dict[str, Any]:
    """The Salesforce fields a correction writes; the billing model goes back as its picklist label."""
    labels = {model: label for label, model in BILLING_MODEL_LABELS.items()}
    fields: dict[str, Any] = {
        OPPORTUNITY_FIX_FIELDS[name]: value for name, value in fix.given().items() if name != "billing_model"
    }
    if fix.billing_model is not None:
        fields[OPPORTUNITY_FIX_FIELDS["billing_model"]] = labels[fix.billing_model]
    return fields
