"""The legal entity of the work decides which ERP books it; workflows never name an ERP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from canonical import LegalEntity
from connectors.roles import ErpConnector


class ErpRouter:
    def __init__(self, connectors: Mapping[str, ErpConnector], entities: Sequence[LegalEntity]) -> None:
        self._connectors = dict(connectors)
        self._entities = {entity.code: entity for entity in entities}

    def entity(self, code: str) -> LegalEntity:
        try:
            return self._entities[code]
        except KeyError:
            raise KeyError(f"legal entity {code!r} is not configured") from None

    def for_entity(self, code: str) -> tuple[ErpConnector, LegalEntity]:
        entity = self.entity(code)
        try:
            return self._connectors[entity.erp], entity
        except KeyError:
            raise KeyError(
                f"entity {code} books in {entity.erp!r}, which has no connector configured"
            ) from None

    def by_system(self, erp: str) -> ErpConnector:
        try:
            return self._connectors[erp]
        except KeyError:
            raise KeyError(f"no ERP connector {erp!r}; configured: {sorted(self._connectors)}") from None

    @property
    def systems(self) -> list[str]:
        return sorted(self._connectors)

    async def aclose(self) -> None:
        for connector in self._connectors.values():
            await connector.aclose()
