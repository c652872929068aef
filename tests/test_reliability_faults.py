"""Faults: every fault the sandbox can inject either heals (the table equals a clean run's)
or stops the run with one line saying what happened and what to do, and state that lets
the next run finish with nothing lost. Retries are bounded in count and time, and logged.

Each case runs the real command against a sandbox of its own (a scripted fault goes to
the next call of that sandbox). The cases start together: each is mostly interpreter
start-up and a retry's wait, so running them one by one would only add up the waits.
"""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort import client
from tap_appsflyer_cohort.sandbox.options import RequestRecord
from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tests.conftest import SANDBOX_TODAY
from tests.helpers import TapRun, run_tap, run_tap_cli, sandbox_config, utc_noon
from tests.reliability_support import Table, log_lines, stop_line, upserted
from tests.tap_checks import assert_token_absent

#: One KPI with one function: a missing KPI column removes a whole complete period.
REPORT = {
    "name": "ltv",
    "groupings": ["date", "pid"],
    "kpis": ["roas"],
    "filters": {"period": [0, 1, 3]},
    # Final dates are not re-read, so a rerun asks only what the stopped run lacked.
    "restatement_days": 0,
}
DAYS_BACK = 7
#: What the user is told to do after any stop that a rerun can fix.
RESUME_ADVICE = "run the tap again to resume"


def fault_config(server: SandboxServer, **overrides: Any) -> dict[str, Any]:
    """A week in 3-day windows, one request at a time (scripted faults land in order)."""
    start = (server.today - timedelta(days=DAYS_BACK)).isoformat()
    settings: dict[str, Any] = {
        "start_date": start,
        "reports": [REPORT],
        "max_window_days": 3,
        "max_requests_in_flight": 1,
        "max_retries": 2,
        # Short only where a timeout is the fault: a busy machine must not add retries.
        "request_timeout": 30,
    }
    return sandbox_config(server, **{**settings, **overrides})


def sandbox_for_faults(**options: Any) -> Any:
    """A sandbox on the real clock (the tap runs as a command) with no per-minute limit."""
    return running_sandbox(seed=42, requests_per_minute=10**6, **options)


#: case -> (scripted faults, words of the "Retrying" line). Each heals on a retry.
HEALING: dict[str, tuple[tuple[str, ...], str]] = {
    "429 burst with Retry-After": (("429", "429"), "HTTP 429"),
    "500": (("500",), "HTTP 500"),
    "502": (("502",), "HTTP 502"),
    "503": (("503",), "HTTP 503"),
    "read timeout": (("timeout:1.5",), "ReadTimeout"),
    "connection reset": (("reset",), "ConnectionError"),
    "body cut, connection closed": (("truncate",), "ChunkedEncodingError"),
    "body cut mid-row, status 200": (("truncate-silent",), "AnswerError"),
    "200 with an HTML page": (("html",), "HTTP 200"),
    "users column missing": (("drop-column:users",), "AnswerError"),
    "KPI column missing": (("drop-column:roas_rate_day_0",), "AnswerError"),
    "users column renamed": (("rename-column:users=installs",), "AnswerError"),
    "KPI column renamed": (("rename-column:roas_rate_day_0=roas_day_0",), "AnswerError"),
}

#: case -> (the fault, repeated on every try; max_retries; words of the stop line).
PERSISTENT: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "429 with Retry-After": ("429", 1, ("429 Too Many Requests",)),
    "429 without Retry-After": ("429-bare", 0, ("429 Too Many Requests",)),
    "500": ("500", 1, ("500 Internal Server Error",)),
    "502": ("502", 1, ("502 Bad Gateway",)),
    "503": ("503", 1, ("503 Service Unavailable",)),
    "read timeout": ("timeout:1.5", 1, ("no whole answer within request_timeout (1 s)",)),
    "connection reset": ("reset", 1, ("the connection failed",)),
    "body cut, connection closed": ("truncate", 1, ("cut off in transit",)),
    "body cut mid-row, status 200": ("truncate-silent", 1, ("cut",)),
    "200 with an HTML page": ("html", 1, ("HTML page",)),
    "users column missing": ("drop-column:users", 1, ("lacks column(s) users",)),
    "KPI column missing": ("drop-column:roas_rate_day_0", 1, ("lacks period(s) [0]",)),
    "users column renamed": ("rename-column:users=installs", 1, ("lacks column(s) users",)),
}


