"""Reference data of a UK organisation as Xero's demo company sets it up: accounts, VAT rates, currencies."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

BASE_CURRENCY = "GBP"

# code, name, type, class, system account, tax type
_ACCOUNTS: list[tuple[str, str, str, str, str, str]] = [
    ("090", "Business Bank Account", "BANK", "ASSET", "", "NONE"),
    ("091", "Business Savings Account", "BANK", "ASSET", "", "NONE"),
    ("200", "Sales", "REVENUE", "REVENUE", "", "OUTPUT2"),
    ("260", "Other Revenue", "REVENUE", "REVENUE", "", "OUTPUT2"),
    ("270", "Interest Income", "REVENUE", "REVENUE", "", "EXEMPTOUTPUT"),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "EXPENSE", "", "INPUT2"),
    ("320", "Direct Labour", "DIRECTCOSTS", "EXPENSE", "", "NONE"),
    ("404", "Bank Fees", "OVERHEADS", "EXPENSE", "", "EXEMPTINPUT"),
    ("429", "General Expenses", "OVERHEADS", "EXPENSE", "", "INPUT2"),
    ("493", "Travel - National", "OVERHEADS", "EXPENSE", "", "INPUT2"),
    ("610", "Accounts Receivable", "CURRENT", "ASSET", "DEBTORS", "NONE"),
    ("615", "Accrued Revenue", "CURRENT", "ASSET", "", "NONE"),
    ("630", "Work in Progress", "CURRENT", "ASSET", "", "NONE"),
    ("800", "Accounts Payable", "CURRLIAB", "LIABILITY", "CREDITORS", "NONE"),
    ("820", "VAT", "CURRLIAB", "LIABILITY", "GST", "NONE"),
    ("835", "Deferred Revenue", "CURRLIAB", "LIABILITY", "", "NONE"),
    ("840", "Payroll Cost Clearing", "CURRLIAB", "LIABILITY", "", "NONE"),
    ("960", "Retained Earnings", "EQUITY", "EQUITY", "RETAINEDEARNINGS", "NONE"),
]

# tax type, name, rate %, report tax type, usable on sales (revenue) lines
_TAX_RATES: list[tuple[str, str, str, str, bool]] = [
    ("OUTPUT2", "20% (VAT on Income)", "20", "OUTPUT", True),
    ("RROUTPUT", "5% (VAT on Income)", "5", "OUTPUT", True),
    ("ZERORATEDOUTPUT", "Zero Rated Income", "0", "OUTPUT", True),
    ("EXEMPTOUTPUT", "Exempt Income", "0", "EXEMPTOUTPUT", True),
    ("NONE", "No VAT", "0", "NONE", True),
    ("INPUT2", "20% (VAT on Expenses)", "20", "INPUT", False),
    ("ZERORATEDINPUT", "Zero Rated Expenses", "0", "INPUT", False),
    ("EXEMPTINPUT", "Exempt Expenses", "0", "EXEMPTEXPENSES", False),
]

_CURRENCIES = [("GBP", "British Pound"), ("EUR", "Euro"), ("USD", "United States Dollar")]

# Units of the currency per 1 GBP, for CurrencyRate on foreign-currency documents.
CURRENCY_RATES = {"GBP": Decimal("1.000000"), "EUR": Decimal("1.170000"), "USD": Decimal("1.270000")}

_ITEMS = [
    ("CONSULT", "Consulting services", "Professional services billed by the hour", "200", "OUTPUT2"),
    ("EXPENSES", "Expenses re-billed", "Project expenses re-billed at cost", "260", "OUTPUT2"),
]


def accounts() -> list[dict[str, Any]]:
    return [
        {
            "AccountID": f"00000000-0000-4000-8000-000000000{index:03d}",
            "Code": code,
            "Name": name,
            "Type": account_type,
            "Class": account_class,
            "SystemAccount": system,
            "TaxType": tax_type,
            "Status": "ACTIVE",
            "EnablePaymentsToAccount": account_type == "BANK",
            "ShowInExpenseClaims": False,
            "BankAccountType": "BANK" if account_type == "BANK" else "",
            "BankAccountNumber": "20202012345678" if account_type == "BANK" else None,
            "CurrencyCode": BASE_CURRENCY if account_type == "BANK" else None,
            "ReportingCode": "",
            "HasAttachments": False,
        }
        for index, (code, name, account_type, account_class, system, tax_type) in enumerate(
            _ACCOUNTS, start=1
        )
    ]


def tax_rates() -> list[dict[str, Any]]:
    # Xero's "No VAT" rate applies to every kind of transaction (a bill as much as a sales invoice).
    return [
        {
            "Name": name,
            "TaxType": tax_type,
            "ReportTaxType": report_type,
            "Status": "ACTIVE",
            "CanApplyToAssets": not sales or tax_type == "NONE",
            "CanApplyToEquity": not sales or tax_type == "NONE",
            "CanApplyToExpenses": not sales or tax_type == "NONE",
            "CanApplyToLiabilities": not sales or tax_type == "NONE",
            "CanApplyToRevenue": sales,
            "DisplayTaxRate": rate,
            "EffectiveRate": rate,
            "TaxComponents": [{"Name": "VAT", "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}],
        }
        for tax_type, name, rate, report_type, sales in _TAX_RATES
    ]


def currencies() -> list[dict[str, Any]]:
    return [{"Code": code, "Description": description} for code, description in _CURRENCIES]


def items() -> list[dict[str, Any]]:
    return [
        {
            "ItemID": f"00000000-0000-4000-9000-000000000{index:03d}",
            "Code": code,
            "Name": name,
            "Description": description,
            "IsSold": True,
            "IsPurchased": False,
            "IsTrackedAsInventory": False,
            "SalesDetails": {"AccountCode": account, "TaxType": tax_type},
        }
        for index, (code, name, description, account, tax_type) in enumerate(_ITEMS, start=1)
    ]


def organisations() -> list[dict[str, Any]]:
    """GET /Organisation: the one organisation behind the tenant (a UK company keeping its books in GBP)."""
    return [
        {
            "OrganisationID": "b1f6a4c2-0000-4000-8000-00000000a001",
            "Name": "Northwind Consulting Ltd",
            "LegalName": "Northwind Consulting Ltd",
            "PaysTax": True,
            "Version": "UK",
            "OrganisationType": "COMPANY",
            "BaseCurrency": BASE_CURRENCY,
            "CountryCode": "GB",
            "IsDemoCompany": False,
            "OrganisationStatus": "ACTIVE",
            "FinancialYearEndDay": 31,
            "FinancialYearEndMonth": 3,
            "SalesTaxBasis": "ACCRUALS",
            "SalesTaxPeriod": "QUARTERLY1",
            "DefaultSalesTax": "Tax Exclusive",
            "DefaultPurchasesTax": "Tax Exclusive",
            "OrganisationEntityType": "COMPANY",
            "Timezone": "GMTSTANDARDTIME",
            "ShortCode": "!nw01",
            "Edition": "BUSINESS",
            "Class": "STANDARD",
        }
    ]
