"""Budget: a nearly spent daily budget stops the run before a window it cannot finish,
with state saved and the time to resume, instead of running into the API's 429s; the
next run (next day, or a larger budget) finishes with nothing lost.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from tests.conftest import SANDBOX_TODAY
from tests.helpers import run_tap, sandbox_config, utc_noon
from tests.reliability_support import upserted

NOW = utc_noon(SANDBOX_TODAY)
#: Two KPIs: every window costs two calls, so an odd budget ends inside a window.
REPORT = {
    "name": "ltv",
    "groupings": ["date", "pid"],
    "kpis": ["roas", "sessions"],
    "filters": {"period": [0, 1, 3]},
    "restatement_days": 0,  # no re-reads of final dates: the budget alone is tested
}
BUDGET = 5


def _config(server: SandboxServer, **overrides: Any) -> dict[str, Any]:
    settings = {
        "start_date": "2026-06-03",
        "reports": [REPORT],
        "max_window_days": 3,
        "max_requests_in_flight": 4,  # windows are fetched ahead: the budget must hold anyway
        "daily_request_budget": BUDGET,
    }
    return sandbox_config(server, **{**settings, **overrides})


def _windows(server: SandboxServer) -> dict[tuple[str, str], list[str]]:
    asked: dict[tuple[str, str], list[str]] = {}
    for call in server.request_log:
        assert call.body is not None
        asked.setdefault((call.body["from"], call.body["to"]), []).append(call.body["kpis"][0])
    return asked


def _stop(caplog: pytest.LogCaptureFixture) -> str:
    [line] = [r.getMessage() for r in caplog.records if "Sync stopped" in r.getMessage()]
    return line


def test_budget_stops_before_a_window_it_cannot_finish(sandbox, caplog) -> None:
    # The API's own daily quota equals the budget: running into it would show as a 429.
    sandbox.options.requests_per_day = BUDGET
    run = run_tap(_config(sandbox), now=NOW, expect_exit=1)
    statuses = [c.status for c in sandbox.request_log]
    assert 429 not in statuses
    assert len(statuses) == BUDGET - 1, "the fifth call would start a window it cannot finish"
    windows = _windows(sandbox)
    assert all(sorted(kpis) == ["roas", "sessions"] for kpis in windows.values()), windows
    line = _stop(caplog)
    assert "daily request budget" in line
    assert f"{BUDGET - 1} of {BUDGET} calls" in line
    assert "state is saved" in line
    assert "run again after 2026-06-16 00:00 UTC" in line
    assert "daily_request_budget" in line, "says how to go on today"
    # Both finished windows are in the state, and their records were sent.
    [partition] = run.last_state["bookmarks"]["ltv"]["partitions"]
    assert partition["replication_key_value"] == max(to for _, to in windows)
    assert {r["date"] for r in run.records["ltv"]} == {
        d.isoformat()
        for start, end in windows
        for d in _days(date.fromisoformat(start), date.fromisoformat(end))
    }


def test_larger_budget_finishes_with_nothing_lost(sandbox) -> None:
    clean = run_tap(_config(sandbox, daily_request_budget=1000), now=NOW, expect_exit=0)
    sandbox.clear_log()
    first = run_tap(_config(sandbox), now=NOW, expect_exit=1)
    [partition] = first.last_state["bookmarks"]["ltv"]["partitions"]
    saved = {w for w in _windows(sandbox) if w[1] <= partition["replication_key_value"]}
    assert saved
    sandbox.clear_log()
    config = _config(sandbox, daily_request_budget=1000)
    second = run_tap(config, state=first.last_state, now=NOW, expect_exit=0)
    assert not saved & set(_windows(sandbox)), "a saved window was asked again"
    assert upserted(first.messages, second.messages) == upserted(clean.messages)


def test_next_days_finish_with_nothing_lost(sandbox, caplog) -> None:
    """Run once a day on the same small budget until done: the table equals a clean run's
    on the last day (cohorts loaded early have matured meanwhile and were refreshed)."""
    caplog.set_level(logging.INFO)
    messages: list[list[dict[str, Any]]] = []
    state = None
    day = SANDBOX_TODAY
    for _ in range(8):
        sandbox.set_today(day)
        sandbox.options.requests_per_day = BUDGET
        run = run_tap(_config(sandbox), state=state, now=utc_noon(day))
        messages.append(run.messages)
        state = run.last_state or state
        if run.exit_code == 0:
            break
        assert f"run again after {day + timedelta(days=1)} 00:00 UTC" in _stop(caplog)
        caplog.clear()
        day += timedelta(days=1)
    else:
        pytest.fail("eight days of budget did not finish the backfill")
    assert len(messages) > 2, "the budget spread the backfill over several days"
    assert 429 not in {c.status for c in sandbox.request_log}
    sandbox.clear_log()
    sandbox.options.requests_per_day = 1000
    clean = run_tap(_config(sandbox, daily_request_budget=1000), now=utc_noon(day))
    assert upserted(*messages) == upserted(clean.messages)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
