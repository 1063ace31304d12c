"""The Tryton devstack: a persistent database for `make run`, and the CLI the lead's devstack runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from connectors.tryton.rpc import TrytonRpc
from devstack.tryton import DEFAULT_HOME, TrytonServer, free_port, template_path

pytestmark = pytest.mark.tryton

HOME = Path(os.environ.get("PSSYNC_TRYTON_HOME", DEFAULT_HOME))


async def _login(server: TrytonServer) -> TrytonRpc:
    rpc = TrytonRpc(url=server.url, database=server.database, user=server.user, password=server.password)
    await rpc.login()
    return rpc


async def test_persistent_database_keeps_its_data_across_restarts_and_lists_only_itself(
    tryton_server: TrytonServer, tmp_path: Path
) -> None:
    # tryton_server first: it builds the template when the machine has none.
    server = TrytonServer(data_dir=tmp_path, port=free_port(), home=HOME, fresh=False)
    with server:
        rpc = await _login(server)
        (party,) = await rpc.create("party.party", [{"name": "Kept across restarts"}])
        async with httpx.AsyncClient() as client:
            databases = await client.post(
                f"{server.url}/rpc/", json={"id": 1, "method": "common.db.list", "params": []}
            )
        await rpc.aclose()
    with server:
        rpc = await _login(server)
        found = await rpc.search("party.party", [("name", "=", "Kept across restarts")])
        await rpc.aclose()

    assert found == [party]
    # The template sits outside the database folder and is not named *.sqlite: it is never served.
    assert databases.json()["result"] == ["tryton"]
    assert template_path(HOME).exists()


def test_serve_cli_runs_until_sigterm_and_stops_trytond(tryton_server: TrytonServer, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.tryton",
            "--home",
            str(HOME),
            "serve",
            "--port",
            str(port),
            "--data",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        version = httpx.post(
            f"{ready['url']}/rpc/", json={"id": 1, "method": "common.server.version", "params": []}
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert ready["url"] == f"http://127.0.0.1:{port}" and ready["database"] == "tryton"
    assert version.json()["result"].startswith("8.2")
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{ready['url']}/rpc/", json={"id": 1, "method": "common.server.version", "params": []})
    assert (tmp_path / "db" / "tryton.sqlite").exists()