def _run(
    faults: tuple[str, ...], tmp: Path, **overrides: Any
) -> tuple[TapRun, list[RequestRecord], str]:
    if any(fault.startswith("timeout:") and fault != "timeout:0" for fault in faults):
        overrides.setdefault("request_timeout", 1)  # the answer comes after 1.5 s
    with sandbox_for_faults() as server:
        server.script(*faults)
        run = run_tap_cli(fault_config(server, **overrides), tmp)
        return run, server.request_log, server.token


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Table, list[RequestRecord]]:
    """The table of a run without faults, and its calls."""
    run, calls, _ = _run((), tmp_path_factory.mktemp("clean"))
    assert run.exit_code == 0, run.stderr[-2000:]
    assert len(calls) >= 3, "the run should span several windows"
    return upserted(run.messages), calls


@pytest.fixture(scope="module")
def healed(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[TapRun, list[RequestRecord], str]]:
    """Every healing case, run as a command, concurrently."""

    # Folders are made here: pytest's mktemp is not safe across threads.
    folders = {case: tmp_path_factory.mktemp("healed") for case in HEALING}

    def run(case: str) -> tuple[TapRun, list[RequestRecord], str]:
        return _run(HEALING[case][0], folders[case])

    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(zip(HEALING, pool.map(run, HEALING), strict=True))


@pytest.fixture(scope="module")
def stopped(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[TapRun, list[RequestRecord], str]]:
    """Every persistent case, run as a command, concurrently: the first window answers,
    then the next call fails on every try."""

    folders = {case: tmp_path_factory.mktemp("stopped") for case in PERSISTENT}

    def run(case: str) -> tuple[TapRun, list[RequestRecord], str]:
        fault, retries, _ = PERSISTENT[case]
        faults = ("timeout:0", *[fault] * (retries + 1))  # timeout:0 is no fault at all
        return _run(faults, folders[case], max_retries=retries)

    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(zip(PERSISTENT, pool.map(run, PERSISTENT), strict=True))


@pytest.mark.parametrize("case", list(HEALING))
def test_fault_heals_to_the_clean_table(
    case: str,
    healed: dict[str, tuple[TapRun, list[RequestRecord], str]],
    clean: tuple[Table, list[RequestRecord]],
) -> None:
    faults, cause = HEALING[case]
    run, calls, token = healed[case]
    clean_table, clean_calls = clean
    assert run.exit_code == 0, run.stderr[-3000:]
    assert upserted(run.messages) == clean_table
    # Each fault cost exactly one more call, sent again at once after its wait.
    assert [c.fault for c in calls[: len(faults)]] == list(faults)
    assert len(calls) == len(clean_calls) + len(faults)
    retries = [line for line in log_lines(run.stderr, "WARNING") if "Retrying ltv" in line]
    assert len(retries) == len(faults), run.stderr[-3000:]
    assert all(cause in line for line in retries), retries
    assert log_lines(run.stderr, "ERROR") == []
    assert_token_absent(token, run.stderr, str(run.messages))


@pytest.mark.parametrize("case", list(PERSISTENT))
def test_persistent_fault_stops_with_one_line_and_the_rerun_loses_nothing(
    case: str,
    stopped: dict[str, tuple[TapRun, list[RequestRecord], str]],
    clean: tuple[Table, list[RequestRecord]],
) -> None:
    fault, retries, words = PERSISTENT[case]
    run, calls, token = stopped[case]
    assert run.exit_code == 1
    assert "Traceback" not in run.stderr
    line = stop_line(run.stderr)
    assert "| ERROR" in line
    for word in (*words, "stream 'ltv'", "'id123456789'", RESUME_ADVICE):
        assert word in line, line
    assert f"after {retries + 1} tries" in line
    # The failing call was tried exactly 1 + max_retries times, each try logged.
    assert [c.fault for c in calls[1 : retries + 2]] == [fault] * (retries + 1)
    assert len([c for c in calls if c.fault == fault]) == retries + 1
    first_window = calls[0].body
    assert first_window is not None
    # The first window was saved; the rerun starts there and finishes the table.
    state = run.last_state
    assert state is not None
    [partition] = state["bookmarks"]["ltv"]["partitions"]
    assert partition["replication_key_value"] == first_window["to"]
    with sandbox_for_faults() as server:
        rerun = run_tap(fault_config(server), state=state, expect_exit=0)
        asked = [c.body["from"] for c in server.request_log if c.body]
    assert first_window["from"] not in asked, "the saved window is not asked again"
    assert upserted(run.messages, rerun.messages) == clean[0]
    assert_token_absent(token, run.stderr, str(run.messages))


