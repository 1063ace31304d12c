"""A real Tryton 8.2 server on loopback, from nothing, idempotently: install, template database, serve.

Tryton is GPL: it lives in its own virtualenv (`<home>/venv`) and runs as an external process that
ps-sync talks to over JSON-RPC; nothing here imports trytond.

Three stages, each skipped when its result is already there:

1. `ensure_installed(home)`: the pinned trytond modules in `<home>/venv` (marker file lists the pins).
2. `ensure_template(home)`: `trytond-admin` initialises an SQLite database once; a temporary server is started
   on it and the EU entity is bootstrapped over JSON-RPC (company, currencies and rates, chart of accounts,
   fiscal years, taxes, products, payment terms, payment method, countries). The result is kept as
   `<home>/template/tryton-template-v<N>.sqlite.bak` (not `*.sqlite`, so Tryton never lists it as a database).
3. `TrytonServer`: copies the template to a database file (fresh per test session, or a persistent one under
   `--data` that is created once and then reused), writes the config and runs `trytond -d <db>`.

CLI: `python -m devstack.tryton prepare` and
`python -m devstack.tryton serve --port 18000 --data .data/tryton` (its database,
`.data/tryton/db/tryton.sqlite`, is created from the template on the first run and reused afterwards).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from devstack.processes import StopRequested, stop_signals
from devstack.tryton_entity import (
    ACCOUNT_CASH,
    ACCOUNT_EXPENSE,
    ACCOUNT_PAYABLE,
    ACCOUNT_RECEIVABLE,
    ACCOUNT_REVENUE_REBILLED,
    ACCOUNT_REVENUE_SERVICES,
    ACCOUNT_VAT,
    COMPANY_CURRENCY,
    COMPANY_NAME,
    COUNTRIES,
    CURRENCIES,
    PAYMENT_METHOD,
    PAYMENT_TERM_DAYS,
    PRODUCT_CONSULTING,
    PRODUCT_EXPENSES,
    TAXES,
    bootstrap_entity,
)
from devstack.tryton_install import (
    DEFAULT_HOME,
    INSTALL_SECONDS,
    PACKAGES,
    REPO_ROOT,
    TRYTON_SERIES,
    Progress,
    ensure_installed,
    log,
    timed,
    venv_bin,
)
from devstack.tryton_processes import (
    copy_database,
    free_port,
    start_process,
    stop_process,
    wait_until_serving,
    write_config,
)
from devstack.tryton_template import (
    ADMIN_EMAIL,
    ADMIN_LOGIN,
    ADMIN_PASSWORD,
    BOOTSTRAP_VERSION,
    DATABASE,
    MODULES,
    TEMPLATE_SECONDS,
    ensure_template,
    template_path,
)

# The stack, the tests and the benchmark import all of these from here.
__all__ = [
    "ACCOUNT_CASH",
    "ACCOUNT_EXPENSE",
    "ACCOUNT_PAYABLE",
    "ACCOUNT_RECEIVABLE",
    "ACCOUNT_REVENUE_REBILLED",
    "ACCOUNT_REVENUE_SERVICES",
    "ACCOUNT_VAT",
    "ADMIN_EMAIL",
    "ADMIN_LOGIN",
    "ADMIN_PASSWORD",
    "BOOTSTRAP_VERSION",
    "COMPANY_CURRENCY",
    "COMPANY_NAME",
    "COUNTRIES",
    "CURRENCIES",
    "DATABASE",
    "DEFAULT_HOME",
    "INSTALL_SECONDS",
    "MODULES",
    "PACKAGES",
    "PAYMENT_METHOD",
    "PAYMENT_TERM_DAYS",
    "PRODUCT_CONSULTING",
    "PRODUCT_EXPENSES",
    "REPO_ROOT",
    "TAXES",
    "TEMPLATE_SECONDS",
    "TRYTON_SERIES",
    "Progress",
    "TrytonServer",
    "bootstrap_entity",
    "copy_database",
    "ensure_installed",
    "ensure_template",
    "free_port",
    "main",
    "template_path",
    "venv_bin",
    "write_config",
]


@dataclass
class TrytonServer:
    """A trytond process on 127.0.0.1:`port` serving one database copied from the template.

    `fresh=True` (tests) replaces the database with a copy of the template on every start; `fresh=False`
    (`make run`) creates `<data_dir>/db/tryton.sqlite` from the template once and reuses it afterwards.
    """

    data_dir: Path
    port: int
    home: Path = DEFAULT_HOME
    fresh: bool = True
    database: str = DATABASE
    user: str = ADMIN_LOGIN
    password: str = ADMIN_PASSWORD
    timings: dict[str, float] = field(default_factory=dict)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "trytond.log"

    def start(self) -> TrytonServer:
        if self._process is not None and self._process.poll() is None:
            return self
        template = ensure_template(self.home, timings=self.timings)
        bin_dir = ensure_installed(self.home, timings=self.timings)
        db_dir = self.data_dir / "db"
        db_dir.mkdir(parents=True, exist_ok=True)
        db_file = db_dir / f"{self.database}.sqlite"
        # A kept database made from an older template lacks the modules the connector now uses.
        made_from = db_dir / f"{self.database}.template"
        if self.fresh or not db_file.exists() or not _made_from(made_from, template):
            copy_database(template, db_file)
            made_from.write_text(template.name)
        config = write_config(self.data_dir / "trytond.conf", db_dir=db_dir, port=self.port)
        started = time.perf_counter()
        self._process = start_process(bin_dir, config, self.database, self.log_path)
        try:
            wait_until_serving(self.url, self._process, self.log_path, 60)
        except BaseException:
            self.stop()
            raise
        timed(self.timings, "start", started)
        return self

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def __enter__(self) -> TrytonServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _made_from(marker: Path, template: Path) -> bool:
    return marker.exists() and marker.read_text().strip() == template.name


# -- CLI ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.tryton", description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="venv and template folder")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="install Tryton and build the template database")
    serve = commands.add_parser("serve", help="serve the persistent database until SIGTERM/SIGINT")
    serve.add_argument("--port", type=int, default=18000)
    serve.add_argument(
        "--data", type=Path, default=DEFAULT_HOME, help="config, log and db/tryton.sqlite folder"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    if args.command == "prepare":
        timings: dict[str, float] = {}
        path = ensure_template(args.home, timings=timings)
        print(json.dumps({"template": str(path), "timings_s": timings}))
        return 0

    server = TrytonServer(data_dir=args.data.resolve(), port=args.port, home=args.home, fresh=False)
    # Raising handlers, so a stop also cuts a first run's install or template build short.
    stop_signals.install()
    try:
        server.start()
        print(
            json.dumps(
                {
                    "url": server.url,
                    "database": server.database,
                    "user": server.user,
                    "pid": server.pid,
                    "timings_s": server.timings,
                }
            ),
            flush=True,
        )
        while server.running():
            time.sleep(0.5)
        log.error("trytond exited on its own; see %s", server.log_path)
        return 1
    except StopRequested:
        return 0
    finally:
        stop_signals.begin_stop()
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
