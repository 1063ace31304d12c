"""Salesforce (CRM): REST client, canonical mapping, the CrmConnector, and outbound-message parsing."""

from connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConnector"]
