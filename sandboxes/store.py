"""A sandbox's records: in memory for speed, written through to SQLite so they survive restarts."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

Doc = dict[str, Any]


class Collection:
    def __init__(self, store: SandboxStore, name: str) -> None:
        self._store = store
        self.name = name
        self._docs: dict[str, Doc] = {}

    def __len__(self) -> int:
        return len(self._docs)

    def __iter__(self) -> Iterator[Doc]:
        return iter(list(self._docs.values()))

    def get(self, doc_id: str) -> Doc | None:
        return self._docs.get(str(doc_id))

    def put(self, doc_id: str, doc: Doc) -> Doc:
        doc_id = str(doc_id)
        with self._store.lock:
            self._docs[doc_id] = doc
            self._store.persist(self.name, [(doc_id, doc)])
        return doc

    def put_many(self, docs: Iterable[tuple[str, Doc]]) -> None:
        rows = [(str(doc_id), doc) for doc_id, doc in docs]
        with self._store.lock:
            for doc_id, doc in rows:
                self._docs[doc_id] = doc
            self._store.persist(self.name, rows)

    def update(self, doc_id: str, changes: Doc) -> Doc:
        doc = self._docs[str(doc_id)]
        doc.update(changes)
        return self.put(doc_id, doc)

    def delete(self, doc_id: str) -> None:
        with self._store.lock:
            self._docs.pop(str(doc_id), None)
            self._store.remove(self.name, str(doc_id))

    def find(self, predicate: Callable[[Doc], bool]) -> list[Doc]:
        return [doc for doc in list(self._docs.values()) if predicate(doc)]

    def first(self, predicate: Callable[[Doc], bool]) -> Doc | None:
        for doc in list(self._docs.values()):
            if predicate(doc):
                return doc
        return None

    def load(self, doc_id: str, doc: Doc) -> None:
        self._docs[doc_id] = doc


class SandboxStore:
    """Collections of JSON documents. `path=None` keeps everything in memory (tests)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.lock = threading.RLock()
        self._collections: dict[str, Collection] = {}
        self._db: sqlite3.Connection | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS docs "
                "(collection TEXT, id TEXT, body TEXT, PRIMARY KEY (collection, id))"
            )
            self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER)")
            for collection, doc_id, body in self._db.execute(
                "SELECT collection, id, body FROM docs ORDER BY rowid"
            ):
                self.collection(collection).load(doc_id, json.loads(body))
        self._counters: dict[str, int] = {}
        if self._db is not None:
            self._counters.update(dict(self._db.execute("SELECT name, value FROM counters").fetchall()))

    def collection(self, name: str) -> Collection:
        if name not in self._collections:
            self._collections[name] = Collection(self, name)
        return self._collections[name]

    def next_number(self, name: str, start: int = 1) -> int:
        """A durable sequence, for vendor-style ids and numbers."""
        with self.lock:
            value = self._counters.get(name, start - 1) + 1
            self._counters[name] = value
            if self._db is not None:
                self._db.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
            return value

    def persist(self, collection: str, rows: list[tuple[str, Doc]]) -> None:
        if self._db is None:
            return
        self._db.executemany(
            "INSERT INTO docs (collection, id, body) VALUES (?, ?, ?) "
            "ON CONFLICT(collection, id) DO UPDATE SET body = excluded.body",
            [(collection, doc_id, json.dumps(doc, default=str)) for doc_id, doc in rows],
        )

    def remove(self, collection: str, doc_id: str) -> None:
        if self._db is not None:
            self._db.execute("DELETE FROM docs WHERE collection = ? AND id = ?", (collection, doc_id))

    def reset(self) -> None:
        with self.lock:
            self._collections.clear()
            self._counters.clear()
            if self._db is not None:
                self._db.execute("DELETE FROM docs")
                self._db.execute("DELETE FROM counters")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
