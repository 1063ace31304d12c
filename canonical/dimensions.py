"""The dimensions finance reports by, carried on every invoice line: project and customer, and the project's
practice (the firm's service line) where the PSA keeps one.

Each ERP keeps them its own way (Xero: tracking categories and their options, at most two categories, so an
entity chooses which two it tracks; Tryton: analytic accounts under an analytic root per dimension;
NetSuite: the invoice's Customer:Project, no practice). The ERP-side project is created when the deal is
won, and what the ERP answered (`ErpProject`) is recorded with the project's contract, so billing sends
each line's dimensions in the ERP's own keys.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Dimension = Literal["project", "customer", "practice"]
PRACTICE_CODE_LENGTH = 40


def practice_code(practice: str) -> str:
    """How ERPs key a practice: its name in capitals, each run of other characters one hyphen ("Data & AI"
    is `DATA-AI`), so the same practice is found again however its name is spaced or cased. Empty when the
    name has no letter or digit, which no ERP can key."""
    return re.sub(r"[\W_]+", "-", practice.upper()).strip("-")[:PRACTICE_CODE_LENGTH].rstrip("-")


class DimensionValue(BaseModel):
    """One dimension of a line: `code` is how the ERP keys the value (a Xero tracking option's name, a
    Tryton analytic account's code), `name` what a person reads."""

    model_config = ConfigDict(frozen=True)

    dimension: Dimension
    code: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1)


class ErpProjectSpec(BaseModel):
    """What the ERP needs to make (or find) the project's side of the books at closed-won."""

    model_config = ConfigDict(frozen=True)

    # Our key for the project (the PSA's project id): the ERP-side project is found again by it.
    project_code: str = Field(min_length=1, max_length=64)
    project_name: str = Field(min_length=1)
    # The ERP customer the project bills, and the CRM account id it carries as its external reference.
    customer_id: str
    customer_code: str = Field(min_length=1, max_length=64)
    customer_name: str = Field(min_length=1)
    # The project's practice as the PSA holds it; None: the project has none, its lines carry no practice.
    practice: str | None = None


class ErpProject(BaseModel):
    """The project as the ERP keeps it: its id there, and the dimension values every line of it carries."""

    model_config = ConfigDict(frozen=True)

    erp: str
    project_id: str
    dimensions: tuple[DimensionValue, ...]
