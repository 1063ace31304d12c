"""`python -m sandboxes.xero`: serve the Xero sandbox with settings from PSSYNC_SANDBOX_XERO_*."""

from __future__ import annotations

import uvicorn

from sandboxes.xero.app import create_app
from sandboxes.xero.config import XeroSandboxConfig


def main() -> None:
    config = XeroSandboxConfig()
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")


if __name__ == "__main__":
    main()
