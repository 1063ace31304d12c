"""Structured JSON logs via structlog, for our code and for the Temporal SDK's stdlib loggers alike.

Secrets and personal data never reach a log line: the redaction processor blanks them by key.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

SENSITIVE_KEYS = frozenset(
    {
        "password",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "authorization",
        "api_key",
        "email",
        "first_name",
        "last_name",
        "phone",
        "street",
        "address",
        "tax_number",
        "rate",
        "unit_price",
        "cost_rate",
        "webhook_key",
        "session",
    }
)


def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return lowered in SENSITIVE_KEYS or lowered.endswith(
        ("_secret", "_token", "_tokens", "_password", "_email", "_api_key", "_keys")
    )


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if _is_sensitive(key):
            event[key] = "[redacted]"
        elif isinstance(event[key], dict):
            event[key] = {k: ("[redacted]" if _is_sensitive(k) else v) for k, v in event[key].items()}
    return event


def _temporal_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Lift the SDK's workflow/activity context (passed as `extra`) to top-level keys."""
    record = event.get("_record")
    if record is not None:
        for attr in ("temporal_workflow", "temporal_activity"):
            context = getattr(record, attr, None)
            if isinstance(context, dict):
                for key in ("workflow_id", "run_id", "workflow_type", "activity_type", "attempt"):
                    if key in context:
                        event.setdefault(key, context[key])
    return event


def configure_logging(level: str = "INFO", *, json: bool = True, stream: TextIO | None = None) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _temporal_context,
        redact,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        # In JSON, tracebacks (exc_info, and what uvicorn and the SDK log) are rendered as text, not as an
        # object's repr; the console renderer formats them itself.
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
