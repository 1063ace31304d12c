"""The sandbox writes the same exact-decimal JSON as the connector: currency as JSON numbers from digits."""

from pssync.connectors.salesforce.jsonio import dumps, loads

__all__ = ["dumps", "loads"]
