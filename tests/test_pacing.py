"""One pacer for the whole run: no 429 in a normal run, a plan up front, a line per window."""

from __future__ import annotations

import logging
import re
from datetime import date

import pytest

from tap_appsflyer_cohort.sandbox import limits
from tests.conftest import SANDBOX_TODAY
from tests.helpers import run_tap, sandbox_config, utc_noon

NOW = utc_noon(SANDBOX_TODAY)
APPS = ["id123456789", "com.example.app"]
REPORTS = [
    {"name": "retention", "groupings": ["date", "pid"], "kpis": ["sessions", "revenue"]},
    {"name": "by_geo", "groupings": ["date", "geo"], "kpis": ["roas"]},
]
PLAN = re.compile(
    r"Plan for report '(\w+)', app '([\w.]+)' .*: (\d+) window\(s\) x (\d+) KPI\(s\) = "
    r"(\d+) call\(s\), about ([0-9.]+) min at (\d+) calls/min"
)
RUN_PLAN = re.compile(r"Plan for this run: \d+ window\(s\), (\d+) call\(s\), about [0-9.]+ min")
WINDOW = re.compile(
    r"Window done: report '(\w+)', app '([\w.]+)', (\S+)\.\.(\S+), (\d+) row\(s\), "
    r"([0-9.]+) s, (\d+) call\(s\) left today"
)


def _config(server, **overrides):
    return sandbox_config(
        server, **{"app_ids": APPS, "start_date": "2026-06-08", "reports": REPORTS, **overrides}
    )


@pytest.fixture
def one_second_minute(monkeypatch, sandbox):
    """The sandbox's rate window shrunk from 60 s to 1 s: 2 calls per window is '120 a minute'.

    The tap's own margin (2 % of a 60 s window, 1.2 s of slack for thread and network
    jitter) cannot shrink with it, so the tap is paced at 90 a minute here: calls 0.68 s
    apart leave the same kind of slack (0.36 s) in a 1 s window.
    """
    monkeypatch.setattr(limits, "WINDOW_SECONDS", 1.0)
    sandbox.options.requests_per_minute = 2
    return sandbox


PACED_REPORTS = [REPORTS[0], {**REPORTS[1], "app_ids": APPS[:1]}]


def test_paced_run_sees_no_429(one_second_minute) -> None:
    sandbox = one_second_minute
    config = _config(sandbox, reports=PACED_REPORTS, requests_per_minute=90)
    run = run_tap(config, now=NOW, expect_exit=0)
    statuses = [c.status for c in sandbox.request_log]
    assert len(statuses) == 5  # two streams, two apps, one pacer
    assert set(statuses) == {200}
    assert set(run.records) == {"retention", "by_geo"}


def test_unpaced_run_would_see_429(one_second_minute) -> None:
    # The control: the same run without pacing is refused by the same sandbox.
    sandbox = one_second_minute
    run_tap(_config(sandbox, reports=PACED_REPORTS, max_retries=0), now=NOW, expect_exit=1)
    assert 429 in {c.status for c in sandbox.request_log}


def test_plan_is_logged_before_syncing(sandbox, caplog) -> None:
    caplog.set_level(logging.INFO)
    run_tap(_config(sandbox, requests_per_minute=600), now=NOW, expect_exit=0)
    lines = [r.getMessage() for r in caplog.records]
    plans = [(i, PLAN.search(line)) for i, line in enumerate(lines) if PLAN.search(line)]
    first_window = next(i for i, line in enumerate(lines) if WINDOW.search(line))
    assert {(m[1], m[2]) for _, m in plans} == {(r["name"], a) for r in REPORTS for a in APPS}
    assert all(i < first_window for i, _ in plans), "every plan comes before any window"
    calls = 0
    for _, match in plans:
        windows, kpis, planned = int(match[3]), int(match[4]), int(match[5])
        assert windows * kpis == planned
        assert float(match[6]) == pytest.approx(planned / 600, abs=0.06)
        assert match[7] == "600"
        made = [c for c in sandbox.request_log if c.app_id == match[2]]
        report = next(r for r in REPORTS if r["name"] == match[1])
        made = [c for c in made if c.body["groupings"] == report["groupings"]]
        assert len(made) == planned
        calls += planned
    assert calls == len(sandbox.request_log)
    [(at, total)] = [(i, m) for i, line in enumerate(lines) if (m := RUN_PLAN.search(line))]
    assert at < first_window
    assert int(total[1]) == calls


def test_one_progress_line_per_window(sandbox, caplog) -> None:
    caplog.set_level(logging.INFO)
    config = _config(sandbox, daily_request_budget=1000, max_window_days=3)
    run_tap(config, now=NOW, expect_exit=0)
    lines = [m for r in caplog.records if (m := WINDOW.search(r.getMessage()))]
    asked = {
        (c.app_id, tuple(c.body["groupings"]), c.body["from"], c.body["to"])
        for c in sandbox.request_log
    }
    groupings = {r["name"]: tuple(r["groupings"]) for r in REPORTS}
    seen = [(m[2], groupings[m[1]], m[3], m[4]) for m in lines]
    assert sorted(seen) == sorted(asked), "exactly one line per window asked"
    for match in lines:
        rows = [
            c.rows
            for c in sandbox.request_log
            if (c.app_id, c.body["from"], c.body["to"]) == (match[2], match[3], match[4])
            and tuple(c.body["groupings"]) == groupings[match[1]]
        ]
        assert int(match[5]) == max(rows)
        assert date.fromisoformat(match[3]) <= date.fromisoformat(match[4])
    left = [int(m[7]) for m in lines]
    assert left == sorted(left, reverse=True)
    assert left[-1] == 1000 - len(sandbox.request_log)


def test_daily_budget_stops_the_run_with_state_saved(sandbox, caplog) -> None:
    config = _config(sandbox, daily_request_budget=2, max_requests_in_flight=1)
    run = run_tap(config, now=NOW, expect_exit=1)
    assert len(sandbox.request_log) == 2
    [line] = [r.getMessage() for r in caplog.records if "budget" in r.getMessage()]
    assert "state is saved" in line
    # Streams sync in name order: by_geo (one call per app) used the budget, and kept it.
    assert {c.body["kpis"][0] for c in sandbox.request_log} == {"roas"}
    saved = run.last_state["bookmarks"]
    assert [p["replication_key_value"] for p in saved["by_geo"]["partitions"]] == ["2026-06-14"] * 2
    assert all("replication_key_value" not in p for p in saved["retention"]["partitions"])
    assert "retention" not in run.records


def test_daily_limit_429_stops_the_run_with_state_saved(sandbox, caplog) -> None:
    # The API's own daily quota: a 429 whose Retry-After runs to midnight is not retried.
    sandbox.options.requests_per_day = 2
    # No retries: a call still in flight when the run stops must not outlive the sandbox.
    config = _config(sandbox, max_requests_in_flight=1, max_retries=0)
    run = run_tap(config, now=NOW, expect_exit=1)
    statuses = [c.status for c in sandbox.request_log]
    assert statuses[:3] == [200, 200, 429]
    assert set(statuses[3:]) <= {429}, "a call already in flight may still be refused"
    [line] = [r.getMessage() for r in caplog.records if "Sync stopped" in r.getMessage()]
    assert "daily" in line
    assert "run again after 2026-06-16" in line
    saved = run.last_state["bookmarks"]["by_geo"]["partitions"]
    assert [p["replication_key_value"] for p in saved] == ["2026-06-14"] * 2
