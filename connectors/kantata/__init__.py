"""Kantata OX (formerly Mavenlink), the PSA: client, mapping, connector and change-feed cursor."""

from connectors.kantata.client import Envelope, KantataClient
from connectors.kantata.connector import KantataConnector
from connectors.kantata.feed import FeedCursor, FeedGap, FeedMerge, created_after_for_poll, merge

__all__ = [
    "Envelope",
    "FeedCursor",
    "FeedGap",
    "FeedMerge",
    "KantataClient",
    "KantataConnector",
    "created_after_for_poll",
    "merge",
]