# ---- faults that need the tap's clock or a smaller bound -------------------------------


def _waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    found = [re.search(r"waiting ([0-9.]+) s", r.getMessage()) for r in caplog.records]
    return [float(m[1]) for m in found if m]


def test_bare_429_waits_for_the_next_minute_then_heals(sandbox, caplog) -> None:
    """A 429 without Retry-After waits until the per-minute window turns.

    The tap's clock is set 2.5 s before a minute ends (the sandbox does not care), so the
    real wait is short; the logged wait must reach past the minute boundary.
    """
    caplog.set_level(logging.INFO)
    config = fault_config(sandbox, start_date="2026-06-08")
    clean = run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=0)
    sandbox.clear_log()
    sandbox.script("429-bare")
    before_noon = datetime.combine(SANDBOX_TODAY, time(11, 59, 57, 500_000), timezone.utc)
    run = run_tap(config, now=before_noon, expect_exit=0)
    assert [c.status for c in sandbox.request_log][:2] == [429, 200]
    [wait] = _waits(caplog)
    [record] = [r for r in caplog.records if "Retrying" in r.getMessage()]
    assert "HTTP 429" in record.getMessage()
    # The retry lands 0.5-3 s (jitter) after the next minute boundary of the tap's clock.
    # The wait is logged with one decimal (±0.05 s) some time after it was chosen: a few ms
    # on an idle machine, more on a loaded 2-core CI runner, hence the upper slack.
    boundary = (record.created // 60 + 1) * 60
    assert boundary + 0.5 - 0.2 <= record.created + wait <= boundary + 3.0 + 0.6
    assert upserted(run.messages) == upserted(clean.messages)


def test_retries_are_bounded_in_total_time(sandbox, caplog, monkeypatch) -> None:
    """Past the total retry time the run gives up, however many retries are left.

    The bound (300 s) is shrunk to 1 s so the test need not wait five minutes.
    """
    monkeypatch.setattr(client, "MAX_RETRY_SECONDS", 1.0)
    sandbox.script(*["503"] * 10)
    config = fault_config(sandbox, start_date="2026-06-12", max_retries=9)
    run = run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=1)
    assert "ltv" not in run.records
    tries = [c for c in sandbox.request_log if c.fault == "503"]
    assert 2 <= len(tries) < 10, "the time bound, not max_retries, ended the retries"
    [stop] = [r.getMessage() for r in caplog.records if "Sync stopped" in r.getMessage()]
    assert f"after {len(tries)} tries" in stop
    assert RESUME_ADVICE in stop


def test_retries_are_bounded_in_count(sandbox, caplog) -> None:
    sandbox.script(*["500"] * 3)
    config = fault_config(sandbox, start_date="2026-06-12", max_retries=1)
    run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=1)
    assert [c.fault for c in sandbox.request_log][:2] == ["500", "500"]
    assert len([c for c in sandbox.request_log if c.fault]) == 2, "1 try + 1 retry, no more"
    retrying = [r.getMessage() for r in caplog.records if "Retrying" in r.getMessage()]
    assert retrying == [retrying[0]]
    assert "try 1 of 2" in retrying[0]
    giving_up = [r for r in caplog.records if "Giving up" in r.getMessage()]
    assert [r.levelno for r in giving_up] == [logging.WARNING]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert [e for e in errors if "Sync stopped" in e] == [errors[-1]]


# ---- the row cap -----------------------------------------------------------------------


