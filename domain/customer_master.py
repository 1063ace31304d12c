"""The customer master rule: one ERP customer per CRM account, and never a second one by accident.

A customer is found by the crosswalk, then by the CRM account id the ERP record carries, and only then
created. Before creating, an ERP customer with the same name and the same tax number but another (or no)
CRM id means the company is already in the books under another record: that is a person's decision
(finance), never a second customer.
"""

from __future__ import annotations

from collections.abc import Sequence

from canonical import Account, ErpCustomer, name_key, tax_number_key


def duplicates(account: Account, found: Sequence[ErpCustomer]) -> tuple[ErpCustomer, ...]:
    """ERP customers that look like `account` (same name and tax number) but are not linked to it.

    Without a tax number on the account the rule does not apply: a name alone is not proof of the same
    company (and ERPs that keep names unique refuse the create themselves, with a message that says so).
    """
    tax = tax_number_key(account.tax_number)
    if tax is None:
        return ()
    name = name_key(account.name)
    return tuple(
        customer
        for customer in found
        if name_key(customer.name) == name
        and tax_number_key(customer.tax_number) == tax
        and customer.external_ref != account.id
    )


def describe(account: Account, candidates: Sequence[ErpCustomer]) -> str:
    listed = ", ".join(
        f"{c.id} ({c.name}, tax number {c.tax_number}, "
        + (f"CRM account {c.external_ref}" if c.external_ref else "no CRM account")
        + ")"
        for c in candidates
    )
    return (
        f"CRM account {account.id} ({account.name}, tax number {account.tax_number}) looks like an "
        f"existing ERP customer: {listed}. Link it (retry naming the ERP customer id) or correct the "
        "CRM account; ps-sync will not create a second customer."
    )
