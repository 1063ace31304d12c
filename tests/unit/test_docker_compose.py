"""docker-compose.yml is for our users: a production topology that starts, with every secret from the
environment (a missing one is named by `docker-compose config`, before anything runs)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import SecretBytes, SecretStr
from pydantic.fields import FieldInfo

from config import Settings
from config.settings import DEV_SECRET_PREFIX
from connectors.xero.pacing import XERO_MINUTE_LIMIT
from ingress.app import create_app
from ingress.codec_server import router as codec_router
from runs import search_attributes

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / "production.env.example"

PSSYNC_SERVICES = ("worker", "ingress", "pssync-setup")
# Xero's calls in progress at once per tenant (developer.xero.com/documentation/guides/oauth2/limits).
XERO_CONCURRENT_LIMIT = 5
# Run to completion and exit; everything else runs for good.
ONE_SHOT = {"temporal-schema", "temporal-setup", "pssync-setup"}
# How a field is known to be a secret when Settings types none as SecretStr.
SECRET_SUFFIXES = ("_secret", "_password", "_key", "_keys", "_token", "_tokens")
# The compose file's own secrets, beside the Settings fields: the PostgreSQL password, in several spellings.
SECRET_ENV_SUFFIXES = ("_SECRET", "_PASSWORD", "_PWD", "_KEY", "_KEYS", "_TOKEN", "_TOKENS")
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


def services() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return loaded


def _is_secret_type(annotation: Any) -> bool:
    return any(kind in (SecretStr, SecretBytes) for kind in (annotation, *get_args(annotation)))


def _defaults_to_a_placeholder(field: FieldInfo) -> bool:
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr | SecretBytes):
        default = default.get_secret_value()
    return default is not None and DEV_SECRET_PREFIX in str(default)


def secret_fields() -> list[str]:
    """The secrets production must be given: those whose development placeholder it refuses. An optional
    secret (None by default, such as a Temporal Cloud API key) is left to the deployments that need it."""
    typed = [
        name
        for name, field in Settings.model_fields.items()
        if _is_secret_type(field.annotation) and _defaults_to_a_placeholder(field)
    ]
    return typed or [name for name in Settings.model_fields if name.endswith(SECRET_SUFFIXES)]


def env_name(field: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def secret_env_names() -> list[str]:
    return [*(env_name(field) for field in secret_fields()), "POSTGRES_PASSWORD"]


def passes_through(value: Any, name: str) -> bool:
    """`${NAME:?why}` or `${NAME?why}`: taken from the environment, no default, refused when missing."""
    return isinstance(value, str) and re.fullmatch(rf"\$\{{{name}:?\?[^}}]*\}}", value) is not None


def example_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def worker_replicas(all_services: dict[str, Any]) -> int:
    return sum(
        service.get("deploy", {}).get("replicas", 1)
        for service in all_services.values()
        if service.get("command") == ["python", "-m", "worker"]
    )


def test_compose_file_declares_the_production_topology() -> None:
    all_services = services()
    assert {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "worker",
        "ingress",
        "pssync-setup",
    } <= set(all_services)
    assert all_services["temporal"]["environment"]["DB"] == "postgres12"
    for role in PSSYNC_SERVICES:
        environment = all_services[role]["environment"]
        assert environment["PSSYNC_ENVIRONMENT"] == "production"
        assert environment["PSSYNC_TEMPORAL_ADDRESS"] == "temporal:7233"


def test_temporal_schema_is_set_up_by_temporal_sql_tool_not_by_the_auto_setup_image() -> None:
    all_services = services()
    assert not [name for name, service in all_services.items() if "auto-setup" in service.get("image", "")]
    server, schema = all_services["temporal"], all_services["temporal-schema"]
    assert server["image"].startswith("temporalio/server:")
    assert schema["image"].startswith("temporalio/admin-tools:")
    # The schema files come from the admin-tools image: it must be the server's version.
    server_version = server["image"].split(":")[1]
    assert schema["image"].split(":")[1].split("-")[0] == server_version
    assert all_services["temporal-setup"]["image"] == schema["image"]
    assert schema["environment"]["SQL_PLUGIN"] == "postgres12"
    script = " ".join(schema["command"])
    steps = ("create-database", "setup-schema -v 0.0", "update-schema -d /etc/temporal/schema/postgresql/v12")
    assert all(step in script for step in steps)
    assert "temporal temporal_visibility" in script
    assert server["environment"]["DBNAME"] == "temporal"
    assert server["environment"]["VISIBILITY_DBNAME"] == "temporal_visibility"
    assert server["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"


def test_compose_setup_applies_the_schedules_and_starts_the_feed_poller_with_the_workers_settings() -> None:
    all_services = services()
    setup = all_services["pssync-setup"]
    script = " ".join(setup["command"])
    assert "pssync schedules apply" in script and "pssync feed start" in script
    assert setup["environment"] == all_services["worker"]["environment"]
    # Registered as keywords before anything starts a workflow that sets them.
    registered = " ".join(all_services["temporal-setup"]["command"])
    assert all(key.name in registered for key in search_attributes.ALL)
    assert "--type Keyword" in registered


def test_every_pssync_service_takes_every_secret_from_the_environment() -> None:
    all_services = services()
    secrets = [env_name(field) for field in secret_fields()]
    assert "PSSYNC_CODEC_KEYS" in secrets
    for role in PSSYNC_SERVICES:
        environment = all_services[role]["environment"]
        # Production refuses to start while any secret keeps its development default.
        missing = [name for name in secrets if name not in environment]
        assert not missing, f"{role} lacks {missing}"
        defaulted = [name for name in secrets if not passes_through(environment[name], name)]
        assert not defaulted, f"{role} does not take {defaulted} from the environment as required variables"


def test_no_secret_value_is_written_in_the_compose_file() -> None:
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith(SECRET_ENV_SUFFIXES):
                assert isinstance(value, str) and re.fullmatch(r"\$\{[A-Z0-9_]+:?\?[^}]*\}", value), (
                    f"{name}: {key} must come from the environment, with no default"
                )
        url = (service.get("environment") or {}).get("PSSYNC_DATABASE_URL")
        if url is not None:
            assert re.fullmatch(r"postgresql\+psycopg://pssync:\$\{POSTGRES_PASSWORD:\?[^}]*\}@[^ ]+", url)
    assert DEV_SECRET_PREFIX not in COMPOSE.read_text()


def test_workers_run_at_least_two_replicas_that_share_xeros_rate_limit() -> None:
    all_services = services()
    replicas = worker_replicas(all_services)
    assert replicas >= 2
    environment = all_services["worker"]["environment"]
    per_minute = re.fullmatch(
        r"\$\{PSSYNC_XERO_CALLS_PER_MINUTE:-(\d+)\}", environment["PSSYNC_XERO_CALLS_PER_MINUTE"]
    )
    in_progress = re.fullmatch(
        r"\$\{PSSYNC_XERO_MAX_CONCURRENCY:-(\d+)\}", environment["PSSYNC_XERO_MAX_CONCURRENCY"]
    )
    assert per_minute is not None and in_progress is not None
    # The minute budget is shared by the workers through the ledger: the deployment's, up to Xero's 60.
    assert int(per_minute.group(1)) <= XERO_MINUTE_LIMIT
    # Calls in progress are kept per worker: together they must stay inside Xero's 5 per tenant.
    assert replicas * int(in_progress.group(1)) <= XERO_CONCURRENT_LIMIT


def test_every_long_running_service_has_a_healthcheck_and_dependents_wait_for_it() -> None:
    all_services = services()
    assert ONE_SHOT <= set(all_services)
    for name, service in all_services.items():
        if name in ONE_SHOT:
            assert service.get("restart") in ("no", "on-failure"), name
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
    for name, service in all_services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert how == {"condition": expected}, f"{name} -> {dependency}"


def test_the_ui_decodes_through_the_ingress_codec_endpoint_and_the_ingress_check_calls_healthz() -> None:
    all_services = services()
    endpoint = all_services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"]
    assert endpoint == "${PSSYNC_INGRESS_PUBLIC_URL:-http://127.0.0.1:8700}" + codec_router.prefix
    assert "http://127.0.0.1:8700/healthz" in " ".join(all_services["ingress"]["healthcheck"]["test"])
    paths = set(create_app(Settings()).openapi()["paths"])
    assert {"/healthz", f"{codec_router.prefix}/decode", f"{codec_router.prefix}/encode"} <= paths


def test_the_env_example_lists_every_variable_the_compose_file_reads() -> None:
    text = COMPOSE.read_text()
    referenced = {match["name"] for match in REFERENCE.finditer(text)}
    example = example_values()
    assert referenced <= set(example), f"missing from {ENV_EXAMPLE.name}: {sorted(referenced - set(example))}"
    # Only `${NAME?why}` (no colon) may be set empty.
    for match in re.finditer(r"\$\{(?P<name>[A-Z0-9_]+):\?", text):
        assert example[match["name"]], f"{match['name']} is required and has no placeholder"
    assert all(DEV_SECRET_PREFIX not in value for value in example.values())


def reasons() -> dict[str, set[str]]:
    """What the compose file says when each required variable is missing."""
    found: dict[str, set[str]] = {}
    for match in re.finditer(r"\$\{(?P<name>[A-Z0-9_]+):?\?(?P<why>[^}]*)\}", COMPOSE.read_text()):
        found.setdefault(match["name"], set()).add(match["why"])
    return found


def test_each_required_variable_has_its_own_reason() -> None:
    by_reason: dict[str, set[str]] = {}
    for name, whys in reasons().items():
        assert len(whys) == 1 and all(whys), f"{name}: {whys}"
        by_reason.setdefault(next(iter(whys)), set()).add(name)
    assert all(len(names) == 1 for names in by_reason.values()), by_reason


# --- rendered by docker-compose itself ---------------------------------------------------------------------


@pytest.fixture
def compose_tool() -> str:
    tool = shutil.which("docker-compose")
    if tool is None:
        # .ci/run installs Debian's docker-compose; elsewhere the structural tests above still run.
        pytest.skip("docker-compose is not installed: the file was checked as YAML only, not rendered")
    return tool


def render(tool: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    # Only the env file speaks: a variable exported in this shell would take precedence over it.
    return subprocess.run(
        [tool, "--env-file", str(env_file), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def production_env(tmp_path: Path, *, leave_out: str | None = None) -> tuple[Path, dict[str, str]]:
    values = example_values()
    for name in secret_env_names():
        values[name] = f"test-value-of-{name.lower()}"
    if leave_out is not None:
        del values[leave_out]
    env_file = tmp_path / "production.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return env_file, values


def test_docker_compose_renders_the_file_with_a_complete_production_env(
    compose_tool: str, tmp_path: Path
) -> None:
    env_file, values = production_env(tmp_path)
    result = render(compose_tool, env_file)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)["services"]
    for role in PSSYNC_SERVICES:
        environment = rendered[role]["environment"]
        for name in (env_name(field) for field in secret_fields()):
            assert environment[name] == values[name], f"{role}: {name}"
    assert worker_replicas(rendered) >= 2


# Every secret is a required variable (test_every_pssync_service_takes_every_secret_from_the_environment):
# these show docker-compose refusing one, of each kind, and naming it.
@pytest.mark.parametrize("missing", ["PSSYNC_CODEC_KEYS", "POSTGRES_PASSWORD", "PSSYNC_JWT_SECRET"])
def test_docker_compose_names_a_missing_secret(compose_tool: str, tmp_path: Path, missing: str) -> None:
    assert missing in secret_env_names()
    env_file, _ = production_env(tmp_path, leave_out=missing)
    result = render(compose_tool, env_file)
    assert result.returncode != 0
    # docker-compose 1 shows the whole environment it was interpolating, so the name alone proves little:
    # the reason written beside this variable in the file is what names it.
    assert missing in result.stderr
    assert next(iter(reasons()[missing])) in result.stderr
