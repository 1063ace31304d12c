"""Typed search attributes on every run, so ops can filter the Temporal UI by business key."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
PROJECT_ID = SearchAttributeKey.for_keyword("ProjectId")
OPPORTUNITY_ID = SearchAttributeKey.for_keyword("OpportunityId")
LEGAL_ENTITY = SearchAttributeKey.for_keyword("LegalEntity")
BILLING_PERIOD = SearchAttributeKey.for_keyword("BillingPeriod")
SYNC_STAGE = SearchAttributeKey.for_keyword("SyncStage")
EXCEPTION_OWNER = SearchAttributeKey.for_keyword("ExceptionOwner")

ALL = (CUSTOMER_ID, PROJECT_ID, OPPORTUNITY_ID, LEGAL_ENTITY, BILLING_PERIOD, SYNC_STAGE, EXCEPTION_OWNER)
