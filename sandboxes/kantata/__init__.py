"""A Kantata OX (formerly Mavenlink) API sandbox: `create_app(config)` returns the FastAPI app."""

from sandboxes.kantata.app import create_app
from sandboxes.kantata.config import KantataSandboxConfig

__all__ = ["KantataSandboxConfig", "create_app"]
