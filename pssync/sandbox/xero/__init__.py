"""A stand-in for Xero's identity service and Accounting API (UK organisation), for tests and the demo."""

from pssync.sandbox.xero.app import XeroSandbox, create_app
from pssync.sandbox.xero.config import RateLimitConfig, WebhookConfig, XeroSandboxConfig

__all__ = ["RateLimitConfig", "WebhookConfig", "XeroSandbox", "XeroSandboxConfig", "create_app"]
