"""Stage 2: the template database, initialised by trytond-admin and bootstrapped once, then copied per server.

Kept as `<home>/template/tryton-template-v<N>.sqlite.bak` (not `*.sqlite`, so Tryton never lists it as a
database).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from devstack.processes import die_with_parent
from devstack.tryton_entity import bootstrap_entity
from devstack.tryton_install import DEFAULT_HOME, Progress, ensure_installed, exclusive, tell, timed
from devstack.tryton_processes import (
    copy_database,
    free_port,
    start_process,
    stop_process,
    wait_until_serving,
    write_config,
)

# Told to whoever waits on a first run. Measured on a 2-CPU development machine: 45 s (trytond-admin 39 s,
# the bootstrap 3 s).
TEMPLATE_SECONDS = 45
MODULES = (
    "account_invoice",
    "account_payment",
    "project_invoice",
    "timesheet",
    "sale_opportunity",
    "analytic_invoice",
)

DATABASE = "tryton"
ADMIN_LOGIN = "admin"
# Matches Settings.tryton_password's development default, so `make run` needs no extra configuration.
ADMIN_PASSWORD = "dev-tryton-admin"
ADMIN_EMAIL = "admin@northwind.example"

# Bump when the bootstrap (tryton_entity) changes: the template file name carries it, so a stale template
# is rebuilt.
BOOTSTRAP_VERSION = 2


def template_path(home: Path = DEFAULT_HOME) -> Path:
    return home / "template" / f"tryton-template-v{BOOTSTRAP_VERSION}.sqlite.bak"


def ensure_template(
    home: Path = DEFAULT_HOME, *, timings: dict[str, float] | None = None, progress: Progress | None = None
) -> Path:
    """The bootstrapped template database file, built once (install included when missing).

    `progress` hears a line before each slow step and when it is done; nothing when all is there.
    """
    timings = timings if timings is not None else {}
    target = template_path(home)
    if target.exists():
        return target
    started = time.monotonic()
    with exclusive(home, "template", progress):
        if not target.exists():
            _build_template(home, target, timings, progress)
    tell(progress, f"Tryton: ready in {time.monotonic() - started:.0f} s")
    return target


def _build_template(
    home: Path, target: Path, timings: dict[str, float], progress: Progress | None = None
) -> None:
    bin_dir = ensure_installed(home, timings=timings, progress=progress)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Left by a build that was killed; the lock held here means no build is using them.
    for stale in target.parent.glob("tryton-build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tell(progress, f"Tryton: initialising the template database (first run only, ~{TEMPLATE_SECONDS} s) ...")
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
        admin = subprocess.run(
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
            check=False,
            env={**os.environ, "TRYTONPASSFILE": str(passfile)},
            cwd=str(build),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent(),
        )
        if admin.returncode != 0:
            errors = admin.stderr.decode(errors="replace").strip().splitlines()[-20:]
            raise RuntimeError(f"trytond-admin exited with {admin.returncode}:\n" + "\n".join(errors))
        timed(timings, "init", started)
        log_path = build / "trytond.log"
        process = start_process(bin_dir, config, DATABASE, log_path)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_serving(url, process, log_path, 60)
            started = time.perf_counter()
            asyncio.run(
                bootstrap_entity(url=url, database=DATABASE, user=ADMIN_LOGIN, password=ADMIN_PASSWORD)
            )
            timed(timings, "bootstrap", started)
        finally:
            stop_process(process)
        partial = target.with_suffix(".partial")
        copy_database(db_dir / f"{DATABASE}.sqlite", partial)
        partial.replace(target)
