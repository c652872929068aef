"""What the tap asks the API: body, headers, windows, apps, and how it adapts to refusals."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tap_appsflyer_cohort.sandbox.server import SandboxServer
from tests.cohort_truth import days, emitted, truth
from tests.conftest import SANDBOX_TODAY
from tests.helpers import run_tap, sandbox_config, utc_noon
from tests.tap_checks import assert_is_bearer

NOW = utc_noon(SANDBOX_TODAY)
YESTERDAY = SANDBOX_TODAY - timedelta(days=1)
#: A cheap report: few periods, one grouping besides the date.
SMALL = {"name": "small", "groupings": ["date", "pid"], "kpis": ["sessions"]}


def small(**fields: Any) -> dict[str, Any]:
    return {**SMALL, "filters": {"period": [0, 1]}, **fields}


def windows(server: SandboxServer, status: int = 200) -> list[tuple[date, date]]:
    """Distinct (from, to) of the calls answered with ``status``, oldest first."""
    spans = {
        (date.fromisoformat(c.body["from"]), date.fromisoformat(c.body["to"]))
        for c in server.request_log
        if c.status == status and c.body
    }
    return sorted(spans)


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# ---- the wire -------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Forwards each call to the sandbox and keeps the request as it arrived."""

    protocol_version = "HTTP/1.1"
    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        upstream = requests.post(
            self.server.target + self.path,
            data=body,
            headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
            timeout=30,
        )
        self.send_response(upstream.status_code)
        self.send_header("Content-Type", upstream.headers.get("Content-Type", ""))
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def recorder(sandbox: SandboxServer) -> Iterator[Any]:
    """A loopback proxy in front of the sandbox that records headers (the sandbox does not)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.daemon_threads = True
    httpd.seen = []  # type: ignore[attr-defined]
    httpd.target = sandbox.base_url  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_post_body_and_headers_as_the_vendor_page(sandbox, recorder) -> None:
    host, port = recorder.server_address[:2]
    report = {
        "name": "trials",
        "groupings": ["date", "pid", "geo"],
        "kpis": ["Start Trial Auth"],
        "cohort_type": "unified",
        "min_cohort_size": 5,
        "per_user": True,
        "filters": {"geo": ["US", "GB"], "period": [7, 0, 1]},
    }
    config = sandbox_config(
        sandbox, api_url=f"http://{host}:{port}", start_date="2026-06-05", reports=[report]
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    assert run.records["trials"]
    assert len(recorder.seen) == 1
    method, target, headers, raw = recorder.seen[0]
    assert method == "POST"
    assert target == "/api/cohorts/v1/data/app/id123456789?format=csv"
    assert_is_bearer(headers.get("Authorization"), sandbox.token)
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert body.pop("partial_data") in (True, False)  # the tap's choice (see the planner)
    assert body == {
        "cohort_type": "unified",
        "from": "2026-06-05",
        "to": "2026-06-14",
        "groupings": ["date", "pid", "geo"],
        "kpis": ["Start Trial Auth"],
        "aggregation_type": "cumulative",
        "min_cohort_size": 5,
        "per_user": True,
        "preferred_currency": False,
        "preferred_timezone": False,
        "filters": {"geo": ["US", "GB"], "period": [0, 1, 7]},
    }


def test_json_transport_is_asked_in_the_query_string(sandbox) -> None:
    config = sandbox_config(
        sandbox, start_date="2026-06-12", reports=[small()], response_format="json"
    )
    run_tap(config, now=NOW, expect_exit=0)
    assert {json.dumps(c.query) for c in sandbox.request_log} == {'{"format": "json"}'}


# ---- KPIs, windows, dates -------------------------------------------------------------


def test_one_call_per_kpi_per_window_merged_on_the_cohort_key(sandbox) -> None:
    report = {
        "name": "merged",
        "groupings": ["date", "pid", "c"],
        "kpis": ["sessions", "revenue", "roas"],
        "filters": {"period": [0, 1, 3]},
    }
    config = sandbox_config(sandbox, start_date="2026-06-08", reports=[report])
    run = run_tap(config, now=NOW, expect_exit=0)
    calls = sandbox.request_log
    by_window: dict[tuple[str, str], list[str]] = {}
    for call in calls:
        by_window.setdefault((call.body["from"], call.body["to"]), []).extend(call.body["kpis"])
    assert all(sorted(kpis) == ["revenue", "roas", "sessions"] for kpis in by_window.values())
    expected = truth(sandbox, "id123456789", report, days(date(2026, 6, 8), YESTERDAY))
    got = emitted(run.records["merged"], report)
    assert got == expected
    assert any(r["roas_rate"] is not None and r["sessions_count"] for r in got.values())


def test_windows_respect_max_window_days(sandbox) -> None:
    config = sandbox_config(sandbox, start_date="2026-04-20", reports=[small()], max_window_days=7)
    run_tap(config, now=NOW, expect_exit=0)
    spans = windows(sandbox)
    assert spans
    assert all((end - start).days + 1 <= 7 for start, end in spans)
    covered = {d for start, end in spans for d in days(start, end)}
    assert covered == set(days(date(2026, 4, 20), YESTERDAY))


def test_windows_clamped_to_the_730_day_horizon(sandbox) -> None:
    report = small(groupings=["date"])
    last = SANDBOX_TODAY - timedelta(days=725)
    config = sandbox_config(
        sandbox, start_date="2023-01-01", end_date=last.isoformat(), reports=[report]
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    earliest = SANDBOX_TODAY - timedelta(days=730)
    assert windows(sandbox) == [(earliest, last)]
    assert all(c.status == 200 for c in sandbox.request_log)
    assert min(r["date"] for r in run.records["small"]) == earliest.isoformat()


def test_windows_clamped_to_today(sandbox) -> None:
    config = sandbox_config(
        sandbox, start_date="2026-06-10", end_date="2027-01-01", reports=[small()]
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    assert max(end for _, end in windows(sandbox)) == YESTERDAY
    assert max(r["date"] for r in run.records["small"]) == YESTERDAY.isoformat()


def test_hourly_granularity_asks_whole_days_within_72_hours(sandbox) -> None:
    report = small(groupings=["date", "geo"], granularity="hour", filters={"period": [0]})
    config = sandbox_config(sandbox, start_date="2026-06-01", reports=[report])
    run = run_tap(config, now=NOW, expect_exit=0)
    [call] = sandbox.request_log
    assert call.body["granularity"] == "hour"
    assert (call.body["from"], call.body["to"]) == ("2026-06-13 00:00:00", "2026-06-14 23:59:59")
    records = run.records["small"]
    assert {r["date"][:10] for r in records} == {"2026-06-13", "2026-06-14"}
    # A date and an hour (the API sends "yyyy-mm-dd hh:mm:ss"): no date-time to mangle.
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", r["date"]) for r in records)
    assert {r["hour"] for r in records} <= set(range(24))
    as_sent = [{**r, "date": f"{r['date']} {r['hour']:02d}:00:00"} for r in records]
    expected = truth(sandbox, "id123456789", report, [date(2026, 6, 13), date(2026, 6, 14)])
    assert emitted(as_sent, report) == expected


def test_end_date_is_honoured(sandbox) -> None:
    config = sandbox_config(
        sandbox, start_date="2026-05-20", end_date="2026-06-01", reports=[small()]
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    assert max(end for _, end in windows(sandbox)) == date(2026, 6, 1)
    assert max(r["date"] for r in run.records["small"]) == "2026-06-01"
    assert min(r["date"] for r in run.records["small"]) == "2026-05-20"


def test_report_app_ids_narrow_the_apps(sandbox) -> None:
    reports = [small(), small(name="android_only", app_ids=["com.example.app"])]
    config = sandbox_config(sandbox, start_date="2026-06-12", reports=reports)
    run = run_tap(config, now=NOW, expect_exit=0)
    assert {r["app_id"] for r in run.records["small"]} == {"id123456789"}
    assert {r["app_id"] for r in run.records["android_only"]} == {"com.example.app"}
    assert sorted(c.app_id for c in sandbox.request_log) == ["com.example.app", "id123456789"]


def test_each_app_is_a_partition_with_its_own_state(sandbox) -> None:
    apps = ["id123456789", "com.example.app", "com.example.game"]
    config = sandbox_config(sandbox, app_ids=apps, start_date="2026-06-10", reports=[small()])
    run = run_tap(config, now=NOW, expect_exit=0)
    assert {r["app_id"] for r in run.records["small"]} == set(apps)
    partitions = run.last_state["bookmarks"]["small"]["partitions"]
    assert [p["context"] for p in partitions] == [{"app_id": a} for a in apps]
    assert all(p["replication_key_value"] == YESTERDAY.isoformat() for p in partitions)
    # Each app's values are its own (currency and sizes differ between the apps).
    for app in apps:
        mine = [r for r in run.records["small"] if r["app_id"] == app]
        assert emitted(mine, small()) == truth(
            sandbox, app, small(), days(date(2026, 6, 10), YESTERDAY)
        )


# ---- adapting to refusals -------------------------------------------------------------


def test_range_refusal_halves_the_window_once_for_the_run(sandbox, caplog) -> None:
    caplog.set_level(logging.INFO)
    sandbox.options.max_range_days = 20  # the API takes at most 21 days; the tap asks 30
    config = sandbox_config(
        sandbox,
        app_ids=["id123456789", "com.example.app"],
        start_date="2026-03-01",
        reports=[small()],
        max_window_days=30,
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    refused = windows(sandbox, 422)
    served = windows(sandbox, 200)
    assert refused
    assert all((end - start).days + 1 == 30 for start, end in refused)
    # The refused dates are asked again in windows of half the refused size, not less.
    again = [(a, b) for a, b in served if any(s <= a and b <= e for s, e in refused)]
    assert max((end - start).days + 1 for start, end in again) == 15
    assert len(messages(caplog, "for the rest of the run")) == 1
    for app in config["app_ids"]:
        dates = {r["date"] for r in run.records["small"] if r["app_id"] == app}
        assert dates == {d.isoformat() for d in days(date(2026, 3, 1), YESTERDAY)}


def test_too_old_from_moves_the_horizon_to_720_days(sandbox, caplog) -> None:
    sandbox.options.horizon_days = 720
    report = small(groupings=["date"])
    last = SANDBOX_TODAY - timedelta(days=715)
    config = sandbox_config(
        sandbox, start_date="2024-01-01", end_date=last.isoformat(), reports=[report]
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    earliest = SANDBOX_TODAY - timedelta(days=720)
    assert windows(sandbox, 422) == [(SANDBOX_TODAY - timedelta(days=730), last)]
    assert windows(sandbox) == [(earliest, last)]
    assert min(r["date"] for r in run.records["small"]) == earliest.isoformat()
    assert len(messages(caplog, "too old")) == 1


# ---- the row cap ----------------------------------------------------------------------

CAPPED = {
    "name": "campaigns",
    "groupings": ["date", "pid", "c"],
    "kpis": ["sessions"],
    "filters": {"period": [0, 1]},
}


def test_capped_pages_are_split_never_emitted(sandbox, caplog) -> None:
    caplog.set_level(logging.INFO)
    sandbox.options.row_cap = 50  # a day has about 20 rows: 3+ days hit the cap
    config = sandbox_config(sandbox, start_date="2026-06-03", reports=[CAPPED], row_cap=50)
    run = run_tap(config, now=NOW, expect_exit=0)
    assert any(c.rows == 50 for c in sandbox.request_log), "the cap was never hit"
    assert messages(caplog, "hit the 50-row cap")
    expected = truth(sandbox, "id123456789", CAPPED, days(date(2026, 6, 3), YESTERDAY))
    assert emitted(run.records["campaigns"], CAPPED) == expected


def test_too_large_error_is_treated_like_the_cap(sandbox) -> None:
    sandbox.options.row_cap = 50
    sandbox.options.over_cap = "error"
    config = sandbox_config(sandbox, start_date="2026-06-03", reports=[CAPPED])
    run = run_tap(config, now=NOW, expect_exit=0)
    assert any(c.status == 422 for c in sandbox.request_log)
    expected = truth(sandbox, "id123456789", CAPPED, days(date(2026, 6, 3), YESTERDAY))
    assert emitted(run.records["campaigns"], CAPPED) == expected


def test_single_day_at_the_cap_fails_with_the_remedy(sandbox, caplog) -> None:
    sandbox.options.row_cap = 5
    config = sandbox_config(sandbox, start_date="2026-06-12", reports=[CAPPED], row_cap=5)
    run = run_tap(config, now=NOW, expect_exit=1)
    assert "campaigns" not in run.records
    [line] = [m for m in messages(caplog, "Sync stopped") if "cap" in m]
    assert "'campaigns'" in line
    assert "'id123456789'" in line
    assert "2026-06-12" in line
    assert "min_cohort_size" in line
    assert "on_row_cap" in line


def test_single_day_at_the_cap_is_skipped_with_warn(sandbox, caplog) -> None:
    report = {**CAPPED, "groupings": ["date", "pid", "c", "geo"]}
    dates = days(date(2026, 6, 8), YESTERDAY)
    sizes = {d: len(truth(sandbox, "id123456789", report, [d])) // 2 for d in dates}
    cap = sorted(sizes.values())[len(sizes) // 2]  # about half the days reach it
    too_big = {d for d, rows in sizes.items() if rows >= cap}
    assert 0 < len(too_big) < len(dates)
    sandbox.options.row_cap = cap
    config = sandbox_config(
        sandbox, start_date="2026-06-08", reports=[report], row_cap=cap, on_row_cap="warn"
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    skipped = messages(caplog, "on_row_cap: warn")
    assert sorted(m.split("date ")[1][:10] for m in skipped) == sorted(
        d.isoformat() for d in too_big
    )
    kept = [d for d in dates if d not in too_big]
    assert emitted(run.records["campaigns"], report) == truth(sandbox, "id123456789", report, kept)
