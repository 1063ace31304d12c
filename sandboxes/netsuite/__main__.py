"""`python -m sandboxes.netsuite`: serve the NetSuite sandbox with settings from PSSYNC_SANDBOX_NETSUITE_*."""

from __future__ import annotations

import uvicorn

from sandboxes.netsuite.app import create_app
from sandboxes.netsuite.config import NetSuiteSandboxConfig


def main() -> None:
    config = NetSuiteSandboxConfig()
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")


if __name__ == "__main__":
    main()
