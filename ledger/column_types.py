"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has neither a decimal nor a time-zone-aware timestamp, so these types make both dialects store
exactly what the caller gave: money as fixed-point text on SQLite (NUMERIC on PostgreSQL) and instants
in UTC (naive UTC text on SQLite, timestamptz on PostgreSQL), always read back as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine


def utc_now() -> datetime:
    return datetime.now(UTC)


def fixed_point(value: Any, *, precision: int, scale: int, field: str = "value") -> Decimal:
    """`value` at exactly `scale` decimal places, or ValueError if that would change it or it will not fit.

    NUMERIC(p, s) on PostgreSQL would round silently; the ledger records money, so it refuses instead.
    """
    if isinstance(value, float) or isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValueError(f"{field} must be a Decimal, int or str, never {type(value).__name__}: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as error:
        raise ValueError(f"{field} is not a number: {value!r}") from error
    if not number.is_finite():
        raise ValueError(f"{field} must be finite, got {value!r}")
    quantum = Decimal(1).scaleb(-scale)
    exact = number.quantize(quantum) if number.adjusted() < precision else number
    if exact != number:
        raise ValueError(
            f"{field} {number} has more than {scale} decimal places; the ledger stores it exactly"
        )
    if exact.adjusted() >= precision - scale:
        raise ValueError(
            f"{field} {number} needs more than {precision - scale} digits before the decimal point"
        )
    # -0 and 0 are the same amount; store one spelling.
    return exact if exact else Decimal(0).quantize(quantum)


class ExactNumeric(TypeDecorator[Decimal]):
    """NUMERIC(precision, scale) on PostgreSQL; fixed-point text on SQLite, which would otherwise use a float.

    Compare and sum these values in Python: on SQLite, SQL arithmetic on the text would go through floats.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # Digits plus sign and decimal point.
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = fixed_point(value, precision=self.precision, scale=self.scale)
        return f"{exact:f}" if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """An instant: refuses naive datetimes, stores UTC, returns aware UTC whatever the session time zone."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} refused: give it a time zone (UTC preferred)"
            )
        in_utc = value.astimezone(UTC)
        return in_utc.replace(tzinfo=None) if dialect.name == "sqlite" else in_utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
