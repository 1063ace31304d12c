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

CLI: `python -m pssync.devstack.tryton prepare` and
`python -m pssync.devstack.tryton serve --port 18000 --data .data/tryton` (its database,
`.data/tryton/db/tryton.sqlite`, is created from the template on the first run and reused afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from pssync.connectors.tryton.connector import (
    DEFAULT_CONSULTING_PRODUCT,
    DEFAULT_EXPENSES_PRODUCT,
    DEFAULT_PAYMENT_METHOD,
)
from pssync.connectors.tryton.rpc import TrytonRpc, view_values

log = logging.getLogger("pssync.devstack.tryton")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_HOME = REPO_ROOT / ".data" / "tryton"

TRYTON_SERIES = "8.2"
PACKAGES = (
    "trytond",
    "trytond-company",
    "trytond-party",
    "trytond-currency",
    "trytond-account",
    "trytond-account-invoice",
    "trytond-account-payment",
    "trytond-project",
    "trytond-timesheet",
    "trytond-project-invoice",
    "trytond-sale-opportunity",
)
MODULES = ("account_invoice", "account_payment", "project_invoice", "timesheet", "sale_opportunity")

DATABASE = "tryton"
ADMIN_LOGIN = "admin"
# Matches Settings.tryton_password's development default, so `make run` needs no extra configuration.
ADMIN_PASSWORD = "dev-tryton-admin"
ADMIN_EMAIL = "admin@northwind.example"

# Bump when the bootstrap below changes: the template file name carries it, so a stale template is rebuilt.
BOOTSTRAP_VERSION = 1

COMPANY_NAME = "Northwind Consulting B.V."
COMPANY_CURRENCY = "EUR"
# Rates are units of the currency per 1 EUR: Tryton converts with amount x to.rate / from.rate.
CURRENCIES = (
    ("EUR", "Euro", "€", Decimal("1")),
    ("GBP", "Pound Sterling", "£", Decimal("0.85")),
    ("USD", "US Dollar", "$", Decimal("1.08")),
)
# The countries customers are billed in (trytond_import_countries would need the network, so few are made).
# fmt: off
COUNTRIES = (
    ("AT", "Austria"), ("BE", "Belgium"), ("BG", "Bulgaria"), ("CH", "Switzerland"), ("CY", "Cyprus"),
    ("CZ", "Czechia"), ("DE", "Germany"), ("DK", "Denmark"), ("EE", "Estonia"), ("ES", "Spain"),
    ("FI", "Finland"), ("FR", "France"), ("GB", "United Kingdom"), ("GR", "Greece"), ("HR", "Croatia"),
    ("HU", "Hungary"), ("IE", "Ireland"), ("IT", "Italy"), ("LT", "Lithuania"), ("LU", "Luxembourg"),
    ("LV", "Latvia"), ("MT", "Malta"), ("NL", "Netherlands"), ("NO", "Norway"), ("PL", "Poland"),
    ("PT", "Portugal"), ("RO", "Romania"), ("SE", "Sweden"), ("SI", "Slovenia"), ("SK", "Slovakia"),
    ("US", "United States"),
)
# fmt: on
# (name, description, rate); names as the EU entity's LegalEntity.tax_codes spell them.
TAXES = (("VAT21", "VAT 21%", Decimal("0.21")), ("VAT0", "VAT 0%", Decimal("0")))
PAYMENT_TERM_DAYS = (0, 7, 14, 30, 45, 60, 90)
# Codes of the generic English chart (account.account_template_root_en).
ACCOUNT_RECEIVABLE = "1.2.1"
ACCOUNT_PAYABLE = "2.1.1"
ACCOUNT_REVENUE_SERVICES = "4.1.2"
ACCOUNT_REVENUE_REBILLED = "4.3.3"
ACCOUNT_EXPENSE = "5.1.3"
ACCOUNT_CASH = "1.1.1"
ACCOUNT_VAT = "2.2.3"
# The names the connector looks for, so the bootstrap and the connector cannot drift apart.
PRODUCT_CONSULTING = DEFAULT_CONSULTING_PRODUCT
PRODUCT_EXPENSES = DEFAULT_EXPENSES_PRODUCT
PAYMENT_METHOD = DEFAULT_PAYMENT_METHOD


def _timed(timings: dict[str, float], name: str, started: float) -> None:
    timings[name] = round(time.perf_counter() - started, 2)
    log.info("tryton %s took %.2f s", name, timings[name])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- 1. install --------------------------------------------------------------------------------------------


def _pins() -> list[str]:
    return [f"{name}=={TRYTON_SERIES}.*" for name in PACKAGES]


def venv_bin(home: Path) -> Path:
    return home / "venv" / "bin"


@contextmanager
def _exclusive(home: Path, name: str) -> Iterator[None]:
    """One builder at a time per home (a test run and `make run` may start together)."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _installed(home: Path) -> bool:
    marker = home / "venv" / ".pssync-tryton-pins.json"
    return (
        marker.exists()
        and json.loads(marker.read_text()) == _pins()
        and (venv_bin(home) / "trytond").exists()
    )


def ensure_installed(home: Path = DEFAULT_HOME, *, timings: dict[str, float] | None = None) -> Path:
    """Install the pinned trytond modules into `<home>/venv` unless the marker says they are there."""
    timings = timings if timings is not None else {}
    if _installed(home):
        return venv_bin(home)
    with _exclusive(home, "install"):
        if not _installed(home):
            _install(home, timings)
    return venv_bin(home)


def _install(home: Path, timings: dict[str, float]) -> None:
    wanted = _pins()
    started = time.perf_counter()
    if not (venv_bin(home) / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    subprocess.run(
        [
            str(venv_bin(home) / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *wanted,
        ],
        check=True,
    )
    (home / "venv" / ".pssync-tryton-pins.json").write_text(json.dumps(wanted))
    _timed(timings, "install", started)


# -- config and process ------------------------------------------------------------------------------------


def write_config(path: Path, *, db_dir: Path, port: int) -> Path:
    path.write_text(
        "[database]\n"
        "uri = sqlite://\n"
        f"path = {db_dir}\n"
        "\n[web]\n"
        f"listen = 127.0.0.1:{port}\n"
        "\n[session]\n"
        # Idle sessions end after this (default 300 s); the connector logs in again on the 401 that follows.
        "timeout = 3600\n"
        # The default (5 failed logins, then 429) trips over tests that check a wrong password.
        "max_attempt = 100\n"
    )
    return path


def _wait_until_serving(
    url: str, process: subprocess.Popen[bytes], log_path: Path, deadline_s: float
) -> None:
    deadline = time.monotonic() + deadline_s
    body = {"id": 0, "method": "common.server.version", "params": []}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trytond exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            reply = httpx.post(f"{url}/rpc/", json=body, timeout=2.0)
            if reply.status_code == 200 and reply.json().get("result"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"trytond did not answer within {deadline_s} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _start_process(bin_dir: Path, config: Path, database: str, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [str(bin_dir / "trytond"), "-c", str(config), "-d", database],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(config.parent),
            start_new_session=True,
        )


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def copy_database(source: Path, target: Path) -> None:
    """Copy an SQLite database that trytond (which runs it in WAL mode) has stopped using.

    The last transactions may still sit in `<source>-wal`: checkpointing folds them into the main file,
    which is then the whole database. A stale `<target>-wal` would be replayed onto the copy, so it goes.
    """
    with closing(sqlite3.connect(source)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(source, target)


# -- 2. template -------------------------------------------------------------------------------------------


def template_path(home: Path = DEFAULT_HOME) -> Path:
    return home / "template" / f"tryton-template-v{BOOTSTRAP_VERSION}.sqlite.bak"


def ensure_template(home: Path = DEFAULT_HOME, *, timings: dict[str, float] | None = None) -> Path:
    """The bootstrapped template database file, built once (install included when missing)."""
    timings = timings if timings is not None else {}
    target = template_path(home)
    if target.exists():
        return target
    with _exclusive(home, "template"):
        if not target.exists():
            _build_template(home, target, timings)
    return target


def _build_template(home: Path, target: Path, timings: dict[str, float]) -> None:
    bin_dir = ensure_installed(home, timings=timings)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tryton-build-", dir=target.parent) as build_dir:
        build = Path(build_dir)
        db_dir = build / "db"
        db_dir.mkdir()
        # The SQLite backend opens <path>/<database>.sqlite and will not create it.
        (db_dir / f"{DATABASE}.sqlite").touch()
        port = free_port()
        config = write_config(build / "trytond.conf", db_dir=db_dir, port=port)
        passfile = build / "admin.pass"
        passfile.write_text(ADMIN_PASSWORD + "\n")
        started = time.perf_counter()
        # --email is what keeps a first init non-interactive (without it trytond-admin prompts and dies).
        subprocess.run(
            [
                str(bin_dir / "trytond-admin"),
                "-c",
                str(config),
                "-d",
                DATABASE,
                "-u",
                *MODULES,
                "--activate-dependencies",
                "--email",
                ADMIN_EMAIL,
            ],
            check=True,
            env={**os.environ, "TRYTONPASSFILE": str(passfile)},
            cwd=str(build),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _timed(timings, "init", started)
        log_path = build / "trytond.log"
        process = _start_process(bin_dir, config, DATABASE, log_path)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_serving(url, process, log_path, 60)
            started = time.perf_counter()
            asyncio.run(
                bootstrap_entity(url=url, database=DATABASE, user=ADMIN_LOGIN, password=ADMIN_PASSWORD)
            )
            _timed(timings, "bootstrap", started)
        finally:
            _stop_process(process)
        partial = target.with_suffix(".partial")
        copy_database(db_dir / f"{DATABASE}.sqlite", partial)
        partial.replace(target)


async def bootstrap_entity(*, url: str, database: str, user: str, password: str) -> None:
    """Set up the EU entity's books on a freshly initialised database, over JSON-RPC only."""
    rpc = TrytonRpc(url=url, database=database, user=user, password=password, timeout=120.0)
    try:
        await _bootstrap(rpc)
    finally:
        await rpc.aclose()


async def _bootstrap(rpc: TrytonRpc) -> None:
    today = dt.datetime.now(dt.UTC).date()
    await rpc.login()
    assert rpc.user_id is not None

    rates_from = dt.date(today.year - 2, 1, 1)
    currency_ids: dict[str, int] = {}
    for code, name, symbol, rate in CURRENCIES:
        (currency_ids[code],) = await rpc.create(
            "currency.currency",
            [
                {
                    "name": name,
                    "code": code,
                    "symbol": symbol,
                    "rounding": Decimal("0.01"),
                    "digits": 2,
                    "rates": [["create", [{"date": rates_from, "rate": rate}]]],
                }
            ],
        )

    await rpc.create("country.country", [{"code": code, "name": name} for code, name in COUNTRIES])
    (nl,) = await rpc.search("country.country", [("code", "=", "NL")])

    (company_party,) = await rpc.create(
        "party.party",
        [
            {
                "name": COMPANY_NAME,
                "addresses": [
                    [
                        "create",
                        [
                            {
                                "street": "Herengracht 100",
                                "postal_code": "1015 BS",
                                "city": "Amsterdam",
                                "country": nl,
                            }
                        ],
                    ]
                ],
            }
        ],
    )
    (company,) = await rpc.create(
        "company.company",
        [
            {
                "party": company_party,
                "currency": currency_ids[COMPANY_CURRENCY],
                # Lets void_invoice cancel a posted customer invoice (by default Tryton wants a credit note).
                "cancel_invoice_out": True,
            }
        ],
    )
    await rpc.write("res.user", [rpc.user_id], {"companies": [["add", [company]]], "company": company})
    await rpc.refresh_context()

    async def account(code: str) -> int:
        found = await rpc.search("account.account", [("company", "=", company), ("code", "=", code)], limit=1)
        if not found:
            raise RuntimeError(f"the chart has no account {code}")
        return found[0]

    root_template = await rpc.ref("account.account_template_root_en")
    results: list[Any] = []

    async def properties(previous: dict[str, Any]) -> dict[str, Any]:
        return {
            "properties": {
                **view_values(previous),
                "account_receivable": await account(ACCOUNT_RECEIVABLE),
                "account_payable": await account(ACCOUNT_PAYABLE),
                "category_account_revenue": await account(ACCOUNT_REVENUE_SERVICES),
                "category_account_expense": await account(ACCOUNT_EXPENSE),
            }
        }

    session_id, start_state, _ = await rpc.call("wizard.account.create_chart.create")
    try:
        results.append(await rpc.call("wizard.account.create_chart.execute", session_id, {}, start_state))
        results.append(await rpc.call("wizard.account.create_chart.execute", session_id, {}, "account"))
        results.append(
            await rpc.call(
                "wizard.account.create_chart.execute",
                session_id,
                {"account": {"account_template": root_template, "company": company}},
                "create_account",
            )
        )
        await rpc.call(
            "wizard.account.create_chart.execute",
            session_id,
            await properties(results[-1]),
            "create_properties",
        )
    finally:
        await rpc.call("wizard.account.create_chart.delete", session_id)

    move_type = await rpc.ref("account.sequence_type_account_move")
    invoice_type = await rpc.ref("account_invoice.sequence_type_account_invoice")
    for year in (today.year - 1, today.year, today.year + 1):
        move_seq, invoice_seq, credit_seq = await rpc.create(
            "ir.sequence.strict",
            [
                {
                    "name": f"Moves {year}",
                    "company": company,
                    "sequence_type": move_type,
                    "prefix": f"M{year}-",
                },
                {
                    "name": f"Invoices {year}",
                    "company": company,
                    "sequence_type": invoice_type,
                    "prefix": f"NW-EU-{year}-",
                    "padding": 5,
                },
                {
                    "name": f"Credit notes {year}",
                    "company": company,
                    "sequence_type": invoice_type,
                    "prefix": f"NW-EU-CN-{year}-",
                    "padding": 5,
                },
            ],
        )
        (fiscal_year,) = await rpc.create(
            "account.fiscalyear",
            [
                {
                    "name": str(year),
                    "company": company,
                    "move_sequence": move_seq,
                    "start_date": dt.date(year, 1, 1),
                    "end_date": dt.date(year, 12, 31),
                    "invoice_sequences": [
                        [
                            "create",
                            [
                                {
                                    "company": company,
                                    "out_invoice_sequence": invoice_seq,
                                    "out_credit_note_sequence": credit_seq,
                                    "in_invoice_sequence": invoice_seq,
                                    "in_credit_note_sequence": credit_seq,
                                }
                            ],
                        ]
                    ],
                }
            ],
        )
        await rpc.call("model.account.fiscalyear.create_period", [fiscal_year])

    vat_account = await account(ACCOUNT_VAT)
    tax_ids = await rpc.create(
        "account.tax",
        [
            {
                "name": name,
                "description": description,
                "type": "percentage",
                "rate": rate,
                "company": company,
                "invoice_account": vat_account,
                "credit_note_account": vat_account,
            }
            for name, description, rate in TAXES
        ],
    )
    default_tax = tax_ids[0]

    time_category = await rpc.ref("product.uom_cat_time")
    unit_category = await rpc.ref("product.uom_cat_unit")
    # Tryton's own Hour and Unit keep 2 and 0 decimals; time is billed to 4 (0.3333 h of a retainer).
    hour, unit = await rpc.create(
        "product.uom",
        [
            {
                "name": "Billable hour",
                "symbol": "bh",
                "category": time_category,
                "factor": 1.0,
                "rate": 1.0,
                "rounding": 0.0001,
                "digits": 4,
            },
            {
                "name": "Billable unit",
                "symbol": "bu",
                "category": unit_category,
                "factor": 1.0,
                "rate": 1.0,
                "rounding": 0.0001,
                "digits": 4,
            },
        ],
    )
    services, rebilled = await rpc.create(
        "product.category",
        [
            {
                "name": "Professional services",
                "accounting": True,
                "account_revenue": await account(ACCOUNT_REVENUE_SERVICES),
                "account_expense": await account(ACCOUNT_EXPENSE),
                "customer_taxes": [["add", [default_tax]]],
            },
            {
                "name": "Re-billed expenses",
                "accounting": True,
                "account_revenue": await account(ACCOUNT_REVENUE_REBILLED),
                "account_expense": await account(ACCOUNT_EXPENSE),
                "customer_taxes": [["add", [default_tax]]],
            },
        ],
    )
    await rpc.create(
        "product.template",
        [
            {
                "name": PRODUCT_CONSULTING,
                "type": "service",
                "default_uom": hour,
                "sale_uom": hour,
                "salable": True,
                "list_price": Decimal("0"),
                "account_category": services,
                "products": [["create", [{}]]],
            },
            {
                "name": PRODUCT_EXPENSES,
                "type": "service",
                "default_uom": unit,
                "sale_uom": unit,
                "salable": True,
                "list_price": Decimal("0"),
                "account_category": rebilled,
                "products": [["create", [{}]]],
            },
        ],
    )

    await rpc.create(
        "account.invoice.payment_term",
        [
            {
                "name": f"{days} days",
                "lines": [
                    ["create", [{"type": "remainder", "relativedeltas": [["create", [{"days": days}]]]}]]
                ],
            }
            for days in PAYMENT_TERM_DAYS
        ],
    )

    (cash_journal,) = await rpc.search("account.journal", [("type", "=", "cash")], limit=1)
    cash = await account(ACCOUNT_CASH)
    await rpc.create(
        "account.invoice.payment.method",
        [
            {
                "name": PAYMENT_METHOD,
                "company": company,
                "journal": cash_journal,
                "credit_account": cash,
                "debit_account": cash,
            }
        ],
    )


# -- 3. server ---------------------------------------------------------------------------------------------


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
        if self.fresh or not db_file.exists():
            copy_database(template, db_file)
        config = write_config(self.data_dir / "trytond.conf", db_dir=db_dir, port=self.port)
        started = time.perf_counter()
        self._process = _start_process(bin_dir, config, self.database, self.log_path)
        try:
            _wait_until_serving(self.url, self._process, self.log_path, 60)
        except BaseException:
            self.stop()
            raise
        _timed(self.timings, "start", started)
        return self

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is not None:
            _stop_process(self._process)
            self._process = None

    def __enter__(self) -> TrytonServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# -- CLI ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pssync.devstack.tryton", description=__doc__.split("\n")[0]
    )
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
    stop = False

    def _request_stop(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    with server:
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
        while not stop:
            if not server.running():
                log.error("trytond exited on its own; see %s", server.log_path)
                return 1
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
