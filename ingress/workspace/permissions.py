"""What a person's role lets the workspace offer them; the APIs underneath check the same again.

viewer (and PMO, sales ops): read. finance: approve or reject invoices, act on finance-owned exceptions.
ops: act on every exception.
"""

from __future__ import annotations

from canonical import ExceptionOwner
from ingress.exceptions_api import READERS, ROLE_OWNS
from ingress.identity import Identity

APPROVERS = ("finance",)


def may_decide(person: Identity) -> bool:
    return person.role in APPROVERS


def may_act_on(person: Identity, owner: ExceptionOwner) -> bool:
    if person.role not in READERS:
        return False
    limited_to = ROLE_OWNS.get(person.role)
    return limited_to is None or limited_to == owner


def owner_limit(person: Identity) -> ExceptionOwner | None:
    return ROLE_OWNS.get(person.role)


def may_act_at_all(person: Identity) -> bool:
    return person.role in READERS
