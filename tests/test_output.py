"""The fast record path writes exactly what the SDK's own path would."""

from __future__ import annotations

import pytest

from tap_appsflyer_cohort import streams
from tests.conftest import SANDBOX_TODAY
from tests.helpers import run_tap, sandbox_config, utc_noon

REPORTS = [
    {"name": "wide_events", "groupings": ["date", "pid", "c"], "kpis": ["af_purchase", "revenue"],
     "layout": "wide", "filters": {"period": [0, 1, 7]}},
    {"name": "long_sessions", "groupings": ["date", "geo"], "kpis": ["sessions"],
     "aggregation_type": "on_day", "filters": {"period": [0, 1, 3]}},
]  # fmt: skip


def _lines(run) -> list[tuple[str, dict]]:
    return [(m["stream"], m["record"]) for m in run.messages if m["type"] == "RECORD"]


def test_fast_path_equals_sdk_path(sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    config = sandbox_config(sandbox, start_date="2026-06-01", reports=REPORTS)
    fast = run_tap(config, now=utc_noon(SANDBOX_TODAY))
    monkeypatch.setattr(streams, "plain_output", lambda stream: False)
    slow = run_tap(config, now=utc_noon(SANDBOX_TODAY))
    assert fast.records
    assert _lines(fast) == _lines(slow)
    kinds = [m["type"] for m in fast.messages]
    assert kinds == [m["type"] for m in slow.messages]
    # Every RECORD carries an aware extraction time, as the SDK writes it.
    assert all(m["time_extracted"].endswith("Z") for m in fast.messages if m["type"] == "RECORD")


def test_stream_map_takes_the_sdk_path(sandbox) -> None:
    config = sandbox_config(
        sandbox,
        start_date="2026-06-10",
        reports=REPORTS[1:],
        stream_maps={"long_sessions": {"geo_lower": "geo.lower()", "cost": None}},
    )
    run = run_tap(config, now=utc_noon(SANDBOX_TODAY))
    records = run.records["long_sessions"]
    assert records
    assert all("cost" not in r for r in records)
    assert all(r["geo_lower"] == r["geo"].lower() for r in records)
