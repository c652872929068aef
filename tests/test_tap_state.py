"""State: a bookmark per stream and app, moved only after a window is fully emitted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from tests.cohort_truth import days
from tests.conftest import SANDBOX_TODAY
from tests.helpers import TapRun, run_tap, sandbox_config, utc_noon
from tests.tap_checks import assert_token_absent

NOW = utc_noon(SANDBOX_TODAY)
YESTERDAY = SANDBOX_TODAY - timedelta(days=1)
APPS = ["id123456789", "com.example.app"]
REPORTS = [
    {"name": "a_sessions", "groupings": ["date", "pid"], "kpis": ["sessions"]},
    {"name": "b_revenue", "groupings": ["date", "geo"], "kpis": ["revenue"]},
]
PERIODS = {"filters": {"period": [0, 1]}, "restatement_days": 0}


def _config(server: Any, **overrides: Any) -> dict[str, Any]:
    reports = [{**r, **PERIODS} for r in REPORTS]
    return sandbox_config(
        server, **{"app_ids": APPS, "start_date": "2026-06-01", "reports": reports, **overrides}
    )


def _bookmarks(state: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    return {
        (stream, p["context"]["app_id"]): p.get("replication_key_value")
        for stream, entry in state["bookmarks"].items()
        for p in entry.get("partitions", [])
    }


def _keys(run: TapRun) -> set[tuple[Any, ...]]:
    return {
        (stream, r["app_id"], r["date"], r.get("pid", r.get("geo")), r["period"])
        for stream, records in run.records.items()
        for r in records
    }


def _walk(run: TapRun) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from enumerate(run.messages)


def test_bookmark_per_stream_and_app(sandbox) -> None:
    run = run_tap(_config(sandbox, start_date="2026-06-10"), now=NOW, expect_exit=0)
    assert _bookmarks(run.last_state) == {
        (r["name"], app): YESTERDAY.isoformat() for r in REPORTS for app in APPS
    }
    for entry in run.last_state["bookmarks"].values():
        for partition in entry["partitions"]:
            assert partition["replication_key"] == "date"
            assert "cohort_ledger" in partition
    assert_token_absent(sandbox.token, json.dumps(run.messages))


def test_bookmark_moves_only_after_a_window_is_emitted(sandbox) -> None:
    config = _config(sandbox, max_window_days=4, max_requests_in_flight=1)
    run = run_tap(config, now=NOW, expect_exit=0)
    assert len(sandbox.request_log) > 2 * len(APPS) * len(REPORTS), "several windows each"
    emitted: dict[tuple[str, str], set[str]] = {}
    moves = 0
    previous: dict[tuple[str, str], str | None] = {}
    for _, message in _walk(run):
        if message["type"] == "RECORD":
            record = message["record"]
            key = (message["stream"], record["app_id"])
            mark = previous.get(key)
            # Nothing at or before a saved bookmark is emitted again in the same run.
            assert mark is None or record["date"] > mark
            emitted.setdefault(key, set()).add(record["date"])
        elif message["type"] == "STATE":
            for key, mark in _bookmarks(message["value"]).items():
                if mark is None or mark == previous.get(key):
                    continue
                moves += 1
                # Every date up to the new bookmark was emitted before the STATE.
                wanted = {d.isoformat() for d in days(date(2026, 6, 1), date.fromisoformat(mark))}
                assert wanted <= emitted.get(key, set()), (key, mark)
                previous[key] = mark
    assert moves > len(APPS) * len(REPORTS), "the bookmark moved window by window"


def test_interrupted_run_resumes_with_no_gap(sandbox) -> None:
    config = _config(sandbox, max_window_days=3, max_requests_in_flight=1, max_retries=0)
    # Two windows answer, then a 500 burst exhausts the retries mid-run.
    sandbox.script("timeout:0", "timeout:0", "500")
    first = run_tap(config, now=NOW, expect_exit=1)
    assert [c.status for c in sandbox.request_log[:3]] == [200, 200, 500]
    assert first.records, "the first run emitted something before it stopped"
    second = run_tap(config, state=first.last_state, now=NOW, expect_exit=0)
    sandbox.clear_log()
    clean = run_tap(config, now=NOW, expect_exit=0)
    assert _keys(first) | _keys(second) == _keys(clean)
    assert not _keys(first) & _keys(second), "nothing loaded twice"
    together = {
        stream: first.records.get(stream, []) + second.records.get(stream, [])
        for stream in clean.records
    }
    for stream, records in clean.records.items():
        assert sorted(map(repr, together[stream])) == sorted(map(repr, records))
    assert _bookmarks(second.last_state) == _bookmarks(clean.last_state)


def test_each_app_resumes_from_its_own_bookmark(sandbox) -> None:
    first = run_tap(_config(sandbox, app_ids=APPS[:1], start_date="2026-06-10"), now=NOW)
    assert first.exit_code == 0
    # A day later, a second app joins: it starts at start_date, the first app goes on.
    tomorrow = SANDBOX_TODAY + timedelta(days=1)
    sandbox.set_today(tomorrow)
    sandbox.clear_log()
    config = _config(sandbox, start_date="2026-06-10")
    second = run_tap(config, state=first.last_state, now=utc_noon(tomorrow), expect_exit=0)
    starts = {(c.app_id, c.body["from"]) for c in sandbox.request_log}
    assert ("com.example.app", "2026-06-10") in starts
    assert all(start >= "2026-06-14" for app, start in starts if app == APPS[0])
    new_dates = {r["date"] for s in second.records.values() for r in s if r["app_id"] == APPS[0]}
    assert new_dates == {"2026-06-14", "2026-06-15"}
    assert set(_bookmarks(second.last_state).values()) == {"2026-06-15"}
