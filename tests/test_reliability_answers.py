"""Answers the API might send that the sandbox's clean path never does (issue 10).

Every case runs the tap twice, the second run from the first's last STATE (as the next
day's run would), the quirk on in the first run. It ends in one of:

* the clean table (a harmless quirk is read as the clean answer),
* the clean table after the second run, the first having loaded nothing partial as
  whole (what it could not trust it left due, with a warning),
* one ``Sync stopped`` line naming the problem, with nothing wrong loaded, and the
  second run completing the table.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from tests.conftest import SANDBOX_TODAY
from tests.helpers import TapRun, run_tap, sandbox_config, utc_noon
from tests.reliability_support import Table, upserted

NOW = utc_noon(SANDBOX_TODAY)
APP = "id123456789"
#: Two KPIs: one can answer short while the other answers in full.
TWO_KPIS = {
    "name": "ltv",
    "groupings": ["date", "pid"],
    "kpis": ["revenue", "roas"],
    "aggregation_type": "on_day",
    "filters": {"period": [0, 1, 3]},
}
ONE_KPI = {**TWO_KPIS, "kpis": ["revenue"]}


def _config(server: SandboxServer, report: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    start = (server.today - timedelta(days=8)).isoformat()
    settings = {"start_date": start, "reports": [report], "max_retries": 1, **overrides}
    return sandbox_config(server, **settings)


def _clean(server: SandboxServer, report: dict[str, Any], **overrides: Any) -> Table:
    """The table of a run without quirks (the sandbox's log is cleared after)."""
    run = run_tap(_config(server, report, **overrides), now=NOW, expect_exit=0)
    server.clear_log()
    return upserted(run.messages)


def _twice(
    server: SandboxServer, report: dict[str, Any], **overrides: Any
) -> tuple[TapRun, TapRun]:
    """Run with the quirks in force, drop them, run again from the first run's state."""
    config = _config(server, report, **overrides)
    first = run_tap(config, now=NOW)
    server.clear_quirks()
    second = run_tap(config, state=first.last_state, now=NOW, expect_exit=0)
    return first, second


def _assert_not_retried(server: SandboxServer) -> None:
    """Each query was sent once (windows sent ahead are other queries)."""
    bodies = [(c.body["from"], c.body["to"], tuple(c.body["kpis"])) for c in server.request_log]
    assert len(bodies) == len(set(bodies))


def _stop_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Sync stopped")]


def _warnings(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize("quirk", ["header-only", "short", "empty"])
def test_one_kpi_answering_short_leaves_its_dates_due(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, quirk: str
) -> None:
    clean = _clean(sandbox, TWO_KPIS)
    sandbox.quirk(quirk, kpi="roas")
    first, second = _twice(sandbox, TWO_KPIS)
    assert first.exit_code == 0
    assert "disagree on the cohorts" in _warnings(caplog)
    # Nothing with a null roas was loaded in place of a value.
    assert all(r["roas_rate"] is not None or r["period"] > 0 for r in first.records.get("ltv", []))
    assert upserted(first.messages, second.messages) == clean


@pytest.mark.parametrize("framing", ["", "+chunked", "+close-delimited"])
def test_a_body_cut_between_rows_loads_nothing_partial_as_whole(
    sandbox: SandboxServer, framing: str
) -> None:
    report = {**ONE_KPI, "filters": {"period": [0]}, "aggregation_type": "cumulative"}
    clean = _clean(sandbox, report, max_window_days=10)
    # One window of 8 dates, about 6 rows each: 20 rows end inside the fourth date.
    sandbox.script(f"cut-lines:20{framing}")
    first, second = _twice(sandbox, report, max_window_days=10)
    assert first.exit_code == 0
    loaded = upserted(first.messages)
    assert 0 < len(loaded) < len(clean)
    calls = sandbox.request_log
    assert calls, "the second run asks again for the dates the cut answer did not prove"
    assert upserted(first.messages, second.messages) == clean


def test_two_rows_with_one_key_and_different_values_stop_the_answer(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    clean = _clean(sandbox, ONE_KPI)
    sandbox.quirk("duplicate-key", kpi="revenue")
    first, second = _twice(sandbox, ONE_KPI)
    assert first.exit_code == 1
    (line,) = _stop_lines(caplog)
    assert "two rows for cohort" in line
    assert "ltv" not in first.records
    assert upserted(first.messages, second.messages) == clean


@pytest.mark.parametrize("quirk", ["time-suffix", "slash-dates", "bom", "no-final-newline"])
def test_harmless_spellings_load_the_clean_table(sandbox: SandboxServer, quirk: str) -> None:
    clean = _clean(sandbox, TWO_KPIS)
    sandbox.quirk(quirk)
    run = run_tap(_config(sandbox, TWO_KPIS), now=NOW, expect_exit=0)
    assert upserted(run.messages) == clean
    assert all(len(r["date"]) == 10 for r in run.records["ltv"])


@pytest.mark.parametrize(
    ("quirk", "kpi"),
    [("thousands-separators", None), ("percent-suffix", "roas"), ("raw-gzip", None)],
)
def test_numbers_and_bodies_in_other_dress_load_the_clean_table(
    sandbox: SandboxServer, quirk: str, kpi: str | None
) -> None:
    clean = _clean(sandbox, TWO_KPIS)
    sandbox.quirk(quirk, kpi=kpi)
    run = run_tap(_config(sandbox, TWO_KPIS), now=NOW, expect_exit=0)
    assert upserted(run.messages) == clean


def test_names_holding_odd_line_breaks_are_read_whole(sandbox: SandboxServer) -> None:
    sandbox.quirk("odd-line-breaks")
    run = run_tap(_config(sandbox, ONE_KPI), now=NOW, expect_exit=0)
    names = {r["pid"] for r in run.records["ltv"]}
    assert any(("\u2028" in n or "\x85" in n or "\x0c" in n) for n in names)


def test_a_field_over_the_csv_limit_is_read(sandbox: SandboxServer) -> None:
    sandbox.quirk("long-field", times=1)
    run = run_tap(_config(sandbox, ONE_KPI), now=NOW, expect_exit=0)
    assert max(len(r["pid"]) for r in run.records["ltv"]) >= 200_000


@pytest.mark.parametrize(
    ("quirk", "words"),
    [
        ("duplicate-column", "two columns named"),
        ("json-empty", "no results list"),
        ("json-error:quota exceeded for app", "200 with an error: quota exceeded for app"),
        ("latin-1", "not valid utf-8"),
    ],
)
def test_lasting_unreadable_answers_stop_with_one_line(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, quirk: str, words: str
) -> None:
    fmt = "json" if quirk.startswith("json") else "csv"
    clean = _clean(sandbox, ONE_KPI, response_format=fmt)
    sandbox.quirk(quirk)
    first, second = _twice(sandbox, ONE_KPI, response_format=fmt)
    assert first.exit_code == 1
    (line,) = _stop_lines(caplog)
    assert words in line
    assert "run the tap again to resume" in line
    assert "ltv" not in first.records
    assert upserted(first.messages, second.messages) == clean


def test_an_answer_that_trickles_is_bounded_by_request_timeout(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.quirk("trickle:200")
    run = run_tap(
        _config(sandbox, ONE_KPI, request_timeout=2, max_retries=0), now=NOW, expect_exit=1
    )
    (line,) = _stop_lines(caplog)
    assert "no whole answer within request_timeout (2 s)" in line
    assert "over 2 s" in line  # bytes kept coming, yet the call ended at the timeout
    assert "ltv" not in run.records


def test_a_lagging_api_is_absorbed_and_the_dates_stay_maturing(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    clean = _clean(sandbox, TWO_KPIS)
    sandbox.options.completeness_lag_days = 1
    config = _config(sandbox, TWO_KPIS)
    first = run_tap(config, now=NOW, expect_exit=0)
    assert "run behind this machine's date" in _warnings(caplog)
    assert first.records["ltv"]
    # Every value loaded is one the API gave as complete: a subset of the clean table.
    loaded = upserted(first.messages)
    assert all(clean[key] == record for key, record in loaded.items())
    assert len(loaded) < len(clean)
    sandbox.options.completeness_lag_days = 0
    second = run_tap(config, state=first.last_state, now=NOW, expect_exit=0)
    assert upserted(first.messages, second.messages) == clean


def test_a_lagging_api_with_partial_data_loads_nothing_incomplete(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    report = {**TWO_KPIS, "aggregation_type": "cumulative"}
    clean = _clean(sandbox, report)
    sandbox.options.completeness_lag_days = 1
    config = _config(sandbox, report)
    first = run_tap(config, now=NOW, expect_exit=0)
    loaded = upserted(first.messages)
    assert loaded
    assert all(clean[key] == record for key, record in loaded.items())
    sandbox.options.completeness_lag_days = 0
    second = run_tap(config, state=first.last_state, now=NOW, expect_exit=0)
    assert upserted(first.messages, second.messages) == clean


def test_retry_after_as_an_http_date_is_waited_for(sandbox: SandboxServer) -> None:
    clean = _clean(sandbox, ONE_KPI)
    sandbox.script("429-date:1")
    run = run_tap(_config(sandbox, ONE_KPI, max_retries=2), now=NOW, expect_exit=0)
    assert upserted(run.messages) == clean


def test_retry_after_as_tomorrows_date_is_the_daily_limit(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.quirk("429-date-tomorrow")
    config = _config(sandbox, ONE_KPI, max_retries=5, max_requests_in_flight=1)
    run_tap(config, now=NOW, expect_exit=1)
    (line,) = _stop_lines(caplog)
    assert "the API's daily request limit is reached" in line
    _assert_not_retried(sandbox)


@pytest.mark.parametrize("quirk", ["422-unknown-kpi", "422-exceeds"])
def test_422_texts_are_not_read_on_loose_words(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, quirk: str
) -> None:
    sandbox.quirk(quirk)
    run_tap(_config(sandbox, ONE_KPI, max_requests_in_flight=1), now=NOW, expect_exit=1)
    (line,) = _stop_lines(caplog)
    assert line.startswith("Sync stopped: 422")
    warnings = _warnings(caplog)
    assert "using" not in warnings  # no halving of the window
    assert "row cap" not in warnings
    _assert_not_retried(sandbox)
