"""What ps-sync keeps in a Kantata account beyond Kantata's own fields.

An account administrator creates these custom fields once (the sandbox account comes with them); the
connector refuses to write projects into an account that lacks them, naming the missing ones.
"""

from __future__ import annotations

# External references: Kantata's documented place for "the corresponding ID of the third party object".
SERVICE_NAME = "ps-sync"
OPPORTUNITY_MODEL = "Opportunity"
ERP_INVOICE_MODEL = "ErpInvoice"
ERP_BILL_MODEL = "ErpBill"

CLIENT_FIELD = "Client"
LEGAL_ENTITY_FIELD = "Legal Entity"
BILLING_MODEL_FIELD = "Billing Model"
SERVICE_CODE_FIELD = "Service Code"
ERP_INVOICES_FIELD = "ERP Invoices"
ERP_AMOUNT_DUE_FIELD = "ERP Amount Due"
ERP_AMOUNT_PAID_FIELD = "ERP Amount Paid"

# (name, Kantata value type) of the Workspace custom fields ps-sync reads and writes.
WORKSPACE_CUSTOM_FIELDS: tuple[tuple[str, str], ...] = (
    (CLIENT_FIELD, "string"),
    (LEGAL_ENTITY_FIELD, "string"),
    (BILLING_MODEL_FIELD, "string"),
    (SERVICE_CODE_FIELD, "string"),
    (ERP_INVOICES_FIELD, "string"),
    (ERP_AMOUNT_DUE_FIELD, "currency"),
    (ERP_AMOUNT_PAID_FIELD, "currency"),
)

ACCOUNT_EXPENSE_CATEGORIES: tuple[str, ...] = ("Travel", "Lodging", "Meals", "Software", "Other")
