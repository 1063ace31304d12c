"""The org's metadata: sObjects, their fields, types, picklists and external ids.

Standard fields are a subset of Salesforce's; the custom fields (`__c`) are ps-sync's integration fields,
named as other parts of ps-sync expect them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OPPORTUNITY_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
CLOSED_WON = "Closed Won"
CLOSED_STAGES = ("Closed Won", "Closed Lost")
FORECAST_CATEGORIES = ("Omitted", "Pipeline", "Best Case", "Commit", "Closed")
# What a new org's stage picklist sets when an opportunity enters a stage: (probability %, forecast category).
STAGE_DEFAULTS = {
    "Prospecting": (10, "Pipeline"),
    "Qualification": (10, "Pipeline"),
    "Needs Analysis": (20, "Pipeline"),
    "Value Proposition": (50, "Pipeline"),
    "Id. Decision Makers": (60, "Pipeline"),
    "Perception Analysis": (70, "Pipeline"),
    "Proposal/Price Quote": (75, "Pipeline"),
    "Negotiation/Review": (90, "Pipeline"),
    "Closed Won": (100, "Closed"),
    "Closed Lost": (0, "Omitted"),
}
OPPORTUNITY_TYPES = (
    "Existing Customer - Upgrade",
    "Existing Customer - Replacement",
    "Existing Customer - Downgrade",
    "New Customer",
)
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
BILLING_MODELS = ("Time and Materials", "Fixed Fee", "Retainer")
INVOICE_STATUSES = ("Draft", "Awaiting Payment", "Paid", "Voided", "Written Off")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_PRIORITIES = ("High", "Normal", "Low")
ISO_CURRENCIES = ("GBP", "EUR", "USD", "CHF", "SEK", "DKK", "NOK", "PLN")

SYSTEM_FIELDS = ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: str  # id string textarea email picklist reference date datetime currency percent int boolean
    length: int = 0
    precision: int = 18
    scale: int = 2
    values: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    createable: bool = True
    updateable: bool = True
    required: bool = False
    default: str | bool | None = None
    external_id: bool = False
    unique: bool = False


@dataclass(frozen=True)
class SObjectType:
    name: str
    label: str
    fields: dict[str, Field]
    _by_lower: dict[str, Field] = field(default_factory=dict, repr=False)
    _by_relationship: dict[str, Field] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for item in self.fields.values():
            self._by_lower[item.name.lower()] = item
            if item.relationship_name:
                self._by_relationship[item.relationship_name.lower()] = item

    def field(self, name: str) -> Field | None:
        """Field names are case-insensitive in Salesforce's APIs."""
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> Field | None:
        return self._by_relationship.get(name.lower())


def _text(name: str, label: str, length: int, **kw: Any) -> Field:
    return Field(name=name, label=label, type="string", length=length, **kw)


def _currency(name: str, label: str) -> Field:
    return Field(name=name, label=label, type="currency", precision=18, scale=2)


def _read_only(name: str, label: str, kind: str, **kw: Any) -> Field:
    """A field Salesforce computes (formula, roll-up, system): queryable, never written by the API."""
    return Field(name=name, label=label, type=kind, createable=False, updateable=False, **kw)


def _ref(name: str, label: str, *targets: str, relationship: str, **kw: Any) -> Field:
    return Field(
        name=name,
        label=label,
        type="reference",
        reference_to=targets,
        relationship_name=relationship,
        **kw,
    )


def _picklist(name: str, label: str, values: tuple[str, ...], *, restricted: bool = True, **kw: Any) -> Field:
    return Field(
        name=name,
        label=label,
        type="picklist",
        values=values,
        restricted=restricted,
        length=255,
        **kw,
    )


def _system_fields() -> list[Field]:
    return [
        Field(name="Id", label="Record ID", type="id", length=18, createable=False, updateable=False),
        Field(name="CreatedDate", label="Created Date", type="datetime", createable=False, updateable=False),
        _ref(
            "CreatedById",
            "Created By ID",
            "User",
            relationship="CreatedBy",
            createable=False,
            updateable=False,
        ),
        Field(
            name="LastModifiedDate",
            label="Last Modified Date",
            type="datetime",
            createable=False,
            updateable=False,
        ),
        _ref(
            "LastModifiedById",
            "Last Modified By ID",
            "User",
            relationship="LastModifiedBy",
            createable=False,
            updateable=False,
        ),
        Field(
            name="SystemModstamp",
            label="System Modstamp",
            type="datetime",
            createable=False,
            updateable=False,
        ),
    ]


def _owner() -> Field:
    return _ref("OwnerId", "Owner ID", "User", relationship="Owner")


def _currency_code(default: str) -> Field:
    return _picklist("CurrencyIsoCode", "Currency ISO Code", ISO_CURRENCIES, default=default)


def _type(name: str, label: str, fields: list[Field]) -> SObjectType:
    return SObjectType(name=name, label=label, fields={item.name: item for item in fields})


