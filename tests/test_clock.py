"""``as_of``: the tap can run "a week ago" against a sandbox whose clock says the same."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tap_appsflyer_cohort.errors import ConfigError
from tap_appsflyer_cohort.settings import parse_settings
from tests.helpers import run_tap, run_tap_cli, sandbox_config

WEEK_AGO = date(2026, 6, 8)
REPORT = {
    "name": "retention",
    "groupings": ["date", "pid"],
    "kpis": ["sessions"],
    "aggregation_type": "on_day",
    "filters": {"period": [0, 1, 3]},
}


def _config(server, **overrides):
    return sandbox_config(server, start_date="2026-06-01", reports=[REPORT], **overrides)


def test_as_of_moves_the_tap_today(sandbox) -> None:
    sandbox.set_today(WEEK_AGO)
    run = run_tap(_config(sandbox, as_of=f"{WEEK_AGO}T12:00:00Z"), expect_exit=0)
    dates = {r["date"] for r in run.records["retention"]}
    assert max(dates) == (WEEK_AGO - timedelta(days=1)).isoformat()
    partition = run.last_state["bookmarks"]["retention"]["partitions"][0]
    assert partition["replication_key_value"] == (WEEK_AGO - timedelta(days=1)).isoformat()
    # The sandbox answered queries whose dates end before the shifted today, never after.
    assert all(record.body["to"] < WEEK_AGO.isoformat() for record in sandbox.request_log)


def test_as_of_then_today_refreshes_maturing_cohorts(sandbox) -> None:
    sandbox.set_today(WEEK_AGO)
    first = run_tap(_config(sandbox, as_of=WEEK_AGO.isoformat()), expect_exit=0)
    sandbox.set_today(WEEK_AGO + timedelta(days=7))
    sandbox.clear_log()
    second = run_tap(
        _config(sandbox, as_of=(WEEK_AGO + timedelta(days=7)).isoformat()),
        state=first.last_state,
        expect_exit=0,
    )
    # Dates loaded a week ago gain their day-3 value now.
    old = {(r["date"], r["period"]) for r in first.records["retention"]}
    new = {(r["date"], r["period"]) for r in second.records["retention"]}
    gained = {key for key in new - old if key[0] < WEEK_AGO.isoformat()}
    assert any(period == 3 for _, period in gained)


def test_as_of_time_extracted_is_shifted(sandbox) -> None:
    sandbox.set_today(WEEK_AGO)
    run = run_tap(_config(sandbox, as_of=f"{WEEK_AGO}T12:00:00+00:00"), expect_exit=0)
    stamps = {m["time_extracted"][:10] for m in run.messages if m["type"] == "RECORD"}
    assert stamps == {WEEK_AGO.isoformat()}


def test_as_of_refused_against_a_real_api() -> None:
    config = {
        "api_token": "x" * 800,
        "app_ids": ["a"],
        "start_date": "2026-01-01",
        "as_of": "2026-02-01",
    }
    with pytest.raises(ConfigError, match=r"as_of.*loopback"):
        parse_settings(config, for_sync=True)


@pytest.mark.parametrize("value", ["last week", "2026-13-01", "2026-02-01T25:00:00", 7])
def test_as_of_malformed(value) -> None:
    config = {"api_url": "http://127.0.0.1:1", "as_of": value}
    with pytest.raises(ConfigError, match="setting 'as_of'"):
        parse_settings(config, for_sync=False)


def test_as_of_accepts_a_date_and_offsets() -> None:
    base = {"api_url": "http://127.0.0.1:1"}
    moment = parse_settings({**base, "as_of": "2026-02-01T09:30:00+02:00"}, for_sync=False).as_of
    assert moment == datetime(2026, 2, 1, 7, 30, tzinfo=timezone.utc)
    day = parse_settings({**base, "as_of": "2026-02-01"}, for_sync=False).as_of
    assert day is not None
    assert day.date() == date(2026, 2, 1)


def test_as_of_from_the_environment(sandbox, tmp_path: Path, monkeypatch) -> None:
    sandbox.set_today(WEEK_AGO)
    monkeypatch.setenv("TAP_APPSFLYER_COHORT_AS_OF", f"{WEEK_AGO}T12:00:00Z")
    run = run_tap_cli(_config(sandbox), tmp_path, "--config", "ENV")
    assert run.exit_code == 0, run.stderr[-2000:]
    dates = {m["record"]["date"] for m in run.messages if m.get("type") == "RECORD"}
    assert max(dates) == (WEEK_AGO - timedelta(days=1)).isoformat()
