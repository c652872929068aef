"""A new user's first hour (issue 11): nothing surprises silently, every mistake is one line.

The daily budget counts the day's calls across runs; settings a run needs are named
together; a missing or broken --config is one line; an event KPI that answers only
zeros, and a start date older than the API keeps, are each a warning naming the fix;
``--about`` documents report fields too.
"""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort import emission
from tap_appsflyer_cohort.errors import ConfigError
from tap_appsflyer_cohort.responses import CohortTable
from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from tap_appsflyer_cohort.settings import parse_settings
from tests.conftest import SANDBOX_TODAY
from tests.helpers import TAP_COMMAND, run_tap, sandbox_config, utc_noon

NOW = utc_noon(SANDBOX_TODAY)
REPORT = {
    "name": "ltv",
    "groupings": ["date", "pid"],
    "kpis": ["sessions"],
    "aggregation_type": "on_day",
    "filters": {"period": [0, 1, 3]},
}


def _config(server: SandboxServer, **overrides: Any) -> dict[str, Any]:
    settings = {"start_date": "2026-06-03", "reports": [REPORT], "max_window_days": 3}
    return sandbox_config(server, **{**settings, **overrides})


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_daily_budget_counts_calls_across_runs(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(sandbox, daily_request_budget=3, max_requests_in_flight=1)
    first = run_tap(config, now=NOW, expect_exit=1)
    assert first.tap is not None
    assert first.tap.pacer.total_calls == 3
    assert first.last_state["api_calls"] == {"day": SANDBOX_TODAY.isoformat(), "calls": 3}
    caplog.clear()
    # An immediate rerun the same day: the budget is spent, no call is made.
    second = run_tap(config, state=first.last_state, now=NOW, expect_exit=1)
    assert second.tap is not None
    assert second.tap.pacer.total_calls == 0
    (stop,) = [r.getMessage() for r in caplog.records if "Sync stopped" in r.getMessage()]
    assert f"run again after {SANDBOX_TODAY + timedelta(days=1)} 00:00 UTC" in stop
    # The next day the budget is whole again.
    tomorrow = SANDBOX_TODAY + timedelta(days=1)
    sandbox.set_today(tomorrow)
    third = run_tap(config, state=second.last_state, now=utc_noon(tomorrow))
    assert third.tap is not None
    assert third.tap.pacer.total_calls > 0
    assert third.last_state["api_calls"]["day"] == tomorrow.isoformat()


def test_missing_settings_are_named_together() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({}, for_sync=True)
    assert str(caught.value).startswith("settings 'api_token', 'app_ids', 'start_date': are")


def test_app_ids_may_come_from_every_report_alone() -> None:
    config = {
        "api_token": "t" * 10,
        "start_date": "2026-01-01",
        "reports": [{**REPORT, "app_ids": ["id1"]}],
    }
    assert parse_settings(config, for_sync=True).apps_for(
        parse_settings(config, for_sync=True).reports[0]
    ) == ("id1",)


def _command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TAP_COMMAND, *args], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )


def test_a_missing_or_broken_config_file_is_one_line(tmp_path: Path) -> None:
    missing = _command("--config", "nope.json", cwd=tmp_path)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    assert "nope.json' was not found" in missing.stderr
    (tmp_path / "bad.json").write_text("{bad")
    broken = _command("--config", "bad.json", cwd=tmp_path)
    assert broken.returncode == 2
    assert "Traceback" not in broken.stderr
    assert "the file is not JSON" in broken.stderr


def test_discover_without_config_describes_the_default_reports(tmp_path: Path) -> None:
    done = _command("--discover", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    streams = {s["tap_stream_id"] for s in json.loads(done.stdout)["streams"]}
    assert streams == {"retention_by_media_source", "revenue_by_media_source_geo"}


def test_about_documents_report_fields(tmp_path: Path) -> None:
    done = _command("--about", "--format", "markdown", cwd=tmp_path)
    section = done.stdout.split("## Report fields", 1)[1]
    for name in ("per_user", "restatement_days", "layout", "partial_data", "min_cohort_size"):
        assert f"| {name} |" in section


def test_a_start_date_older_than_the_api_keeps_is_a_warning(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    old = (SANDBOX_TODAY - timedelta(days=3 * 365)).isoformat()
    report = {**REPORT, "filters": {"period": [0]}}
    # Only the first days the API keeps are synced: the warning comes from the plan.
    end = (SANDBOX_TODAY - timedelta(days=728)).isoformat()
    config = _config(sandbox, start_date=old, end_date=end, reports=[report])
    run_tap(config, now=NOW, expect_exit=0)
    expected = (SANDBOX_TODAY - timedelta(days=730)).isoformat()
    assert (
        f"start_date {old} is older than the 730 days the API keeps: syncing from {expected}"
        in (_warnings(caplog))
    )


@pytest.mark.parametrize("event", ["checkout start", "Checkout Started"])
def test_an_event_kpi_that_is_zero_everywhere_is_a_warning(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, event: str
) -> None:
    report = {**REPORT, "kpis": [event]}
    run = run_tap(_config(sandbox, reports=[report]), now=NOW, expect_exit=0)
    assert run.records["ltv"]  # the API answered rows, all zero
    warned = [w for w in _warnings(caplog) if f"event KPI '{event}' is zero" in w]
    assert len(warned) == 1
    assert "spelling and case" in warned[0]


def test_a_known_event_is_not_warned_about(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    report = {**REPORT, "kpis": ["af_purchase"]}
    run_tap(_config(sandbox, reports=[report]), now=NOW, expect_exit=0)
    assert not [w for w in _warnings(caplog) if "is zero in every row" in w]


def test_long_records_that_outpace_the_loader_suggest_the_wide_layout(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real threshold (50,000 records per call) needs answers too big for a unit test.
    monkeypatch.setattr(emission, "LONG_RECORDS_HINT_PER_CALL", 10)
    run = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    assert len(run.records["ltv"]) > 10
    hinted = [w for w in _warnings(caplog) if "long records per call" in w]
    assert len(hinted) == 1  # once per stream, not per window
    assert "'layout: wide'" in hinted[0]

    caplog.clear()
    run_tap(_config(sandbox, reports=[{**REPORT, "layout": "wide"}]), now=NOW, expect_exit=0)
    assert not [w for w in _warnings(caplog) if "long records per call" in w]


def test_long_records_per_call_counts_cohorts_times_periods_per_kpi() -> None:
    rows = [((f"2026-06-0{d}", "x"), 1, None, None, [1.0]) for d in range(1, 5)]
    one = CohortTable(kpi="sessions", rows=list(rows))
    two = CohortTable(kpi="revenue", rows=list(rows))
    assert emission.long_records_per_call({"sessions": one}, periods=3) == 12
    assert emission.long_records_per_call({"sessions": one, "revenue": two}, periods=3) == 6
    assert emission.long_records_per_call({}, periods=3) == 0
