"""The trytond process and its files: config, start and stop, waiting for it to answer, database copies."""

from __future__ import annotations

import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import httpx

from devstack.processes import die_with_parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log_path: Path, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    body = {"id": 0, "method": "common.server.version", "params": []}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trytond exited with {process.returncode}:\n{tail(log_path)}")
        try:
            reply = httpx.post(f"{url}/rpc/", json=body, timeout=2.0)
            if reply.status_code == 200 and reply.json().get("result"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"trytond did not answer within {deadline_s} s:\n{tail(log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_process(bin_dir: Path, config: Path, database: str, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            [str(bin_dir / "trytond"), "-c", str(config), "-d", database],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(config.parent),
            start_new_session=True,
            # Its own session keeps a Ctrl-C meant for the caller away from it; then nothing but this
            # stops it if the caller is killed hard.
            preexec_fn=die_with_parent(),
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
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
