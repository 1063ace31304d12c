"""Two workers racing on the same business key end with one row, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from canonical import Money
from ledger.database import Database
from ledger.errors import CrosswalkConflict
from ledger.repository import link_ids, open_exception, record_posting
from ledger.tables import Base, ExceptionEntry, IdMap, Posting


class Worker(threading.Thread):
    """Runs one ledger call in its own session and thread, keeping its result or error for the test."""

    def __init__(self, db: Database, call: Callable[[Session], Any]) -> None:
        super().__init__(daemon=True)
        self._db = db
        self._call = call
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self._db.session() as session:
                self.result = self._call(session)
        except BaseException as error:
            self.error = error

    def outcome(self) -> Any:
        self.join(timeout=30)
        assert not self.is_alive(), "worker did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def _count(db: Database, table: type[Base]) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def _wait_until_blocked_on_a_lock(db: Database, worker: Worker) -> None:
    """Proof that the second writer got past its read and is inside the insert when the first commits."""
    if db.dialect == "sqlite":
        # SQLite serialises writers at BEGIN IMMEDIATE; the waiting is invisible from outside.
        time.sleep(0.3)
        assert worker.is_alive(), "the second writer should wait for the first"
        return
    observer = create_engine(db.engine.url, poolclass=NullPool)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with observer.connect() as connection:
                waiting = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
            if waiting:
                return
            time.sleep(0.02)
        pytest.fail("the second writer never blocked on the first writer's uncommitted row")
    finally:
        observer.dispose()


def _link(external_id: str = "981", key: str = "salesforce:006A") -> Callable[[Session], Any]:
    return lambda session: link_ids(
        session, entity="project", canonical_key=key, system="kantata", external_id=external_id
    )


def test_concurrent_link_ids_for_one_key_waits_for_the_first_and_returns_its_link(db: Database) -> None:
    with db.session() as first_session:
        winner = _link()(first_session)  # inserted, not yet committed
        second = Worker(db, _link())
        second.start()
        _wait_until_blocked_on_a_lock(db, second)
    # The first transaction has committed: the second's insert fails, it re-reads, and finds this row.
    assert second.outcome() == winner
    assert _count(db, IdMap) == 1


def test_concurrent_link_ids_to_different_external_ids_lets_one_win_and_the_other_conflict(
    db: Database,
) -> None:
    with db.session() as first_session:
        _link("981")(first_session)
        second = Worker(db, _link("982"))
        second.start()
        _wait_until_blocked_on_a_lock(db, second)
    with pytest.raises(CrosswalkConflict, match=r"'981'.*'982'"):
        second.outcome()
    assert _count(db, IdMap) == 1


class _KeyByKeyLinker(threading.Thread):
    """Links every key, one transaction per key, so two of these interleave key by key."""

    def __init__(self, db: Database, keys: list[str], barrier: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self._db, self._keys, self._barrier = db, keys, barrier
        self.links: list[Any] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._barrier.wait(timeout=10)
            for key in self._keys:
                with self._db.session() as session:
                    self.links.append(_link(f"k-{key}", key)(session))
        except BaseException as error:
            self.error = error

    def outcome(self) -> list[Any]:
        self.join(timeout=60)
        assert not self.is_alive(), "linker did not finish"
        if self.error is not None:
            raise self.error
        return self.links


def test_two_threads_linking_the_same_keys_at_once_end_with_one_row_per_key(db: Database) -> None:
    keys = [f"salesforce:006{index:03d}" for index in range(25)]
    barrier = threading.Barrier(2)
    linkers = [_KeyByKeyLinker(db, keys, barrier) for _ in range(2)]
    for linker in linkers:
        linker.start()
    first, second = (linker.outcome() for linker in linkers)
    assert first == second
    assert [link.external_id for link in first] == [f"k-{key}" for key in keys]
    assert _count(db, IdMap) == len(keys)


def test_concurrent_record_posting_for_one_key_keeps_one_posting(db: Database) -> None:
    def post(session: Session) -> Any:
        return record_posting(
            session,
            idempotency_key="ttb:P-1:2025-03:abc",
            erp="xero",
            legal_entity="UK",
            project_id="P-1",
            period="2025-03",
            target_id="inv-1",
            number="INV-1",
            amount=Money.of("10.00", "GBP"),
            content_hash="h",
        )

    with db.session() as first_session:
        winner = post(first_session)
        second = Worker(db, post)
        second.start()
        _wait_until_blocked_on_a_lock(db, second)
    assert second.outcome() == winner
    assert _count(db, Posting) == 1


def test_concurrent_open_exception_for_one_dedupe_key_keeps_one_item(db: Database) -> None:
    def raise_it(session: Session) -> Any:
        return open_exception(
            session,
            dedupe_key="ttb:P-1:TE-1",
            process="time_to_billing",
            owner="pmo",
            reason="no rate",
            record={"entry": "TE-1"},
        )

    with db.session() as first_session:
        winner = raise_it(first_session)
        second = Worker(db, raise_it)
        second.start()
        _wait_until_blocked_on_a_lock(db, second)
    again = second.outcome()
    assert again.id == winner.id
    assert again.attempts == 1
    assert _count(db, ExceptionEntry) == 1
