"""What ps-sync keeps in a Kantata account beyond Kantata's own fields.

An account administrator creates these custom fields once (the sandbox account comes with them); the
connector refuses to write projects into an account that lacks them, naming the missing ones. `Practice`
is optional: a firm that files projects by practice adds it, and an account without it has no practices.
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
# The project's practice (service line, department): read when present, never required.
PRACTICE_FIELD = "Practice"

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

# Month-end's figures to date on the project (optional: an account without them is not written to).
RECOGNISED_REVENUE_FIELD = "Recognised Revenue"
LABOUR_COST_FIELD = "Labour Cost"
WIP_FIELD = "WIP"
MARGIN_FIELD = "Margin"
MONTH_END_FIELDS: tuple[tuple[str, str], ...] = (
    (RECOGNISED_REVENUE_FIELD, "currency"),
    (LABOUR_COST_FIELD, "currency"),
    (WIP_FIELD, "currency"),
    (MARGIN_FIELD, "currency"),
)

# A User custom field naming the firm a subcontractor works for; optional: an account without subcontractors
# need not have it, and its time is then billed to nobody.
SUPPLIER_FIELD = "Supplier"
USER_CUSTOM_FIELDS: tuple[tuple[str, str], ...] = ((SUPPLIER_FIELD, "string"),)

ACCOUNT_EXPENSE_CATEGORIES: tuple[str, ...] = ("Travel", "Lodging", "Meals", "Software", "Other")
