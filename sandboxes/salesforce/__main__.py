"""`python -m sandboxes.salesforce` serves the sandbox configured from PSSYNC_SANDBOX_SALESFORCE_*."""

from __future__ import annotations

import uvicorn

from sandboxes.salesforce.app import create_app
from sandboxes.salesforce.config import SalesforceSandboxConfig


def main() -> None:
    config = SalesforceSandboxConfig()
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="info")


if __name__ == "__main__":
    main()
