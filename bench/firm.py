"""A synthetic consulting firm, generated from a seed: same seed and sizes, same data, byte for byte.

The firm has consultants with roles, rate cards per billing currency with dated versions (a rise takes
effect in the middle of the first billed month, so one month is rated by two versions), deals for two
legal entities (UK books in Xero, EU in Tryton), one in ten of them fixed-fee implementations whose
milestones get signed off, and per billing month a set of approved work: billable and non-billable time
and expenses.

Nothing here does I/O; `bench.seeding` pushes a plan into the vendors through their APIs.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal

from canonical import Money, Period

ROLES = ("Partner", "Senior Consultant", "Consultant", "Analyst")
BASE_RATES: dict[str, dict[str, str]] = {
    "GBP": {"Partner": "250", "Senior Consultant": "150", "Consultant": "100", "Analyst": "75"},
    "EUR": {"Partner": "290", "Senior Consultant": "170", "Consultant": "115.50", "Analyst": "85"},
}
# The rise that takes effect on the 16th of the first billed month.
RATE_RISE = Decimal("1.04")
EXPENSE_CATEGORIES = ("Travel", "Lodging", "Meals", "Software")
FIRST_NAMES = (
    "Dana", "Omar", "Priya", "Liam", "Sofia", "Noah", "Mei", "Lucas", "Aisha", "Jonas",
    "Elena", "Tariq", "Hannah", "Mateo", "Ingrid", "Kwame", "Chloe", "Ravi", "Zofia", "Felix",
)  # fmt: skip
LAST_NAMES = (
    "Whitfield", "Haddad", "Shah", "Byrne", "Rossi", "Keller", "Tanaka", "Moreau", "Okafor", "Berg",
    "Novak", "Jansen", "Costa", "Schmidt", "Lindqvist", "Mensah", "Dubois", "Iyer", "Kowalska", "Weber",
)  # fmt: skip
UK_PLACES = (
    ("GB", "London", "EC1A 1AA", "1 Market Street"),
    ("GB", "Manchester", "M1 1AE", "22 Deansgate"),
    ("GB", "Leeds", "LS1 4AP", "5 Park Row"),
    ("IE", "Dublin", "D02 X285", "12 Dame Street"),
)
EU_PLACES = (
    ("NL", "Amsterdam", "1012 AB", "Damrak 1"),
    ("DE", "Berlin", "10117", "Unter den Linden 5"),
    ("FR", "Paris", "75002", "10 Rue de la Paix"),
    ("BE", "Brussels", "1000", "Rue Neuve 30"),
)
COMPANY_WORDS = (
    "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Acme", "Soylent", "Tyrell",
    "Cyberdyne", "Wonka", "Gringotts", "Oceanic", "Massive", "Aperture", "Monarch", "Nakatomi", "Dunder",
)  # fmt: skip
COMPANY_SUFFIX = {"GB": "Ltd", "IE": "Ltd", "NL": "B.V.", "DE": "GmbH", "FR": "SAS", "BE": "NV"}
TIME_AND_MATERIALS = ("ADV-TM", "Time and Materials")
FIXED_FEE = ("IMP-FF", "Fixed Fee")
# Rate card sets: None is the account default; the fixed-fee service is staffed at its own set.
RATE_CARD_SETS: tuple[str | None, ...] = (None, "Implementation")
MINUTES = (240, 300, 360, 420, 480)


@dataclass(frozen=True)
class ConsultantPlan:
    index: int
    full_name: str
    email: str
    role: str


@dataclass(frozen=True)
class DealPlan:
    index: int
    entity: str
    account_name: str
    country: str
    city: str
    postal_code: str
    street: str
    currency: str
    tax_code: str
    service_code: str
    billing_model: str
    amount: Decimal
    team: tuple[int, ...]
    # The team member who leads the project (a Kantata user, found by name).
    project_manager: str

    @property
    def fixed_fee(self) -> bool:
        return self.service_code == FIXED_FEE[0]


@dataclass(frozen=True)
class TimeItem:
    deal: int
    consultant: int
    day: date
    minutes: int
    billable: bool
    notes: str


@dataclass(frozen=True)
class ExpenseItem:
    deal: int
    consultant: int
    day: date
    amount: Decimal
    currency: str
    category: str


@dataclass(frozen=True)
class WorkPlan:
    """One month's approved work on a set of projects."""

    period: str
    deals: tuple[int, ...]
    time: tuple[TimeItem, ...]
    expenses: tuple[ExpenseItem, ...]

    @property
    def entries(self) -> int:
        """Approved work items: time (billable or not) and expenses."""
        return len(self.time) + len(self.expenses)

    @property
    def billable_entries(self) -> int:
        return sum(1 for item in self.time if item.billable) + len(self.expenses)


