"""A Kantata OX (formerly Mavenlink) API sandbox: `create_app(config)` returns the FastAPI app."""

from pssync.sandbox.kantata.app import create_app
from pssync.sandbox.kantata.config import KantataSandboxConfig

__all__ = ["KantataSandboxConfig", "create_app"]
