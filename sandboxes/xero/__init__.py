"""A stand-in for Xero's identity service and Accounting API (UK organisation), for tests and the demo."""

from sandboxes.xero.app import XeroSandbox, create_app
from sandboxes.xero.config import RateLimitConfig, WebhookConfig, XeroSandboxConfig

__all__ = ["RateLimitConfig", "WebhookConfig", "XeroSandbox", "XeroSandboxConfig", "create_app"]
