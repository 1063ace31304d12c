"""Journals posted to an entity's ERP: revenue recognition, WIP accruals and their reversals, labour cost.

A line's amount is one signed `Money`: positive is a debit, negative a credit. That is how Xero's manual
journal lines carry it (`LineAmount`), it makes "the journal balances" one exact sum, and reversing a journal
is negating its lines; an ERP that books debit and credit columns (Tryton) splits the sign when it books.

A journal is refused here, before any ERP sees it, unless its lines balance to zero exactly, every amount is
a whole number of the currency's minor unit (the ERP would otherwise round one side and unbalance it), and it
has at least two lines. `reference` is our key for the journal: the ERP keeps it with the journal, so a
retried or re-run post finds the journal instead of making a second one.
"""

from __future__ import annotations

import datetime as dt
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from canonical.dimensions import DimensionValue
from canonical.money import Money, minor_units
from canonical.period import Period

# No spaces: the ERPs keep the reference at the start of a free-text field (Xero's Narration) followed by a
# space, so the first space is where the reference ends and a search by reference cannot match a longer one.
REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$"
REFERENCE_MAX = 64

JournalState = Literal["draft", "posted", "voided"]


def is_whole_minor_units(amount: Money) -> bool:
    """Whether `amount` is a whole number of its currency's minor unit (12.50 GBP yes, 12.505 GBP no)."""
    # Read off the digits rather than divided: exact for any size, whatever the Decimal context's precision.
    _sign, digits, exponent = amount.amount.as_tuple()
    if not isinstance(exponent, int):
        return False  # NaN or infinity
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return all(d == 0 for d in digits) or exponent + trailing_zeros >= -minor_units(amount.currency)


class JournalLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    account_code: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1, max_length=500)
    amount: Money = Field(description="signed: positive is a debit, negative a credit")
    # The project (and customer) the line is reported under, in the booking ERP's keys (canonical.dimensions).
    dimensions: tuple[DimensionValue, ...] = ()
    # The ledger entries the line was computed from, as the ledger names them (e.g. "time:4711,4712").
    source: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_value_per_dimension(self) -> JournalLine:
        if self.amount.is_zero():
            raise ValueError(f"journal line on account {self.account_code} has a zero amount")
        named = [value.dimension for value in self.dimensions]
        if len(named) != len(set(named)):
            raise ValueError(f"journal line on account {self.account_code} names a dimension twice: {named}")
        return self

    @property
    def debit(self) -> Money:
        return self.amount if self.amount.amount > 0 else Money.zero(self.amount.currency)

    @property
    def credit(self) -> Money:
        return -self.amount if self.amount.amount < 0 else Money.zero(self.amount.currency)

    @property
    def booked_description(self) -> str:
        """What the ERP line says: the description, then the ledger source it was computed from."""
        return f"{self.description} [{self.source}]"

    def negated(self) -> JournalLine:
        return self.model_copy(update={"amount": -self.amount})


class Journal(BaseModel):
    model_config = ConfigDict(frozen=True)

    reference: str = Field(min_length=1, max_length=REFERENCE_MAX, pattern=REFERENCE_PATTERN)
    legal_entity: str = Field(min_length=1)
    date: date
    narration: str = Field(min_length=1, max_length=500)
    currency: str
    lines: tuple[JournalLine, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _balanced_in_minor_units(self) -> Journal:
        problems: list[str] = []
        for index, line in enumerate(self.lines):
            if line.amount.currency != self.currency:
                problems.append(
                    f"lines[{index}] is in {line.amount.currency}, the journal in {self.currency}"
                )
            elif not is_whole_minor_units(line.amount):
                problems.append(
                    f"lines[{index}] amount {line.amount.amount} is not a whole number of {self.currency}'s "
                    f"minor unit ({minor_units(self.currency)} decimals)"
                )
        if problems:
            raise ValueError("; ".join(problems))
        balance = sum((line.amount.amount for line in self.lines), Decimal(0))
        if balance != 0:
            raise ValueError(
                f"journal {self.reference} does not balance: debits {self.total_debits.amount}, "
                f"credits {self.total_credits.amount}, difference {balance} {self.currency}"
            )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_debits(self) -> Money:
        return Money(
            amount=sum((line.debit.amount for line in self.lines), Decimal(0)), currency=self.currency
        )

    @property
    def total_credits(self) -> Money:
        return Money(
            amount=sum((line.credit.amount for line in self.lines), Decimal(0)), currency=self.currency
        )

    @property
    def erp_narration(self) -> str:
        """The journal's narration as the ERP keeps it: our reference first, so it is found again by it."""
        return f"{self.reference} {self.narration}"

    def reversal(self, reference: str, *, on: dt.date | None = None, narration: str | None = None) -> Journal:
        """The same lines negated, as a journal of its own dated `on`, by default the first day of the period
        after this journal's (an accrual reverses as the next period opens)."""
        return Journal(
            reference=reference,
            legal_entity=self.legal_entity,
            date=on if on is not None else first_day_of_next_period(self.date),
            narration=narration
            if narration is not None
            else f"Reversal of {self.reference}: {self.narration}",
            currency=self.currency,
            lines=tuple(line.negated() for line in self.lines),
        )


def revalidated(journal: Journal) -> Journal:
    """The journal checked again, so one built without validation (`model_construct`) cannot slip past the
    balance and minor-unit rules on its way to an ERP; ValueError says what is wrong."""
    return Journal.model_validate(journal.model_dump())


def first_day_of_next_period(day: date) -> date:
    return Period.of(day).last_day + timedelta(days=1)


def reference_of(erp_narration: str) -> str:
    """Our reference from the start of a narration the ERP keeps (see `Journal.erp_narration`)."""
    return erp_narration.split(" ", 1)[0]


class PostedJournal(BaseModel):
    """A journal as the ERP booked it: its id there, our reference, and what it moved."""

    model_config = ConfigDict(frozen=True)

    erp: str
    journal_id: str
    reference: str
    date: date
    state: JournalState
    total_debits: Money


class BookedJournalLine(BaseModel):
    """A journal line as the ERP holds it: where it booked, how much (signed, positive debit) and under which
    dimensions; `description` is the ERP's text, which names the line's ledger source."""

    model_config = ConfigDict(frozen=True)

    account_code: str
    description: str
    amount: Money
    dimensions: tuple[DimensionValue, ...] = ()


class BookedJournal(BaseModel):
    """A posted journal read back with its lines: what a re-run compares against to post only a difference."""

    model_config = ConfigDict(frozen=True)

    journal: PostedJournal
    narration: str
    lines: tuple[BookedJournalLine, ...]
