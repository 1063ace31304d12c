"""docker-compose.yml is for our users: it must stay valid and describe the production-like topology."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pssync.workflows import search_attributes

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_file_declares_temporal_on_postgresql_ui_worker_and_ingress() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert {"postgresql", "temporal", "temporal-ui", "worker", "ingress"} <= set(services)
    assert services["temporal"]["environment"]["DB"].startswith("postgres")
    for role in ("worker", "ingress"):
        environment = services[role]["environment"]
        assert environment["PSSYNC_ENVIRONMENT"] == "production"
        assert environment["PSSYNC_TEMPORAL_ADDRESS"] == "temporal:7233"
        # Secrets pass through from the user's environment; none is written in the file.
        secrets = [name for name in environment if name.endswith(("_SECRET", "_PASSWORD", "_KEY", "_TOKEN"))]
        assert secrets and all(environment[name] is None for name in secrets)


def test_compose_setup_applies_the_schedules_and_starts_the_feed_poller_with_the_workers_settings() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    setup = services["pssync-setup"]
    script = " ".join(setup["command"])
    assert "pssync schedules apply" in script and "pssync feed start" in script
    assert setup["environment"] == services["worker"]["environment"]
    # Registered before anything starts a workflow that sets them.
    registered = " ".join(services["temporal-setup"]["command"])
    assert all(key.name in registered for key in search_attributes.ALL)


def test_compose_file_is_accepted_by_docker_compose_config() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        # .ci/run installs Debian's docker-compose; elsewhere the structural test above still runs.
        pytest.skip("docker-compose is not installed here")
    result = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
