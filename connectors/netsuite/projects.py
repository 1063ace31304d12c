"""Project and customer dimensions as NetSuite keeps them (the ERP role's `ErpProjectBooks`).

A project is a job (the `job` record, "Project" in the UI) under its customer; a transaction names its
Customer:Project as its entity, and NetSuite reports every line of it under that project and customer. So
the dimension values are the job and its customer, keyed by internal id, and all lines of one invoice must
name the same project: the invoice's entity is that job. The job's external id is derived from the PSA
project id, so the job made at closed-won is the one every invoice of the project finds again.

A project's practice is not carried: its natural place in NetSuite is a line's `class` (or `department`)
classification, which neither this connector nor the NetSuite sandbox keeps yet, so NetSuite lines carry
project and customer only, and reconciliation holds them to those.
"""

from __future__ import annotations

from typing import Any

from canonical import Invoice
from canonical.dimensions import DimensionValue, ErpProject, ErpProjectSpec
from connectors.errors import Conflict, FieldError, Rejected
from connectors.netsuite import mapping
from connectors.netsuite.client import NetSuiteClient, external
from connectors.netsuite.errors import SYSTEM

# NetSuite's entity names hold at most 83 characters (company name on customers and jobs).
NAME_MAX = 83


def _rejected(message: str, field: str) -> Rejected:
    return Rejected(message, system=SYSTEM, field_errors=[FieldError(field=field, message=message)])


async def ensure_job(
    client: NetSuiteClient, *, project_code: str, project_name: str, customer_id: str
) -> str:
    """The project's job under the customer: found by its external id, else made."""
    external_id = mapping.job_external_id(project_code)
    job = await client.find_record("job", external(external_id))
    if job is not None:
        parent = mapping.ref_id(job.get("parent"))
        if parent != customer_id:
            raise Conflict(
                f"NetSuite job {job['id']} of PSA project {project_code} hangs under customer {parent}, "
                f"not {customer_id}",
                system=SYSTEM,
            )
        return str(job["id"])
    payload = mapping.job_payload(
        project_id=project_code, project_name=project_name[:NAME_MAX], customer_id=customer_id
    )
    return await client.upsert("job", external_id, payload)


async def ensure_project(client: NetSuiteClient, spec: ErpProjectSpec) -> ErpProject:
    # NotFound when NetSuite has no such customer, as the role asks.
    customer = await client.get_record("customer", spec.customer_id)
    job_id = await ensure_job(
        client,
        project_code=spec.project_code,
        project_name=spec.project_name,
        customer_id=str(customer["id"]),
    )
    return ErpProject(
        erp=SYSTEM,
        project_id=job_id,
        dimensions=(
            DimensionValue(dimension="project", code=job_id, name=spec.project_name),
            DimensionValue(dimension="customer", code=str(customer["id"]), name=spec.customer_name),
        ),
    )


def _named(invoice: Invoice, dimension: str) -> dict[str, list[int]]:
    """The values the lines name for a dimension, with the lines naming each."""
    named: dict[str, list[int]] = {}
    for index, line in enumerate(invoice.lines):
        for value in line.dimensions:
            if value.dimension == dimension:
                named.setdefault(value.code, []).append(index)
    return named


async def invoice_job(client: NetSuiteClient, invoice: Invoice) -> str | None:
    """The job the lines' project dimension names (checked against NetSuite), or None when they name none."""
    projects = _named(invoice, "project")
    if not projects:
        return None
    if len(projects) > 1:
        raise _rejected(
            f"invoice {invoice.reference} names projects {', '.join(sorted(projects))}: NetSuite books a "
            "project per invoice (its Customer:Project), so each invoice must bill one project",
            "entity",
        )
    ((code, lines),) = projects.items()
    field = f"item.items[{lines[0]}].dimensions.project"
    job = await client.find_record("job", code) if code.isdigit() else None
    if job is None:
        raise _rejected(f"NetSuite has no project (job) {code!r}", field)
    customers = _named(invoice, "customer")
    parent = mapping.ref_id(job.get("parent"))
    wrong = [c for c in customers if c != parent] or (
        [] if parent == invoice.customer_id else [invoice.customer_id]
    )
    if wrong:
        raise _rejected(
            f"NetSuite project (job) {code} belongs to customer {parent}, not {', '.join(wrong)}",
            f"item.items[{lines[0]}].dimensions.customer",
        )
    return str(job["id"])


async def booked_dimensions(
    client: NetSuiteClient, record: dict[str, Any], jobs: dict[str, dict[str, Any] | None]
) -> tuple[DimensionValue, ...]:
    """The project and customer an invoice's lines are reported under: its entity, a job or a customer.
    `jobs` caches the jobs read for one listing."""
    entity = record.get("entity") or {}
    entity_id = mapping.ref_id(entity)
    if entity_id is None:
        return ()
    if entity_id not in jobs:
        jobs[entity_id] = await client.find_record("job", entity_id)
    job = jobs[entity_id]
    if job is None:
        name = str(entity.get("refName") or entity_id)
        return (DimensionValue(dimension="customer", code=entity_id, name=name),)
    parent = job.get("parent") or {}
    return (
        DimensionValue(dimension="project", code=entity_id, name=str(job.get("companyName") or entity_id)),
        DimensionValue(
            dimension="customer",
            code=str(mapping.ref_id(parent)),
            name=str(parent.get("refName") or mapping.ref_id(parent)),
        ),
    )
