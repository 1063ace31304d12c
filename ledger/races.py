"""Insert-if-absent that survives a concurrent insert of the same unique key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.tables import Base

Row = TypeVar("Row", bound=Base)

# One lost race means the winner's row is now visible; missing it again would mean something else is wrong.
_ATTEMPTS = 3


def insert_unless_present(
    session: Session, *, find: Callable[[], Row | None], build: Callable[[], Row]
) -> tuple[Row, bool]:
    """The row `find` sees, or `build()` inserted; and whether it was inserted.

    The insert runs in a savepoint, so losing the race to another transaction (a unique violation, raised
    once that transaction commits) rolls back only the insert, and the repeated `find` sees the winner's
    row: under READ COMMITTED on PostgreSQL each statement reads the latest committed data, and on SQLite
    write transactions are serialised before they read anything.
    """
    last_error: IntegrityError | None = None
    for _ in range(_ATTEMPTS):
        found = find()
        if found is not None:
            return found, False
        row = build()
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError as error:
            last_error = error
            continue
        return row, True
    assert last_error is not None
    raise last_error
