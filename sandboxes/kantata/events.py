"""The Subscribed Events log: what `GET /subscribed_events` reads.

Kantata keeps up to 9 days of events, lets clients filter by `created_after`, `event_types`, `subject_type`
and warns that events "may be generated out of order" because of the lag between a change and its event
(https://developer.kantata.com/kantata/specification/events/get-subscribed-events). The log reproduces the
lag on demand: an event recorded at `created_at` only becomes visible some seeded moments later, so a poller
can see a later event before an earlier one, exactly the case its overlap window exists for.
"""

from __future__ import annotations

import bisect
import heapq
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sandboxes.kantata.clock import SandboxClock, iso
from sandboxes.store import Collection

Doc = dict[str, Any]

# The payload fields are only returned when asked for through `optional_fields`.
PAYLOAD_FIELDS = ("previous_payload", "current_payload", "payload_changes")


@dataclass(frozen=True)
class _Entry:
    created_ts: float
    visible_ts: float
    seq: int
    event_id: str
    event_type: str
    subject_type: str
    subject_id: str
    user_id: str


class EventLog:
    def __init__(
        self,
        collection: Collection,
        clock: SandboxClock,
        *,
        account_id: str,
        new_id: Callable[[], str],
        draw: Callable[[], float],
        retention: timedelta,
    ) -> None:
        self._docs = collection
        self._clock = clock
        self._account_id = account_id
        self._new_id = new_id
        self._draw = draw
        self.retention = retention
        self.max_lag_seconds = 0.0
        self._entries: list[_Entry] = []
        self._keys: list[tuple[float, int]] = []
        # The same, per event type: a poller filtering on a few types reads only those.
        self._typed: dict[str, tuple[list[tuple[float, int]], list[_Entry]]] = {}
        self._seq = 0
        # Pollers page through the same query many times; remembering the selection keeps paging cheap.
        self._cache: dict[tuple[Any, ...], list[str]] = {}
        for doc in collection:
            self._index(doc)

    def _index(self, doc: Doc) -> None:
        self._seq += 1
        entry = _Entry(
            created_ts=float(doc["_created_ts"]),
            visible_ts=float(doc["_visible_ts"]),
            seq=self._seq,
            event_id=doc["id"],
            event_type=doc["event_type"],
            subject_type=doc["subject_type"],
            subject_id=str(doc["subject_id"]),
            user_id=str(doc.get("user_id")),
        )
        key = (entry.created_ts, entry.seq)
        typed = self._typed.setdefault(entry.event_type, ([], []))
        for keys, entries in ((self._keys, self._entries), typed):
            position = bisect.bisect_right(keys, key)
            keys.insert(position, key)
            entries.insert(position, entry)

    def __len__(self) -> int:
        return len(self._entries)

    def record(
        self,
        event_type: str,
        subject_type: str,
        subject_id: str,
        *,
        user_id: str,
        previous: Doc | None,
        current: Doc | None,
    ) -> Doc | None:
        return self.record_many([(event_type, subject_type, subject_id, previous, current)], user_id=user_id)[
            0
        ]

    def record_many(
        self,
        changes: Iterable[tuple[str, str, str, Doc | None, Doc | None]],
        *,
        user_id: str,
    ) -> list[Doc | None]:
        """Record one event per change; an update that changed nothing records nothing (None)."""
        now = self._clock.now()
        recorded: list[Doc | None] = []
        rows: list[tuple[str, Doc]] = []
        for event_type, subject_type, subject_id, previous, current in changes:
            payload_changes = _diff(previous, current)
            if previous is not None and current is not None and not payload_changes:
                recorded.append(None)
                continue
            lag = self._draw() * self.max_lag_seconds if self.max_lag_seconds else 0.0
            doc: Doc = {
                "id": self._new_id(),
                "account_id": int(self._account_id),
                "event_type": event_type,
                "subject_type": subject_type,
                "subject_id": int(subject_id),
                "subject_changed_at": iso(now),
                "created_at": iso(now),
                "user_id": int(user_id),
                # Kept to the second, as shown: `created_after` compares with what clients were given.
                "_created_ts": float(int(now.timestamp())),
                "_visible_ts": now.timestamp() + lag,
                # Kept as JSON text: 100,000 seeded entries make 100,000 events, and text is compact.
                "_payloads": json.dumps(
                    {
                        "previous_payload": previous,
                        "current_payload": current,
                        "payload_changes": payload_changes,
                    },
                    default=str,
                ),
            }
            rows.append((doc["id"], doc))
            recorded.append(doc)
        if rows:
            self._docs.put_many(rows)
            for _, doc in rows:
                self._index(doc)
        return recorded

    def select(
        self,
        *,
        created_after: datetime | None,
        created_before: datetime | None,
        event_types: set[str] | None,
        subject_type: str | None,
        subject_ids: set[str] | None,
        user_ids: set[str] | None,
        only: set[str] | None,
        descending: bool,
    ) -> list[str]:
        now = self._clock.now()
        floor = (now - self.retention).timestamp()
        key = (
            created_after,
            created_before,
            _frozen(event_types),
            subject_type,
            _frozen(subject_ids),
            _frozen(user_ids),
            _frozen(only),
            descending,
            len(self._entries),
            int(floor),
            int(now.timestamp()) if self.max_lag_seconds else 0,
        )
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        low = floor if created_after is None else max(floor, created_after.timestamp())
        # created_after is strict: an event stamped exactly at the instant was already seen by that caller.
        ceiling = None if created_before is None else created_before.timestamp()
        now_ts = now.timestamp()
        ids: list[str] = []
        for entry in self._candidates(low, event_types):
            if ceiling is not None and entry.created_ts >= ceiling:
                break
            if entry.visible_ts > now_ts:
                continue
            if event_types is not None and entry.event_type not in event_types:
                continue
            if subject_type is not None and entry.subject_type != subject_type:
                continue
            if subject_ids is not None and entry.subject_id not in subject_ids:
                continue
            if user_ids is not None and entry.user_id not in user_ids:
                continue
            if only is not None and entry.event_id not in only:
                continue
            ids.append(entry.event_id)
        if descending:
            ids.reverse()
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = ids
        return ids

    def _candidates(self, low: float, event_types: set[str] | None) -> Iterable[_Entry]:
        """Entries created after `low`, oldest first; through the per-type lists when types are given."""
        bound = (low, 1 << 62)
        if event_types is None:
            return self._entries[bisect.bisect_right(self._keys, bound) :]
        streams = []
        for event_type in sorted(event_types):
            keys, entries = self._typed.get(event_type, ([], []))
            streams.append(entries[bisect.bisect_right(keys, bound) :])
        if len(streams) == 1:
            return streams[0]
        return heapq.merge(*streams, key=lambda entry: (entry.created_ts, entry.seq))

    def public(self, event_id: str, optional_fields: set[str]) -> Doc:
        doc = self._docs.get(event_id)
        assert doc is not None
        out = {key: value for key, value in doc.items() if not key.startswith("_")}
        wanted = optional_fields.intersection(PAYLOAD_FIELDS)
        if wanted:
            payloads = json.loads(doc["_payloads"])
            for name in wanted:
                out[name] = payloads[name]
        return out

    def reset(self) -> None:
        self._entries.clear()
        self._keys.clear()
        self._typed.clear()
        self._cache.clear()


def _frozen(values: set[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _diff(previous: Doc | None, current: Doc | None) -> Doc:
    if previous is None or current is None:
        return {}
    changes: Doc = {}
    for key in sorted(set(previous) | set(current)):
        if key in ("updated_at",):
            continue
        before, after = previous.get(key), current.get(key)
        if before != after:
            changes[key] = [before, after]
    return changes
