"""What every part of the Kantata connector shares: the client, argument checks and the custom field ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import httpx

from connectors.errors import FieldError, Rejected
from connectors.kantata.client import SYSTEM, KantataClient
from connectors.kantata.fields import WORKSPACE_CUSTOM_FIELDS

# Ids per `only=` request, to keep URLs a sane size.
ID_CHUNK = 200


def rejected(message: str, field: str) -> Rejected:
    return Rejected(message, system=SYSTEM, field_errors=[FieldError(field=field, message=message)])


def chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def plain_ref(value: str, field: str) -> str:
    # Kantata's `*_refs` filters split on commas, so a comma would silently look up two references.
    if not value or "," in value:
        raise rejected(f"{field} must be non-empty and free of commas, got {value!r}", field)
    return value


class KantataAccess:
    """The base of the connector's parts (projects, billable work, the connector itself)."""

    system = SYSTEM

    def __init__(
        self, *, base_url: str, client_id: str, client_secret: str, http: httpx.AsyncClient | None = None
    ) -> None:
        self._client = KantataClient(
            base_url=base_url, client_id=client_id, client_secret=client_secret, http=http
        )
        self._field_ids: dict[str, str] | None = None

    @property
    def client(self) -> KantataClient:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _require_fields(self) -> dict[str, str]:
        if self._field_ids is None:
            records, _ = await self._client.all_records("/custom_fields", {"subject_types": "Workspace"})
            self._field_ids = {record["name"]: str(record["id"]) for record in records}
        missing = [name for name, _ in WORKSPACE_CUSTOM_FIELDS if name not in self._field_ids]
        if missing:
            self._field_ids = None
            raise rejected(
                "the Kantata account lacks the project custom fields ps-sync needs: " + ", ".join(missing),
                "custom_fields",
            )
        return self._field_ids
