"""Invoices posted and posting failures, by ERP: counted around the posting activity.

A decorator, so the posting activity itself stays about posting. The ERP is the one the invoice's legal
entity books in; an entity the deployment does not know is counted under `unknown` (its failure says why).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from temporalio.exceptions import ApplicationError

from activities.erp_router import ErpRouter
from observability import metrics


class _Posted(Protocol):
    @property
    def created(self) -> bool: ...


class _RoutesErps(Protocol):
    _erps: ErpRouter


R = TypeVar("R", bound=_Posted)
Post = Callable[[Any, Any], Awaitable[R]]


def _vendor(router: ErpRouter, legal_entity: str) -> str:
    try:
        return router.entity(legal_entity).erp
    except Exception:
        return "unknown"


def counted_posting(post: Post[R]) -> Post[R]:
    @functools.wraps(post)
    async def counted(self: _RoutesErps, input: Any) -> R:
        try:
            result = await post(self, input)
        except ApplicationError as failure:
            vendor = _vendor(self._erps, input.invoice.legal_entity)
            metrics.posting_failed(
                vendor, error_type=failure.type or "ApplicationError", retryable=not failure.non_retryable
            )
            raise
        except Exception as failure:
            vendor = _vendor(self._erps, input.invoice.legal_entity)
            metrics.posting_failed(vendor, error_type=type(failure).__name__, retryable=True)
            raise
        metrics.invoice_posted(_vendor(self._erps, input.invoice.legal_entity), created=result.created)
        return result

    return counted
