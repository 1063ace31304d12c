"""Everything a connector builds on: role protocols, the error taxonomy, the HTTP layer, paging."""

from connectors.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    FieldError,
    NotFound,
    RateLimited,
    Rejected,
    Timeout,
    Unavailable,
)
from connectors.http import OAuth2ClientCredentials, build_client, generic_status_error, send
from connectors.paging import Page
from connectors.roles import CrmConnector, ErpConnector, PsaConnector

__all__ = [
    "AuthFailed",
    "Conflict",
    "ConnectorError",
    "CrmConnector",
    "ErpConnector",
    "FieldError",
    "NotFound",
    "OAuth2ClientCredentials",
    "Page",
    "PsaConnector",
    "RateLimited",
    "Rejected",
    "Timeout",
    "Unavailable",
    "build_client",
    "generic_status_error",
    "send",
]
