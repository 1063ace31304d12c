"""`python -m pssync.sandbox.kantata`: serve the Kantata sandbox from PSSYNC_SANDBOX_KANTATA_* settings."""

from __future__ import annotations

import uvicorn

from pssync.sandbox.kantata.app import create_app
from pssync.sandbox.kantata.config import KantataSandboxConfig


def main() -> None:
    config = KantataSandboxConfig()
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")


if __name__ == "__main__":
    main()
