"""The dimensions finance reports by, carried on every invoice line: project and customer.

Each ERP keeps them its own way (Xero: tracking categories and their options, at most two categories;
Tryton: analytic accounts under an analytic root per dimension). The ERP-side project is created when the
deal is won, and what the ERP answered (`ErpProject`) is recorded with the project's contract, so billing
sends each line's dimensions in the ERP's own keys.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Dimension = Literal["project", "customer"]


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


class ErpProject(BaseModel):
    """The project as the ERP keeps it: its id there, and the dimension values every line of it carries."""

    model_config = ConfigDict(frozen=True)

    erp: str
    project_id: str
    dimensions: tuple[DimensionValue, ...]
