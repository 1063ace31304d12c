"""`python -m ingress`: serve the ingress with uvicorn on the configured host and port."""

from __future__ import annotations

import uvicorn

from config import Settings
from ingress.app import create_app
from observability.logging import configure_logging


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.ingress_host,
        port=settings.ingress_port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
