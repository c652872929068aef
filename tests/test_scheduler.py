"""scheduler.py on its own: calls sent ahead in sync order, windows replaced on the API's word.

The source here answers from a dict (a stand-in for the HTTP client, whose own tests talk
to the sandbox): each test sees one rule of the queue alone.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from tap_appsflyer_cohort import planner
from tap_appsflyer_cohort.errors import (
    BudgetExhaustedError,
    PartialDataShortfall,
    QueryRejectedError,
    SingleDayCapError,
)
from tap_appsflyer_cohort.pacer import Pacer
from tap_appsflyer_cohort.report import parse_report
from tap_appsflyer_cohort.responses import CohortTable
from tap_appsflyer_cohort.scheduler import ApiLimits, FetchJob, RowCapPolicy, Scheduler

TODAY = date(2026, 6, 15)


class Source:
    """A report stream whose calls answer with ``rows`` rows, or raise ``errors``."""

    def __init__(self, name: str = "s", kpis: tuple[str, ...] = ("sessions",)) -> None:
        self.name = name
        self.report = parse_report({"name": name, "kpis": list(kpis)}, 0)
        self.calls: list[tuple[str, date, date, str]] = []
        self.rows = 1
        self.errors: list[BaseException] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = 0
        self._lock = threading.Lock()

    @property
    def logger(self) -> logging.Logger:
        return logging.getLogger("test-scheduler")

    def fetch(self, app_id: str, window: planner.Window, kpi: str, today: date) -> CohortTable:
        with self._lock:
            self.started += 1
        self.gate.wait(10)
        with self._lock:
            self.calls.append((app_id, window.start, window.end, kpi))
            if self.errors:
                raise self.errors.pop(0)
        table = CohortTable(kpi=kpi, columns=[("count", 0)])
        table.rows = [
            ((window.start.isoformat(), str(n)), 1, None, None, [1.0]) for n in range(self.rows)
        ]
        return table


def _window(start: int, end: int) -> planner.Window:
    days = tuple(TODAY - timedelta(days=d) for d in range(start, end - 1, -1))
    return planner.Window(start=days[0], end=days[-1], dates=days)


def _scheduler(executor: ThreadPoolExecutor, **overrides: Any) -> Scheduler:
    settings: dict[str, Any] = {
        "max_ahead": 2,
        "limits": ApiLimits(max_window_days=60),
        "row_caps": RowCapPolicy(row_cap=10),
        "now": lambda: datetime(2026, 6, 15, 12, tzinfo=timezone.utc),
    }
    settings.update(overrides)
    return Scheduler(executor, **settings)


@pytest.fixture
def executor() -> Any:
    pool = ThreadPoolExecutor(max_workers=4)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


def test_windows_come_back_in_order_per_stream_and_app(executor: ThreadPoolExecutor) -> None:
    a, b = Source("a"), Source("b")
    scheduler = _scheduler(executor)
    jobs = [
        FetchJob(s, app, TODAY, _window(n + 2, n + 1))
        for s in (a, b)
        for app in ("x", "y")
        for n in (4, 2)
    ]
    scheduler.enqueue(jobs)
    taken = []
    while (job := scheduler.take(b, "y")) is not None:
        taken.append(job)
    assert taken == [j for j in jobs if j.stream is b and j.app_id == "y"]
    assert scheduler.has_jobs(a, "x")
    assert not scheduler.has_jobs(b, "y")


def test_only_max_ahead_windows_are_sent_ahead(executor: ThreadPoolExecutor) -> None:
    source = Source()
    source.gate.clear()  # no call finishes: what is sent is what the queue sent
    scheduler = _scheduler(executor, max_ahead=2)
    scheduler.enqueue(FetchJob(source, "x", TODAY, _window(n + 1, n + 1)) for n in range(10))
    first = scheduler.take(source, "x")
    assert first is not None
    deadline = datetime.now(timezone.utc) + timedelta(seconds=5)
    while source.started < 3 and datetime.now(timezone.utc) < deadline:
        threading.Event().wait(0.01)
    assert source.started == 3  # the window taken, then two ahead of it (4 workers idle)
    source.gate.set()
    assert scheduler.collect(first) is not None


def test_a_window_the_budget_cannot_cover_is_not_sent(executor: ThreadPoolExecutor) -> None:
    source = Source(kpis=("sessions", "revenue"))
    pacer = Pacer(10**6, 3)  # three calls: one window of two KPIs, not two
    scheduler = _scheduler(executor, budget=pacer)
    scheduler.enqueue(FetchJob(source, "x", TODAY, _window(n + 1, n + 1)) for n in range(3))
    first = scheduler.take(source, "x")
    assert first is not None
    assert set(scheduler.collect(first) or {}) == {"sessions", "revenue"}
    second = scheduler.take(source, "x")
    assert second is not None
    with pytest.raises(BudgetExhaustedError, match="the next window needs 2"):
        scheduler.collect(second)
    assert len(source.calls) == 2


def test_abandoning_a_stream_gives_its_promised_calls_back() -> None:
    source = Source()
    source.gate.clear()
    pacer = Pacer(10**6, 100)
    with ThreadPoolExecutor(max_workers=1) as one_worker:
        scheduler = _scheduler(one_worker, budget=pacer, max_ahead=4)
        scheduler.enqueue(FetchJob(source, "x", TODAY, _window(n + 1, n + 1)) for n in range(6))
        scheduler.take(source, "x")  # its call runs; four more wait in the pool
        scheduler.abandon(source)
        source.gate.set()
    assert not scheduler.has_jobs(source, "x")
    # Only the call that ran keeps its promise: 99 of the 100 calls can be promised again.
    pacer.reserve(99)
    with pytest.raises(BudgetExhaustedError):
        pacer.reserve(1)


def test_a_capped_answer_is_replaced_by_its_halves(executor: ThreadPoolExecutor) -> None:
    source = Source()
    source.rows = 10  # the cap
    scheduler = _scheduler(executor)
    scheduler.enqueue([FetchJob(source, "x", TODAY, _window(4, 1))])
    job = scheduler.take(source, "x")
    assert job is not None
    assert scheduler.collect(job) is None
    halves = [scheduler.take(source, "x"), scheduler.take(source, "x")]
    assert [(h.window.start, h.window.end) for h in halves if h] == [
        (TODAY - timedelta(4), TODAY - timedelta(3)),
        (TODAY - timedelta(2), TODAY - timedelta(1)),
    ]


def test_one_day_at_the_cap_fails_or_is_skipped(executor: ThreadPoolExecutor) -> None:
    source = Source()
    source.rows = 10
    scheduler = _scheduler(executor)
    scheduler.enqueue([FetchJob(source, "x", TODAY, _window(1, 1))])
    job = scheduler.take(source, "x")
    assert job is not None
    with pytest.raises(SingleDayCapError, match="one day alone returns 10 rows"):
        scheduler.collect(job)
    lenient = _scheduler(executor, row_caps=RowCapPolicy(row_cap=10, on_row_cap="warn"))
    lenient.enqueue([FetchJob(source, "x", TODAY, _window(1, 1))])
    job = lenient.take(source, "x")
    assert job is not None
    assert lenient.collect(job) is None
    assert not lenient.has_jobs(source, "x")


def test_a_partial_data_shortfall_replans_with_complete_data(executor: ThreadPoolExecutor) -> None:
    source = Source()
    source.errors = [PartialDataShortfall("[3]")]
    limits = ApiLimits(max_window_days=60)
    scheduler = _scheduler(executor, limits=limits)
    window = planner.Window(TODAY - timedelta(5), TODAY - timedelta(1), _window(5, 1).dates, True)
    scheduler.enqueue([FetchJob(source, "x", TODAY, window)])
    job = scheduler.take(source, "x")
    assert job is not None
    assert scheduler.collect(job) is None
    assert limits.partial_fetch_ok is False
    replans = []
    while (job := scheduler.take(source, "x")) is not None:
        replans.append(job.window)
    assert replans
    assert not any(w.partial for w in replans)
    assert sorted(d for w in replans for d in w.dates) == list(window.dates)


@pytest.mark.parametrize(
    ("text", "adapted"),
    [
        ("Invalid value: 2026-06-14 for key: to. Expected one of: a date at most 2 days", True),
        ("Invalid value: days_active for key: kpis", False),
        ("The number of values exceeds the maximum of 100", False),
    ],
)
def test_a_range_refusal_halves_the_window_other_refusals_stop(
    executor: ThreadPoolExecutor, text: str, adapted: bool
) -> None:
    source = Source()
    source.errors = [QueryRejectedError("s", "x", "w", text)]
    limits = ApiLimits(max_window_days=60)
    scheduler = _scheduler(executor, limits=limits)
    scheduler.enqueue([FetchJob(source, "x", TODAY, _window(4, 1))])
    job = scheduler.take(source, "x")
    assert job is not None
    if adapted:
        assert scheduler.collect(job) is None
        assert limits.max_window_days == 2
    else:
        with pytest.raises(QueryRejectedError):
            scheduler.collect(job)
        assert limits.max_window_days == 60
