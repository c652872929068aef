"""HTTP errors: what fails at once (with advice), what is retried, and what fails alone."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_appsflyer_cohort.sandbox.server import SandboxServer, generate_token
from tap_appsflyer_cohort.tap import TapAppsFlyerCohort
from tests.conftest import SANDBOX_TODAY
from tests.helpers import TapRun, run_tap, run_tap_cli, sandbox_config, utc_noon
from tests.tap_checks import assert_token_absent

NOW = utc_noon(SANDBOX_TODAY)
REPORT = {"name": "ltv", "groupings": ["date", "pid"], "kpis": ["sessions"]}


def _recent(server: SandboxServer, **overrides: Any) -> dict[str, Any]:
    """A one-window config on the server's clock (for the tap run as a command)."""
    start = (server.today - timedelta(days=3)).isoformat()
    return sandbox_config(server, **{"start_date": start, "reports": [REPORT], **overrides})


def _error_lines(run: TapRun) -> list[str]:
    return [line for line in run.stderr.splitlines() if "| ERROR" in line]


def _assert_no_secret(run: TapRun, *secrets: str) -> None:
    for secret in secrets:
        assert_token_absent(secret, run.stderr, json.dumps(run.messages))


def test_401_fails_at_once_with_token_advice(live_sandbox, tmp_path: Path) -> None:
    wrong = generate_token()
    run = run_tap_cli(_recent(live_sandbox, api_token=wrong), tmp_path)
    assert run.exit_code == 1
    assert [c.status for c in live_sandbox.request_log] == [401], "no retry on 401"
    [line] = [line for line in _error_lines(run) if "401" in line and "Sync stopped" in line]
    assert "V2" in line
    assert "700 characters" in line
    assert "2026-03-10" in line
    assert "Traceback" not in run.stderr
    _assert_no_secret(run, wrong, live_sandbox.token)


def test_404_app_fails_alone_and_the_run_exits_non_zero(live_sandbox, tmp_path: Path) -> None:
    apps = ["com.not.enabled", "id123456789"]
    run = run_tap_cli(_recent(live_sandbox, app_ids=apps), tmp_path)
    assert run.exit_code == 1
    assert {r["app_id"] for r in run.records["ltv"]} == {"id123456789"}
    not_found = [line for line in _error_lines(run) if "404" in line]
    assert len(not_found) == 1
    assert "'com.not.enabled'" in not_found[0]
    assert "not enabled for the Cohort API" in not_found[0]
    assert "failed" in _error_lines(run)[-1]
    # The good app's progress is saved even though the run failed.
    partitions = run.messages[-1]["value"]["bookmarks"]["ltv"]["partitions"]
    saved = {p["context"]["app_id"]: p.get("replication_key_value") for p in partitions}
    assert saved["id123456789"] == (live_sandbox.today - timedelta(days=1)).isoformat()
    assert "Traceback" not in run.stderr
    _assert_no_secret(run, live_sandbox.token)


def test_422_fails_at_once_with_the_servers_text(live_sandbox, tmp_path: Path) -> None:
    live_sandbox.options.horizon_days = 2  # the tap asks 3 days back: a 422 it cannot fix
    run = run_tap_cli(_recent(live_sandbox), tmp_path)
    assert run.exit_code == 1
    [call] = live_sandbox.request_log
    assert call.status == 422
    server_text = live_sandbox.answer("id123456789", call.body)[2].decode()
    [line] = [line for line in _error_lines(run) if "422" in line and "Sync stopped" in line]
    assert json.loads(server_text)["error"] in line
    assert "'ltv'" in line
    assert "'id123456789'" in line
    assert "Traceback" not in run.stderr
    _assert_no_secret(run, live_sandbox.token)


def _waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    found = [re.search(r"waiting ([0-9.]+) s", r.getMessage()) for r in caplog.records]
    return [float(m[1]) for m in found if m]


def test_429_honours_retry_after(sandbox, caplog) -> None:
    caplog.set_level(logging.INFO)
    sandbox.script("429")  # Retry-After: 1
    config = sandbox_config(sandbox, start_date="2026-06-12", reports=[REPORT])
    run = run_tap(config, now=NOW, expect_exit=0)
    assert [c.status for c in sandbox.request_log] == [429, 200], "one wait, no busy loop"
    [wait] = _waits(caplog)
    assert 1.0 <= wait <= 1.5
    assert run.records["ltv"]


def test_5xx_and_resets_are_retried_with_growing_backoff(sandbox, caplog) -> None:
    caplog.set_level(logging.INFO)
    sandbox.script("503", "reset")
    config = sandbox_config(sandbox, start_date="2026-06-12", reports=[REPORT], max_retries=2)
    run = run_tap(config, now=NOW, expect_exit=0)
    assert [c.status for c in sandbox.request_log] == [503, 0, 200]
    first, second = _waits(caplog)
    assert 1.0 <= first <= 2.0
    assert 2.0 <= second <= 4.0
    assert run.records["ltv"]


def test_5xx_beyond_max_retries_stops_the_run(sandbox, caplog) -> None:
    sandbox.script("500", "500")
    config = sandbox_config(sandbox, start_date="2026-06-12", reports=[REPORT], max_retries=1)
    run = run_tap(config, now=NOW, expect_exit=1)
    assert [c.status for c in sandbox.request_log] == [500, 500]
    assert "ltv" not in run.records
    assert any("Giving up" in r.getMessage() for r in caplog.records)


def test_timeouts_are_retried(sandbox, caplog) -> None:
    caplog.set_level(logging.INFO)
    sandbox.script("timeout:1.5")  # the answer comes after the tap's 1 s timeout
    config = sandbox_config(
        sandbox, start_date="2026-06-12", reports=[REPORT], request_timeout=1, max_retries=1
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    assert len(sandbox.request_log) == 2
    assert any("Timeout" in r.getMessage() for r in caplog.records)
    assert run.records["ltv"]


def _wait_for(sandbox: SandboxServer, status: int, **headers: str) -> Iterator[float]:
    """The waits the tap's backoff would use for one answer of ``status``, attempt by attempt."""
    tap = TapAppsFlyerCohort(config=sandbox_config(sandbox, reports=[REPORT]))
    stream = tap.streams["ltv"]
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    waits = stream.backoff_wait_generator()
    next(waits)
    while True:
        yield waits.send(RetriableAPIError(f"{status}", response))


def test_default_retry_budget_outlasts_a_60_second_limit(sandbox) -> None:
    config = {k: v for k, v in sandbox_config(sandbox).items() if k != "max_retries"}
    retries = TapAppsFlyerCohort(config=config).settings.max_retries
    waits = _wait_for(sandbox, 503)
    assert sum(next(waits) for _ in range(retries)) > 60


def test_429_without_retry_after_waits_for_the_next_minute(sandbox) -> None:
    waits = _wait_for(sandbox, 429)
    before, wait, after = time.time(), next(waits), time.time()
    if before // 60 != after // 60:  # a minute ended while the wait was computed: again
        before, wait, after = time.time(), next(waits), time.time()
    # Lands just after the next minute boundary (plus jitter), never before it.
    boundary = before - before % 60 + 60
    assert boundary + 0.5 <= before + wait
    assert after + wait <= boundary + 3.5
