"""Closed vocabularies shared by every system mapping."""

from __future__ import annotations

from enum import StrEnum


class BillingModel(StrEnum):
    TIME_AND_MATERIALS = "time_and_materials"
    FIXED_FEE = "fixed_fee"
    RETAINER = "retainer"


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    ON_HOLD = "on_hold"
    ARCHIVED = "archived"


class InvoiceState(StrEnum):
    DRAFT = "draft"
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    VOIDED = "voided"
    WRITTEN_OFF = "written_off"


class ExceptionOwner(StrEnum):
    FINANCE = "finance"
    PMO = "pmo"
    SALES_OPS = "sales_ops"
    HR_OPS = "hr_ops"
    INTEGRATION_SUPPORT = "integration_support"