def _rng(*parts: object) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`, so the stream is the same on every run and platform.
    return random.Random(":".join(str(part) for part in parts))


def working_days(period: Period) -> list[date]:
    days, day = [], period.first_day
    while day <= period.last_day:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


class Firm:
    """Northwind Consulting as the benchmark sees it; every list is a pure function of the seed."""

    def __init__(self, seed: int, *, first_period: str, consultants: int = 40, eu_share: float = 0.2) -> None:
        if consultants < len(ROLES):
            raise ValueError(f"a firm needs at least {len(ROLES)} consultants, one per role")
        if not 0 <= eu_share <= 1:
            raise ValueError(f"eu_share is a fraction of the deals, got {eu_share}")
        self.seed = seed
        # The EU entity is the smaller one, acquired later: this share of the deals books in Tryton.
        self.eu_share = eu_share
        self.first_period = Period(value=first_period)
        self.consultants = tuple(self._consultant(i, name) for i, name in enumerate(self._names(consultants)))

    def _names(self, count: int) -> list[tuple[str, str]]:
        # Distinct full names: ps-sync finds a project's manager in the PSA by name.
        pairs = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES]
        if count > len(pairs):
            raise ValueError(f"at most {len(pairs)} consultants have distinct names")
        return _rng(self.seed, "names").sample(pairs, count)

    def _consultant(self, index: int, name: tuple[str, str]) -> ConsultantPlan:
        rng = _rng(self.seed, "consultant", index)
        first, last = name
        # Every role is staffed; after that the pyramid is wider at the bottom.
        role = ROLES[index] if index < len(ROLES) else rng.choices(ROLES, weights=(1, 3, 5, 4))[0]
        return ConsultantPlan(
            index=index,
            full_name=f"{first} {last}",
            email=f"{first.lower()}.{last.lower()}.{index}@northwind.example",
            role=role,
        )

    def rate_cards(self) -> dict[str, dict[date, dict[str, Money]]]:
        """Per currency, the versions of a rate card: a base and a rise mid-first-month. The account's
        default set and the fixed-fee service's own set ("Implementation") both carry them."""
        base = date(self.first_period.first_day.year - 1, 1, 1)
        rise = self.first_period.first_day.replace(day=16)
        cards: dict[str, dict[date, dict[str, Money]]] = {}
        for currency, rates in BASE_RATES.items():
            cards[currency] = {
                base: {role: Money.of(rate, currency) for role, rate in rates.items()},
                rise: {
                    role: Money.of((Decimal(rate) * RATE_RISE).quantize(Decimal("0.01")), currency)
                    for role, rate in rates.items()
                },
            }
        return cards

    def deal(self, index: int) -> DealPlan:
        rng = _rng(self.seed, "deal", index)
        uk = rng.random() >= self.eu_share
        country, city, postal_code, street = rng.choice(UK_PLACES if uk else EU_PLACES)
        service_code, billing_model = FIXED_FEE if index % 10 == 9 else TIME_AND_MATERIALS
        name = (
            f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_WORDS)} {index:05d} {COMPANY_SUFFIX[country]}"
        )
        team = tuple(sorted(rng.sample(range(len(self.consultants)), k=rng.randint(3, 5))))
        return DealPlan(
            index=index,
            entity="UK" if uk else "EU",
            account_name=name,
            country=country,
            city=city,
            postal_code=postal_code,
            street=street,
            currency="GBP" if uk else "EUR",
            tax_code="OUTPUT2" if uk else "VAT21",
            service_code=service_code,
            billing_model=billing_model,
            amount=Decimal(rng.randrange(20_000, 400_000, 500)),
            team=team,
            project_manager=self.consultants[team[0]].full_name,
        )

    def deals(self, count: int, *, start: int = 0) -> tuple[DealPlan, ...]:
        return tuple(self.deal(index) for index in range(start, start + count))

    @staticmethod
    def billable_projects(deals: Sequence[DealPlan], count: int) -> tuple[int, ...]:
        """The first `count` time-and-materials deals: the projects whose time is billed."""
        chosen = tuple(deal.index for deal in deals if not deal.fixed_fee)[:count]
        if len(chosen) < count:
            raise ValueError(f"only {len(chosen)} time-and-materials deals among {len(deals)}; need {count}")
        return chosen

    def work(self, deals: Sequence[DealPlan], *, period: str, entries: int, projects: int) -> WorkPlan:
        """`entries` approved items (3 % expenses, the rest time, 90 % of it billable) spread evenly over
        the first `projects` time-and-materials deals."""
        billed = self.billable_projects(deals, projects)
        by_index = {deal.index: deal for deal in deals}
        days = working_days(Period(value=period))
        time: list[TimeItem] = []
        expenses: list[ExpenseItem] = []
        per_project, extra = divmod(entries, len(billed))
        for position, deal_index in enumerate(billed):
            deal = by_index[deal_index]
            rng = _rng(self.seed, "work", period, deal_index)
            for _ in range(per_project + (1 if position < extra else 0)):
                consultant = rng.choice(deal.team)
                day = rng.choice(days)
                if rng.random() < 0.03:
                    expenses.append(
                        ExpenseItem(
                            deal=deal_index,
                            consultant=consultant,
                            day=day,
                            amount=Decimal(rng.randint(1_500, 60_000)) / 100,
                            currency=deal.currency,
                            category=rng.choice(EXPENSE_CATEGORIES),
                        )
                    )
                    continue
                billable = rng.random() < 0.9
                time.append(
                    TimeItem(
                        deal=deal_index,
                        consultant=consultant,
                        day=day,
                        minutes=rng.choice(MINUTES),
                        billable=billable,
                        notes="client work" if billable else "internal: knowledge sharing",
                    )
                )
        return WorkPlan(period=period, deals=billed, time=tuple(time), expenses=tuple(expenses))

    @staticmethod
    def signed_off(deals: Sequence[DealPlan]) -> tuple[int, ...]:
        """Fixed-fee deals among `deals` whose first milestone (design sign-off) is completed."""
        return tuple(deal.index for deal in deals if deal.fixed_fee)

    def digest(self, deals: Sequence[DealPlan], work: Sequence[WorkPlan]) -> str:
        """A fingerprint of everything generated, to show that a seed reproduces the same firm."""
        document = {
            "consultants": [asdict(c) for c in self.consultants],
            "rate_cards": {
                currency: {
                    day.isoformat(): {r: str(m.amount) for r, m in rates.items()} for day, rates in v.items()
                }
                for currency, v in self.rate_cards().items()
            },
            "deals": [asdict(d) for d in deals],
            "work": [asdict(w) for w in work],
        }
        encoded = json.dumps(document, sort_keys=True, default=str).encode()
        return hashlib.sha256(encoded).hexdigest()
