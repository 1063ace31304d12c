"""`python -m sandboxes.kantata`: serve the Kantata sandbox from PSSYNC_SANDBOX_KANTATA_* settings."""

from __future__ import annotations

import uvicorn

from sandboxes.kantata.app import create_app
from sandboxes.kantata.config import KantataSandboxConfig


def main() -> None:
    config = KantataSandboxConfig()
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")


if __name__ == "__main__":
    main()
