"""--about and --discover: schemas from the report config alone, offline, never drifting.

Catalog snapshots live in ``tests/snapshots``; after a deliberate schema change rewrite
them with ``UPDATE_SNAPSHOTS=1 pytest tests/test_discovery.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tests.conftest import SANDBOX_TODAY
from tests.helpers import TAP_COMMAND, run_tap, run_tap_cli, sandbox_config, utc_noon
from tests.tap_checks import assert_token_absent

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("UPDATE_SNAPSHOTS") == "1"

#: Report configs whose catalogs are committed (None: the documented default reports).
REPORT_CONFIGS: dict[str, list[dict[str, Any]] | None] = {
    "default_reports": None,
    "wide_layout": [
        {
            "name": "revenue_wide",
            "groupings": ["date", "pid", "geo"],
            "kpis": ["revenue", "roas"],
            "layout": "wide",
            "filters": {"period": [0, 1, 7, 30]},
        }
    ],
    "event_kpi": [
        {
            "name": "trials",
            "groupings": ["date", "pid", "af_channel"],
            "kpis": ["Start Trial Auth", "af_purchase"],
            "per_user": True,
            "filters": {"period": [0, 3, 7]},
        }
    ],
    "hourly": [
        {
            "name": "hourly_sessions",
            "groupings": ["date", "geo"],
            "kpis": ["sessions"],
            "granularity": "hour",
            "filters": {"period": [0]},
        }
    ],
    "partial_data": [
        {
            "name": "ltv_partial",
            "groupings": ["date", "c"],
            "kpis": ["revenue"],
            "partial_data": True,
            "preferred_currency": True,
            "filters": {"period": [0, 1, 7]},
        }
    ],
}


def _config(server: SandboxServer, name: str) -> dict[str, Any]:
    reports = REPORT_CONFIGS[name]
    extra = {} if reports is None else {"reports": reports}
    config = sandbox_config(server, start_date=(SANDBOX_TODAY.replace(day=10)).isoformat(), **extra)
    del config["blank_value"]  # the snapshots show the defaults
    return config


def _command(config: dict[str, Any] | None, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    command = [*TAP_COMMAND, *args]
    if config is not None:
        path = tmp / "config.json"
        path.write_text(json.dumps(config))
        command += ["--config", str(path)]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture(scope="module")
def idle_sandbox() -> Iterator[SandboxServer]:
    """A sandbox discovery points at: its request log must stay empty."""
    with running_sandbox(today=SANDBOX_TODAY, seed=42) as server:
        yield server


@pytest.fixture(scope="module")
def discovered(
    idle_sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess]:
    """``--discover`` for every report config, run as commands concurrently."""

    def discover(name: str) -> subprocess.CompletedProcess:
        config = _config(idle_sandbox, name)
        return _command(config, tmp_path_factory.mktemp(name), "--discover")

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(REPORT_CONFIGS, pool.map(discover, REPORT_CONFIGS), strict=True))


def _snapshot(name: str) -> dict[str, Any]:
    return json.loads((SNAPSHOTS / f"catalog_{name}.json").read_text())


@pytest.mark.parametrize("name", list(REPORT_CONFIGS))
def test_discover_equals_snapshot_without_api_call(
    name: str, discovered: dict[str, subprocess.CompletedProcess], idle_sandbox: SandboxServer
) -> None:
    done = discovered[name]
    assert done.returncode == 0, done.stderr
    catalog = json.loads(done.stdout)
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        text = json.dumps(catalog, indent=2, sort_keys=True) + "\n"
        (SNAPSHOTS / f"catalog_{name}.json").write_text(text)
    assert catalog == _snapshot(name)
    assert idle_sandbox.request_log == []
    assert_token_absent(idle_sandbox.token, done.stdout, done.stderr)


def test_discover_needs_no_token_or_start_date(tmp_path: Path) -> None:
    # Meltano may discover before secrets are set; the catalog comes from reports alone.
    config = {"app_ids": ["id123456789"], "reports": REPORT_CONFIGS["event_kpi"]}
    done = _command(config, tmp_path, "--discover")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _snapshot("event_kpi")


@pytest.mark.parametrize("name", list(REPORT_CONFIGS))
def test_sync_schema_messages_equal_discovery(name: str, sandbox: SandboxServer) -> None:
    run = run_tap(_config(sandbox, name), now=utc_noon(SANDBOX_TODAY))
    assert run.exit_code == 0
    discovered = {s["tap_stream_id"]: s for s in _snapshot(name)["streams"]}
    schemas = [m for m in run.messages if m["type"] == "SCHEMA"]
    assert {m["stream"] for m in schemas} == set(discovered)
    for message in schemas:
        stream = discovered[message["stream"]]
        assert message["schema"] == stream["schema"]
        assert message["key_properties"] == stream["key_properties"]
        assert message["bookmark_properties"] == ["date"]
    assert run.records, "the sync must emit records for the comparison to mean anything"


def test_schema_does_not_drift_with_the_data(sandbox: SandboxServer) -> None:
    # The same report over dates with other campaigns and values: the same SCHEMA.
    first = run_tap(_config(sandbox, "event_kpi"), now=utc_noon(SANDBOX_TODAY))
    config = {**_config(sandbox, "event_kpi"), "start_date": "2026-03-01", "end_date": "2026-03-02"}
    second = run_tap(config, now=utc_noon(SANDBOX_TODAY))
    schemas = [[m for m in r.messages if m["type"] == "SCHEMA"] for r in (first, second)]
    assert schemas[0] == schemas[1]
    assert first.records["trials"] != second.records["trials"]


def test_about_markdown_lists_every_setting(tmp_path: Path) -> None:
    done = _command(None, tmp_path, "--about", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    from tap_appsflyer_cohort.settings import CONFIG_SCHEMA

    for setting in CONFIG_SCHEMA["properties"]:
        assert f"| {setting} |" in done.stdout
    assert "## Settings" in done.stdout


def test_about_json_describes_every_setting(tmp_path: Path) -> None:
    done = _command(None, tmp_path, "--about", "--format", "json")
    assert done.returncode == 0, done.stderr
    about = json.loads(done.stdout)
    assert about["name"] == "tap-appsflyer-cohort"
    assert {"discover", "catalog", "state", "about"} <= set(about["capabilities"])
    settings = about["settings"]["properties"]
    assert {"api_token", "app_ids", "start_date", "end_date", "api_url", "reports"} <= set(settings)
    assert {"max_window_days", "requests_per_minute", "daily_request_budget"} <= set(settings)
    assert {"request_timeout", "max_retries"} <= set(settings)
    assert all(spec.get("description") for spec in settings.values())
    report = settings["reports"]["items"]["properties"]
    assert all(spec.get("description") for spec in report.values())
    assert settings["api_token"].get("secret") is True
    assert settings["api_url"]["default"] == "https://hq1.appsflyer.com"
    assert settings["max_window_days"]["default"] == 60
    assert settings["requests_per_minute"]["default"] == 60
    assert settings["daily_request_budget"]["default"] == 50_000


def _deselect(catalog: dict[str, Any], stream_id: str) -> dict[str, Any]:
    for stream in catalog["streams"]:
        if stream["tap_stream_id"] == stream_id:
            for entry in stream["metadata"]:
                if entry["breadcrumb"] == []:
                    entry["metadata"]["selected"] = False
    return catalog


def test_catalog_selection_limits_the_calls(sandbox: SandboxServer) -> None:
    config = _config(sandbox, "default_reports")
    catalog = _deselect(_snapshot("default_reports"), "revenue_by_media_source_geo")
    run = run_tap(config, catalog=catalog, now=utc_noon(SANDBOX_TODAY))
    assert run.exit_code == 0
    assert set(run.records) == {"retention_by_media_source"}
    assert {tuple(c.body["groupings"]) for c in sandbox.request_log} == {("date", "pid", "c")}


def test_cli_reads_catalog_and_state(live_sandbox: SandboxServer, tmp_path: Path) -> None:
    start = (live_sandbox.today - timedelta(days=4)).isoformat()
    config = {**_config(live_sandbox, "default_reports"), "start_date": start}
    state = run_tap(config).last_state  # in-process, on the same (real) clock
    live_sandbox.clear_log()
    catalog_path = tmp_path / "catalog.json"
    catalog = _deselect(_snapshot("default_reports"), "revenue_by_media_source_geo")
    catalog_path.write_text(json.dumps(catalog))
    # With the state: nothing is due yet today, so nothing is asked.
    resumed = run_tap_cli(config, tmp_path, "--catalog", str(catalog_path), state=state)
    assert resumed.exit_code == 0, resumed.stderr
    assert live_sandbox.request_log == []
    # Without it: only the selected stream is asked, from start_date.
    fresh = run_tap_cli(config, tmp_path, "--catalog", str(catalog_path))
    assert fresh.exit_code == 0, fresh.stderr
    calls = live_sandbox.request_log
    assert {tuple(c.body["groupings"]) for c in calls} == {("date", "pid", "c")}
    assert min(c.body["from"] for c in calls) == start
    assert set(fresh.records) == {"retention_by_media_source"}
