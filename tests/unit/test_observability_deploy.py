"""The dashboard, the Prometheus configuration and the compose profile that runs them agree with each other
and with the series ps-sync exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from config import Settings
from observability import metrics

from .test_docker_compose import COMPOSE, example_values

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "ps-sync.json"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
SERIES = re.compile(r"\b((?:pssync|temporal)_[a-z_]+)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported() -> set[str]:
    """Every series name ps-sync exports: the workers' (counters with `_total`) and the ingress's gauges."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, str) and value.startswith("pssync_"):
            names |= {value, f"{value}_total", *(value + suffix for suffix in HISTOGRAM_SUFFIXES)}
    names |= set(re.findall(r'"(pssync_[a-z_]+)"', (ROOT / "ingress" / "metrics.py").read_text()))
    return names


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_business_series_the_dashboard_plots_is_exported() -> None:
    plotted = {name for expr in expressions() for name in SERIES.findall(expr) if name.startswith("pssync_")}
    assert plotted and plotted <= exported(), sorted(plotted - exported())
    # The series each have a panel.
    for wanted in (
        "pssync_runs_started_total",
        "pssync_runs_completed_total",
        "pssync_invoices_posted_total",
        "pssync_posting_failures_total",
        "pssync_exceptions_opened_total",
        "pssync_exceptions_resolved_total",
        "pssync_billing_latency_seconds_bucket",
        "pssync_feed_lag_seconds_bucket",
    ):
        assert wanted in plotted, wanted
    assert any(name.startswith("temporal_") for expr in expressions() for name in SERIES.findall(expr))


def test_the_dashboard_reads_the_provisioned_datasource() -> None:
    [source] = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    assert uids == {source["uid"]} and source["url"] == "http://prometheus:9090"


def test_prometheus_scrapes_every_worker_and_the_ingress_with_the_token_compose_writes() -> None:
    jobs = {job["job_name"]: job for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]}
    [workers] = jobs["pssync-worker"]["dns_sd_configs"]
    assert workers["names"] == ["worker"] and workers["port"] == 9464
    ingress = jobs["pssync-ingress"]
    assert ingress["static_configs"][0]["targets"] == ["ingress:8700"]
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    written = " ".join(services["prometheus"]["command"])
    assert ingress["authorization"]["credentials_file"] in written
    worker_env = services["worker"]["environment"]
    assert worker_env["PSSYNC_WORKER_METRICS_ADDRESS"].endswith(":-0.0.0.0:9464}")
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["observability"]
    mounted = " ".join(services["grafana"]["volumes"])
    assert "./deploy/grafana/ps-sync.json" in mounted and "./deploy/grafana/provisioning" in mounted


def test_the_example_alert_channels_are_valid_settings() -> None:
    channels = example_values()["PSSYNC_ALERT_CHANNELS"]
    settings = Settings(alert_channels=json.loads(channels))
    assert settings.alert_channels["finance"].webhook_url is not None
    assert settings.alert_channels["default"].email_to
