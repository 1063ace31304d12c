"""The legal entity of the work decides which ERP books it; workflows never name an ERP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from temporalio.exceptions import ApplicationError

from canonical import LegalEntity
from connectors.roles import ErpConnector


def _not_configured(message: str) -> ApplicationError:
    # No retry can configure an entity or install a connector: the activity fails at once, and the workflow
    # turns it into an exception for a person, instead of backing off for hours first.
    return ApplicationError(message, type="NotConfigured", non_retryable=True)


class ErpRouter:
    def __init__(self, connectors: Mapping[str, ErpConnector], entities: Sequence[LegalEntity]) -> None:
        self._connectors = dict(connectors)
        self._entities = {entity.code: entity for entity in entities}

    def entity(self, code: str) -> LegalEntity:
        try:
            return self._entities[code]
        except KeyError:
            raise _not_configured(f"legal entity {code!r} is not configured") from None

    def for_entity(self, code: str) -> tuple[ErpConnector, LegalEntity]:
        entity = self.entity(code)
        try:
            return self._connectors[entity.erp], entity
        except KeyError:
            raise _not_configured(
                f"entity {code} books in {entity.erp!r}, which has no connector configured"
            ) from None

    def by_system(self, erp: str) -> ErpConnector:
        try:
            return self._connectors[erp]
        except KeyError:
            raise _not_configured(
                f"no ERP connector {erp!r}; configured: {sorted(self._connectors)}"
            ) from None

    @property
    def systems(self) -> list[str]:
        return sorted(self._connectors)

    async def aclose(self) -> None:
        for connector in self._connectors.values():
            await connector.aclose()
