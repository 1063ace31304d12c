"""Stage 1: the pinned trytond modules in their own virtualenv (`<home>/venv`), installed once per pin set.

Also the helpers the stages share: the home folder, one builder at a time per home, timings and progress.
"""

from __future__ import annotations

import fcntl
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.processes import die_with_parent
from devstack.tryton_processes import tail

# The stages log as one component, whichever module they live in.
log = logging.getLogger("devstack.tryton")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOME = REPO_ROOT / ".data" / "tryton"

# Told to whoever waits on a first run (`make run` prints it). Measured on a 2-CPU development machine:
# the install 24 s (most of it downloading).
Progress = Callable[[str], None]
INSTALL_SECONDS = 25

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
    # Project and customer dimensions on invoice lines (analytic accounts).
    "trytond-analytic-account",
    "trytond-analytic-invoice",
)


def timed(timings: dict[str, float], name: str, started: float) -> None:
    timings[name] = round(time.perf_counter() - started, 2)
    log.info("tryton %s took %.2f s", name, timings[name])


def tell(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def shown(path: Path) -> str:
    """`path` as short as it can be said: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _pins() -> list[str]:
    return [f"{name}=={TRYTON_SERIES}.*" for name in PACKAGES]


def venv_bin(home: Path) -> Path:
    return home / "venv" / "bin"


@contextmanager
def exclusive(home: Path, name: str, progress: Progress | None = None) -> Iterator[None]:
    """One builder at a time per home (a test run and `make run` may start together)."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / f".{name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            tell(progress, f"Tryton: waiting for another process that is preparing {shown(home)} ...")
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


def ensure_installed(
    home: Path = DEFAULT_HOME, *, timings: dict[str, float] | None = None, progress: Progress | None = None
) -> Path:
    """Install the pinned trytond modules into `<home>/venv` unless the marker says they are there."""
    timings = timings if timings is not None else {}
    if _installed(home):
        return venv_bin(home)
    with exclusive(home, "install", progress):
        if not _installed(home):
            tell(
                progress,
                f"Tryton: installing trytond {TRYTON_SERIES} into {shown(home / 'venv')} "
                f"(first run only, ~{INSTALL_SECONDS} s) ...",
            )
            _install(home, timings)
            tell(progress, f"Tryton: installed in {timings['install']:.0f} s")
    return venv_bin(home)


def _install(home: Path, timings: dict[str, float]) -> None:
    wanted = _pins()
    started = time.perf_counter()
    # pip's output goes to a file: on the terminal it would bury the stack's own lines.
    log_path = home / "install.log"
    log_path.write_bytes(b"")
    # A venv without pip is what a first run stopped halfway leaves behind.
    if not (venv_bin(home) / "pip").exists():
        run_logged([sys.executable, "-m", "venv", "--clear", str(home / "venv")], log_path)
    run_logged(
        [str(venv_bin(home) / "python"), "-m", "pip", "install", "--disable-pip-version-check", *wanted],
        log_path,
    )
    (home / "venv" / ".pssync-tryton-pins.json").write_text(json.dumps(wanted))
    timed(timings, "install", started)


def run_logged(argv: list[str], log_path: Path) -> None:
    with log_path.open("ab") as log_file:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),
        )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:4])} ... exited with {done.returncode} (see {log_path}):\n{tail(log_path, 15)}"
        )
