"""Which account each invoice line books to, per legal entity: finance's mapping, checked against the chart.

Finance keeps the mapping as reference data (ledger `account_mapping`, edited with `pssync accounts` or the
ingress): a rule names a kind of work, a key and the account it books to.

- `role` (key: a PSA role, or `*` for subcontracted time's cost): revenue for time worked in that role, and
  the cost account a subcontractor's bill for time in that role books to (domain.payables);
- `service` (key: a service code, or `*`): revenue for the service's time that no role rule claims;
- `expense_category` (key: a PSA expense category, or `*`): recharge income for re-billed expenses, and the
  cost account a bill for the expense books to;
- `milestone` and `retainer` (key: a service code, or `*`): revenue for fixed-fee milestones and for the
  monthly retainer fee;
- `journal` (key: a month-end account role, `domain.month_end.AccountRole`: revenue, deferred_revenue,
  accrued_revenue, wip, labour_cost, cost_clearing): the account month-end's journals book that role to.
  Journal rules govern month-end only: they do not put an entity's invoices under the mapping.

Time looks for its role, then the project's service, then `service *`; the others for their key, then `*`.
An entity with no rule at all posts every line to its ERP's default account, as before mappings existed; once
finance maps one account for an entity, every line must find one.

An account the ERP's chart (as ReferenceSync last read it) does not hold, or holds archived, stops the line
as surely as a missing rule: both are a finance exception naming the rule to fix, and the rest of the invoice
goes on. Pure and deterministic, so billing workflows call it and replay it.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.month_end.journal import AccountRole

MappingKind = Literal["role", "service", "expense_category", "milestone", "retainer", "journal"]
KINDS: tuple[str, ...] = get_args(MappingKind)
ANY = "*"
JOURNAL = "journal"
# Where a missing rule is set; named in every exception so finance knows the command to run.
SET_COMMAND = "pssync accounts set"

UNMAPPED = "unmapped_account"
NOT_IN_ERP = "account_not_in_erp"


class AccountRule(BaseModel):
    """One rule of an entity's mapping: work of `kind` and `key` books to `account_code`."""

    model_config = ConfigDict(frozen=True)

    kind: MappingKind
    key: str = Field(min_length=1, max_length=128)
    account_code: str = Field(min_length=1, max_length=64)
    # What the work costs the firm (expense categories: the account a bill for the expense books to).
    cost_account_code: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _journal_key_is_a_role(self) -> AccountRule:
        roles = [role.value for role in AccountRole]
        if self.kind == JOURNAL and self.key not in roles:
            raise ValueError(
                f"a journal rule's key is a month-end account role ({', '.join(roles)}), got {self.key!r}"
            )
        return self

    def label(self, entity: str) -> str:
        return f"{entity} {self.kind} {self.key!r}"


class AccountChoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_code: str
    rule: AccountRule


class AccountProblem(BaseModel):
    """Why a line cannot be booked: the rule (`UNMAPPED` or `NOT_IN_ERP`) and finance's fix, in words."""

    model_config = ConfigDict(frozen=True)

    rule: str
    reason: str


class AccountMap(BaseModel):
    """One legal entity's rules, with its ERP's chart of accounts as last synced (code -> active)."""

    model_config = ConfigDict(frozen=True)

    legal_entity: str
    erp: str
    rules: tuple[AccountRule, ...] = ()
    # None before ReferenceSync has read the ERP's chart: accounts are then taken on trust.
    chart: dict[str, bool] | None = None

    @property
    def in_use(self) -> bool:
        """Whether invoice lines must find a rule: journal rules alone do not bring invoices under it."""
        return any(rule.kind != JOURNAL for rule in self.rules)

    def _rule(self, kind: str, key: str | None) -> AccountRule | None:
        return next((r for r in self.rules if r.kind == kind and key is not None and r.key == key), None)

    def _choose(self, candidates: list[tuple[str, str | None]], what: str) -> AccountChoice | AccountProblem:
        for kind, key in candidates:
            rule = self._rule(kind, key)
            if rule is not None:
                return self._checked(rule, rule.account_code, "account")
        tried = " or ".join(f"{kind} {key!r}" for kind, key in candidates if key is not None)
        kind, key = candidates[0]
        return AccountProblem(
            rule=UNMAPPED,
            reason=f"no account is mapped for {what} in legal entity {self.legal_entity} (looked for "
            f"{tried}); finance maps one with `{SET_COMMAND} {self.legal_entity} {kind} "
            f"{_shell(key or ANY)} --account CODE`",
        )

    def _checked(self, rule: AccountRule, code: str, which: str) -> AccountChoice | AccountProblem:
        if self.chart is not None and not self.chart.get(code, False):
            state = "is archived" if code in self.chart else "does not exist"
            return AccountProblem(
                rule=NOT_IN_ERP,
                reason=f"{which} {code!r} mapped by rule {rule.label(self.legal_entity)} {state} in "
                f"{self.erp}'s chart of accounts (as of the last reference sync); finance restores it in "
                f"{self.erp} or points the rule at an active account with `{SET_COMMAND} "
                f"{self.legal_entity} {rule.kind} {_shell(rule.key)} --account CODE`",
            )
        return AccountChoice(account_code=code, rule=rule)

    def for_time(self, role: str, service: str | None) -> AccountChoice | AccountProblem:
        return self._choose(
            [("role", role), ("service", service), ("service", ANY)], f"time worked as {role!r}"
        )

    def for_expense(self, category: str) -> AccountChoice | AccountProblem:
        return self._choose(
            [("expense_category", category), ("expense_category", ANY)],
            f"re-billed expenses of category {category!r}",
        )

    def for_milestone(self, service: str | None) -> AccountChoice | AccountProblem:
        return self._choose([("milestone", service), ("milestone", ANY)], "fixed-fee milestones")

    def for_retainer(self, service: str | None) -> AccountChoice | AccountProblem:
        return self._choose([("retainer", service), ("retainer", ANY)], "the monthly retainer fee")

    def for_journal(self, role: AccountRole) -> AccountChoice | AccountProblem:
        return self._choose([(JOURNAL, role.value)], f"month-end's {role.value} lines")

    def problems(self) -> list[tuple[AccountRule, str]]:
        """Every rule whose account (or cost account) the synced chart lacks or holds archived."""
        found: list[tuple[AccountRule, str]] = []
        for rule in self.rules:
            for code, which in ((rule.account_code, "account"), (rule.cost_account_code, "cost account")):
                if code is None:
                    continue
                checked = self._checked(rule, code, which)
                if isinstance(checked, AccountProblem):
                    found.append((rule, checked.reason))
        return found


def _shell(text: str) -> str:
    """A key as a shell argument: quoted when it holds anything a shell would split or expand."""
    if text and all(c.isalnum() or c in "-_.:/" for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"
