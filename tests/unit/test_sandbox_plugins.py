"""Sandboxes that plug in (sandboxes/plugin.py) join the local stack without it naming them: found by
discovery, given a port, and pointed at by the settings the stack hands every ps-sync process."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import Settings
from devstack.stack import StackConfig
from sandboxes.plugin import discover


def test_the_netsuite_sandbox_is_discovered_by_its_plugin() -> None:
    plugins = {plugin.name: plugin for plugin in discover()}
    netsuite = plugins["netsuite"]
    assert (netsuite.title, netsuite.module, netsuite.port_variable) == (
        "NetSuite",
        "sandboxes.netsuite",
        "PSSYNC_NETSUITE_PORT",
    )
    assert netsuite.settings_for("http://127.0.0.1:9") == {"netsuite_base_url": "http://127.0.0.1:9"}


def test_the_sandbox_accepts_the_credentials_the_settings_hold() -> None:
    netsuite = next(plugin for plugin in discover() if plugin.name == "netsuite")
    settings = Settings()
    environment = netsuite.environment_for(settings)
    assert environment["PSSYNC_SANDBOX_NETSUITE_ACCOUNT_ID"] == settings.netsuite_account_id
    assert (
        environment["PSSYNC_SANDBOX_NETSUITE_TOKEN_SECRET"]
        == settings.netsuite_token_secret.get_secret_value()
    )
    assert environment["PSSYNC_SANDBOX_NETSUITE_CLIENT_ID"] == settings.netsuite_client_id


def test_make_run_puts_a_plugged_in_sandbox_on_its_well_known_port_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PSSYNC_NETSUITE_PORT", raising=False)
    assert StackConfig.from_env(tmp_path).sandbox_ports["netsuite"] == 8704
    monkeypatch.setenv("PSSYNC_NETSUITE_PORT", "18704")
    config = StackConfig.from_env(tmp_path)
    assert config.sandbox_ports["netsuite"] == 18704
    assert config.settings().netsuite_base_url == "http://127.0.0.1:18704"
    assert config.app_env()["PSSYNC_NETSUITE_BASE_URL"] == "http://127.0.0.1:18704"


def test_a_stack_built_in_code_gets_a_free_port_for_a_sandbox_it_does_not_place(tmp_path: Path) -> None:
    # The benchmark builds two stacks in code: neither may take the well-known port `make run` uses.
    placed = StackConfig(data_dir=tmp_path / "a", sandbox_ports={"netsuite": 18705})
    unplaced = StackConfig(data_dir=tmp_path / "b")
    assert placed.sandbox_ports["netsuite"] == 18705
    assert unplaced.sandbox_ports["netsuite"] != 8704
    assert unplaced.settings().netsuite_base_url == f"http://127.0.0.1:{unplaced.sandbox_ports['netsuite']}"