@pytest.fixture
def capped(sandbox: SandboxServer) -> tuple[SandboxServer, int]:
    """A sandbox whose page holds fewer rows than a 3-day window has (but more than a day)."""
    config = fault_config(sandbox, start_date="2026-06-08")
    run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=0)
    widest = max(c.rows for c in sandbox.request_log)
    narrowest = min(c.rows for c in sandbox.request_log)
    assert narrowest < widest
    sandbox.clear_log()
    return sandbox, (narrowest + widest) // 2


@pytest.mark.parametrize("over_cap", ["truncate", "error"])
def test_full_page_is_split_to_the_clean_table(capped, over_cap: str, caplog) -> None:
    """A page at the cap (10,000 rows in production) is never loaded: its window is split."""
    caplog.set_level(logging.INFO)
    sandbox, cap = capped
    config = fault_config(sandbox, start_date="2026-06-08")
    clean = run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=0)
    sandbox.clear_log()
    sandbox.options.row_cap, sandbox.options.over_cap = cap, over_cap
    run = run_tap({**config, "row_cap": cap}, now=utc_noon(SANDBOX_TODAY), expect_exit=0)
    hit = [c for c in sandbox.request_log if c.rows == cap or c.status == 422]
    assert hit, "the cap was never hit"
    assert upserted(run.messages) == upserted(clean.messages)
    if over_cap == "truncate":
        assert any(f"hit the {cap}-row cap" in r.getMessage() for r in caplog.records)


# ---- random faults ---------------------------------------------------------------------


def test_random_faults_on_every_kind_of_call_heal_to_the_clean_table(sandbox, caplog) -> None:
    """5xx, resets, cut bodies and HTML pages at random (seeded) across a backfill."""
    caplog.set_level(logging.INFO)
    sandbox.options.requests_per_minute = 10**6  # two runs of 30+ calls: no minute limit
    config = fault_config(
        sandbox,
        start_date="2026-05-16",
        max_window_days=1,  # 30 windows, 8 at a time: the retries' waits overlap
        max_requests_in_flight=8,
        max_retries=6,
    )
    clean = run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=0)
    sandbox.clear_log()
    options = sandbox.options
    options.error_rate = options.reset_rate = options.truncate_rate = options.html_rate = 0.08
    run = run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=0)
    faults = [c.fault for c in sandbox.request_log if c.fault]
    assert len({f[:1] for f in faults}) >= 3, f"too few kinds of fault to prove much: {faults}"
    retries = [r for r in caplog.records if "Retrying ltv" in r.getMessage()]
    assert len(retries) == len(faults)
    assert upserted(run.messages) == upserted(clean.messages)


@pytest.mark.parametrize(
    ("fault", "column", "period", "words"),
    [
        ("drop-column:sessions_count_day_0", "sessions_count", 0, "KPI 'sessions' lack count"),
        ("drop-column:cost", "cost", None, "lack column(s) cost"),
        ("rename-column:ecpi=ecpi_usd", "ecpi", None, "lack column(s) ecpi"),
    ],
    ids=["one function of a period", "cost", "ecpi renamed"],
)
def test_a_value_column_missing_loads_null_with_a_warning(
    sandbox, caplog, fault: str, column: str, period: int | None, words: str
) -> None:
    """The faults that neither heal nor stop: a value column (not a key, not a whole
    period) is missing. Missing columns read as null (the tap's reading rule: the API
    leaves out what it does not have), so the value is lost, but never silently: one
    warning names what is missing.
    """
    caplog.set_level(logging.INFO)
    report = {**REPORT, "kpis": ["sessions"]}  # count and rate per period
    config = fault_config(sandbox, start_date="2026-06-08", end_date="2026-06-08", reports=[report])
    clean = run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=0)
    sandbox.script(fault)  # one window, one call
    run = run_tap(config, now=utc_noon(SANDBOX_TODAY), expect_exit=0)
    before, after = upserted(clean.messages), upserted(run.messages)
    changed = {key for key in before if before[key] != after[key]}
    assert changed, "the fault changed nothing"
    assert set(after) == set(before)
    if period is not None:
        assert all(key[-1] == period for key in changed)
    assert all(after[key] == {**before[key], column: None} for key in changed)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if words in w and "null" in w]) == 1, warnings
