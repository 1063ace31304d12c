"""Salesforce runs the CRM role contract against the sandbox, through the real connector over HTTP."""

from ..contract.crm_contract import CrmContract


class TestSalesforceCrmContract(CrmContract):
    pass
