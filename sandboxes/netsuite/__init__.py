"""A stand-in for one NetSuite account's SuiteTalk REST web services (record API, SuiteQL, both auth schemes),
for tests and the demo. Written from NetSuite's documentation; it imports nothing of ps-sync."""

from sandboxes.netsuite.app import create_app
from sandboxes.netsuite.config import GovernanceConfig, NetSuiteSandboxConfig
from sandboxes.netsuite.sandbox import NetSuiteSandbox

__all__ = ["GovernanceConfig", "NetSuiteSandbox", "NetSuiteSandboxConfig", "create_app"]