def build_schema(default_currency: str = "GBP") -> dict[str, SObjectType]:
    account = _type(
        "Account",
        "Account",
        [
            *_system_fields(),
            _text("Name", "Account Name", 255, required=True),
            Field(name="BillingStreet", label="Billing Street", type="textarea", length=255),
            _text("BillingCity", "Billing City", 40),
            _text("BillingPostalCode", "Billing Zip/Postal Code", 20),
            _text("BillingState", "Billing State/Province", 80),
            # With State and Country picklists on, the code is a restricted picklist of ISO 3166 codes;
            # the sandbox checks the shape (two capital letters) rather than carrying the full list.
            _picklist("BillingCountryCode", "Billing Country Code", ()),
            _text("Tax_Number__c", "Tax Number", 40),
            _owner(),
            _currency_code(default_currency),
            _text("PSSync_Account_Key__c", "PS-Sync Account Key", 255, external_id=True, unique=True),
            _text("ERP_Customer_Id__c", "ERP Customer Id", 64),
            _text("ERP_System__c", "ERP System", 40),
            _currency("Receivables_Open__c", "Receivables Open"),
            _currency("Receivables_Overdue__c", "Receivables Overdue"),
            _text("Receivables_Currency__c", "Receivables Currency", 3),
        ],
    )
    contact = _type(
        "Contact",
        "Contact",
        [
            *_system_fields(),
            _text("FirstName", "First Name", 40),
            _text("LastName", "Last Name", 80, required=True),
            Field(
                name="Name", label="Full Name", type="string", length=121, createable=False, updateable=False
            ),
            Field(name="Email", label="Email", type="email", length=80),
            _ref("AccountId", "Account ID", "Account", relationship="Account"),
            _owner(),
        ],
    )
    opportunity = _type(
        "Opportunity",
        "Opportunity",
        [
            *_system_fields(),
            _text("Name", "Name", 120, required=True),
            _ref("AccountId", "Account ID", "Account", relationship="Account"),
            _picklist("StageName", "Stage", OPPORTUNITY_STAGES, required=True),
            _read_only("IsWon", "Won", "boolean"),
            _read_only("IsClosed", "Closed", "boolean"),
            _read_only("IsDeleted", "Deleted", "boolean"),
            Field(name="CloseDate", label="Close Date", type="date", required=True),
            _currency("Amount", "Amount"),
            _currency_code(default_currency),
            _owner(),
            Field(name="Description", label="Description", type="textarea", length=32000),
            _picklist("Type", "Opportunity Type", OPPORTUNITY_TYPES, restricted=False),
            _picklist("LeadSource", "Lead Source", LEAD_SOURCES, restricted=False),
            _text("NextStep", "Next Step", 255),
            Field(name="IsPrivate", label="Private", type="boolean", default=False),
            # Probability and forecast category follow the stage unless a write sets them with it.
            Field(name="Probability", label="Probability (%)", type="percent", precision=3, scale=0),
            _picklist("ForecastCategoryName", "Forecast Category", FORECAST_CATEGORIES),
            _read_only("ExpectedRevenue", "Expected Amount", "currency"),
            # The standard fiscal year, January to December.
            _read_only("Fiscal", "Fiscal Period", "string", length=6),
            _read_only("FiscalQuarter", "Fiscal Quarter", "int", precision=8, scale=0),
            _read_only("FiscalYear", "Fiscal Year", "int", precision=8, scale=0),
            _read_only("LastActivityDate", "Last Activity", "date"),
            _read_only("HasOpenActivity", "Has Open Activity", "boolean"),
            # The sandbox has no products, so an opportunity never has line items.
            _read_only("HasOpportunityLineItem", "Has Line Item", "boolean"),
            _picklist("Legal_Entity__c", "Legal Entity", ("UK", "EU"), restricted=False),
            _picklist("Billing_Model__c", "Billing Model", BILLING_MODELS),
            _text("Service_Code__c", "Service Code", 40),
            _text("Tax_Code__c", "Tax Code", 40),
            _ref("Bill_To_Contact__c", "Bill To Contact", "Contact", relationship="Bill_To_Contact__r"),
            _text("Project_Manager__c", "Project Manager", 80),
            _currency("Not_To_Exceed__c", "Not To Exceed"),
            # A change order to a won deal takes effect from this day (blank: the day it is made).
            Field(name="Amendment_Effective_Date__c", label="Amendment Effective Date", type="date"),
            _text("PSSync_Key__c", "PS-Sync Key", 255, external_id=True),
            _text("PSA_Project_Id__c", "PSA Project Id", 64),
            _text("ERP_Customer_Id__c", "ERP Customer Id", 64),
            _text("ERP_System__c", "ERP System", 40),
            _text("Sync_Status__c", "Sync Status", 255),
            _text("Invoice_Number__c", "Invoice Number", 64),
            _picklist("Invoice_Status__c", "Invoice Status", INVOICE_STATUSES),
            Field(name="Invoice_Due_Date__c", label="Invoice Due Date", type="date"),
            _currency("Amount_Invoiced__c", "Amount Invoiced"),
            _currency("Amount_Paid__c", "Amount Paid"),
            _currency("Amount_Due__c", "Amount Due"),
        ],
    )
    task = _type(
        "Task",
        "Task",
        [
            *_system_fields(),
            _text("Subject", "Subject", 255),
            Field(name="Description", label="Description", type="textarea", length=32000),
            _ref("WhatId", "Related To ID", "Account", "Opportunity", relationship="What"),
            _ref("WhoId", "Name ID", "Contact", relationship="Who"),
            _owner(),
            Field(name="ActivityDate", label="Due Date Only", type="date"),
            _picklist("Status", "Status", TASK_STATUSES, required=True, default="Not Started"),
            _picklist("Priority", "Priority", TASK_PRIORITIES, required=True, default="Normal"),
            _text("PSSync_Task_Key__c", "PS-Sync Task Key", 255, external_id=True, unique=True),
        ],
    )
    user = _type(
        "User",
        "User",
        [
            *_system_fields(),
            _text("Username", "Username", 80, required=True),
            _text("Name", "Full Name", 121, createable=False, updateable=False),
            _text("LastName", "Last Name", 80, required=True),
            _text("FirstName", "First Name", 40),
            Field(name="Email", label="Email", type="email", length=128, required=True),
            Field(name="IsActive", label="Active", type="boolean", default=True),
        ],
    )
    return {item.name: item for item in (account, contact, opportunity, task, user)}
