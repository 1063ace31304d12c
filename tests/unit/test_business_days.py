from datetime import UTC, datetime

from domain.business_days import add_business_days


def test_two_business_days_from_thursday_is_monday():
    assert add_business_days(datetime(2026, 11, 19, 10, tzinfo=UTC), 2) == datetime(
        2026, 11, 23, 10, tzinfo=UTC
    )


def test_five_business_days_from_monday_is_next_monday():
    assert add_business_days(datetime(2026, 11, 16, 9, tzinfo=UTC), 5) == datetime(
        2026, 11, 23, 9, tzinfo=UTC
    )


def test_a_weekend_start_counts_from_monday():
    assert add_business_days(datetime(2026, 11, 21, 9, tzinfo=UTC), 2) == datetime(
        2026, 11, 25, 9, tzinfo=UTC
    )
