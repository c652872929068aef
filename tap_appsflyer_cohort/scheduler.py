"""Which calls are in flight: windows fetched ahead in sync order, replaced when the API says so.

The SDK syncs streams one after another and each stream's apps one after another. Left
alone, every app boundary would drain the requests in flight and waste the account's
per-minute budget while answers take seconds. So the tap plans every selected stream
and app when the sync starts, and this queue keeps up to ``max_ahead`` windows in flight
in that same order, across boundaries. Emission stays ordered because each stream takes
its own windows, oldest first, and state is written only after a window is emitted.

When an answer says a window cannot serve its dates (it hit the row cap, a partial-data
answer lacked periods, the API refused the range), the window is replaced at the front
of the queue by the windows that can, so emission stays oldest first and state never
skips a window.

Answers that arrive faster than they can be emitted wait in memory, so the queue also
stops sending while the answers already waiting hold more than ``max_buffered_values``
values: memory stays flat however many windows a backfill has.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from tap_appsflyer_cohort import planner
from tap_appsflyer_cohort.contract import HORIZON_DAYS, HORIZON_DAYS_STRICT
from tap_appsflyer_cohort.errors import (
    BudgetExhaustedError,
    DailyLimitReached,
    PartialDataShortfall,
    QueryRejectedError,
    RowCapReached,
    SingleDayCapError,
)
from tap_appsflyer_cohort.report import Report
from tap_appsflyer_cohort.responses import CohortTable

#: A 422 that says the window is too long (the key ``to``, a range, a number of days);
#: words alone ("days_active", "exceeds the maximum of 100 values") are not enough.
_TOO_LONG = re.compile(r"for key: to\b|\b(date )?range\b|\b\d+\s*days?\b", re.IGNORECASE)
#: A 422 about the ``from`` date (too old for the API's horizon).
_TOO_OLD = re.compile(r"for key: from\b", re.IGNORECASE)


class WindowSource(Protocol):
    """What the queue needs from a report stream."""

    name: str
    report: Report

    @property
    def logger(self) -> logging.Logger:
        """Where the stream's messages go."""

    def fetch(self, app_id: str, window: planner.Window, kpi: str, today: date) -> CohortTable:
        """One KPI of one window (runs in a worker thread)."""


class CallBudget(Protocol):
    """The day's call budget, promised window by window (the pacer)."""

    used_today: int
    daily_budget: int

    def reserve(self, calls: int) -> None:
        """Promise ``calls``; raise BudgetExhaustedError when the budget cannot cover them."""

    def release(self, calls: int) -> None:
        """Give back promised calls that will not be made."""


@dataclass
class ApiLimits:
    """What the API taught during this run (shared by every stream, changed in place)."""

    max_window_days: int
    horizon_days: int = HORIZON_DAYS
    partial_fetch_ok: bool = True


@dataclass(frozen=True)
class RowCapPolicy:
    """The rows at which an answer counts as cut, and what a one-day cut does."""

    row_cap: int
    on_row_cap: Literal["fail", "warn"] = "fail"


@dataclass(eq=False)
class FetchJob:
    """One window of one stream and app, and its calls once submitted."""

    stream: WindowSource
    app_id: str
    today: date
    window: planner.Window
    futures: dict[str, Future[CohortTable]] | None = field(default=None, repr=False)

    def belongs_to(self, stream: WindowSource, app_id: str | None) -> bool:
        """True for jobs of ``stream`` (and ``app_id``, when given)."""
        return self.stream is stream and (app_id is None or self.app_id == app_id)

    @property
    def calls(self) -> int:
        """One call per KPI."""
        return len(self.stream.report.kpis)


class Scheduler:
    """An ordered queue of windows with a bounded number submitted ahead."""

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        *,
        max_ahead: int,
        limits: ApiLimits,
        row_caps: RowCapPolicy,
        budget: CallBudget | None = None,
        now: Callable[[], datetime],
        max_buffered_values: int = 2_000_000,
    ) -> None:
        self.executor = executor
        self.max_ahead = max(1, max_ahead)
        self.limits = limits
        self.row_caps = row_caps
        self.budget = budget
        self.now = now
        self.max_buffered_values = max_buffered_values
        self._queue: deque[FetchJob] = deque()

    # ---- the queue -----------------------------------------------------------------

    def enqueue(self, jobs: Iterable[FetchJob]) -> None:
        """Queue windows at the back, in the order they will be emitted."""
        self._queue.extend(jobs)

    def has_jobs(self, stream: WindowSource, app_id: str) -> bool:
        """True while windows of this stream and app are queued."""
        return any(job.belongs_to(stream, app_id) for job in self._queue)

    def take(self, stream: WindowSource, app_id: str) -> FetchJob | None:
        """The next window of this stream and app (sent, maybe answered), or None."""
        for index, job in enumerate(self._queue):
            if job.belongs_to(stream, app_id):
                del self._queue[index]
                self._submit(job, needed=True)
                self._top_up()
                return job
        return None

    def abandon(self, stream: WindowSource, app_id: str | None = None) -> None:
        """Drop and cancel the queued windows of a stream (or of one of its apps)."""
        kept: deque[FetchJob] = deque()
        for job in self._queue:
            if job.belongs_to(stream, app_id):
                unsent = [f.cancel() for f in (job.futures or {}).values()].count(True)
                if unsent and self.budget is not None:
                    self.budget.release(unsent)
            else:
                kept.append(job)
        self._queue = kept

    def _put_front(self, jobs: list[FetchJob]) -> None:
        """Queue windows first and send them now (they replace the one being handled)."""
        for job in reversed(jobs):
            self._queue.appendleft(job)
            self._submit(job)

    def _submit(self, job: FetchJob, *, needed: bool = False) -> bool:
        """Send a window's calls if the budget covers all of them; False if it does not.

        A window that is ``needed`` now and not covered gets the budget error as its
        answer, so the run stops there, before any of its calls, with state saved.
        """
        if job.futures is not None:
            return True
        kpis = job.stream.report.kpis
        if self.budget is not None:
            try:
                self.budget.reserve(len(kpis))
            except BudgetExhaustedError as exc:
                if needed:
                    job.futures = {kpi: _failed(exc) for kpi in kpis}
                return needed
        job.futures = {
            kpi: self.executor.submit(job.stream.fetch, job.app_id, job.window, kpi, job.today)
            for kpi in kpis
        }
        return True

    def _top_up(self) -> None:
        buffered = 0
        for ahead, job in enumerate(self._queue):
            if ahead >= self.max_ahead or buffered > self.max_buffered_values:
                return
            if not self._submit(job):
                return  # the budget ends here: nothing later may spend it out of order
            buffered += _values_waiting(job)

    # ---- answers, or replacement windows -------------------------------------------

    def collect(self, job: FetchJob) -> dict[str, CohortTable] | None:
        """The window's tables (None when other windows replace it)."""
        stream = job.stream
        tables: dict[str, CohortTable] | None = None
        try:
            tables = _results(job)
        except RowCapReached:
            capped = True
        except PartialDataShortfall as exc:
            self.limits.partial_fetch_ok = False
            stream.logger.warning(
                "A partial-data answer lacked complete periods %s: asking for complete data "
                "only from now on",
                exc,
            )
            self._replan(job, list(job.window.dates), partial=False)
            return None
        except QueryRejectedError as exc:
            about_dates = _TOO_LONG.search(exc.server_text) or _TOO_OLD.search(exc.server_text)
            if job.window.days > 1 and about_dates and self._adapt_to_rejection(job, exc):
                return None
            raise
        except DailyLimitReached as exc:
            used, budget = (0, 0) if self.budget is None else self.budget_figures()
            resume = self.now() + timedelta(seconds=exc.seconds)
            raise BudgetExhaustedError(used, budget, resume, api_limit=True) from None
        else:
            capped = any(len(t.rows) >= self.row_caps.row_cap for t in tables.values())
        if not capped and tables is not None:
            return tables
        self._split(job)
        return None

    def budget_figures(self) -> tuple[int, int]:
        """Calls used today and the day's budget (for the stop message)."""
        assert self.budget is not None
        return self.budget.used_today, self.budget.daily_budget

    def _replan(self, job: FetchJob, dates: list[date], *, partial: bool) -> None:
        report = job.stream.report
        windows = planner.plan_windows(
            dates,
            today=job.today,
            periods=report.periods,
            max_window_days=self.limits.max_window_days,
            partial_fetch=partial,
        )
        self._put_front([FetchJob(job.stream, job.app_id, job.today, w) for w in windows])

    def _split(self, job: FetchJob) -> None:
        stream, window, cap = job.stream, job.window, self.row_caps.row_cap
        halves = planner.split_window(window)
        if halves is None:
            day = window.start.isoformat()
            if self.row_caps.on_row_cap == "warn":
                stream.logger.warning(
                    "Skipping report '%s', app '%s', date %s: one day returns %d rows, the "
                    "API's cap (on_row_cap: warn); it is asked again next run",
                    stream.name,
                    job.app_id,
                    day,
                    cap,
                )
                return
            raise SingleDayCapError(stream.name, job.app_id, day, cap)
        stream.logger.info(
            "Window %s..%s of report '%s', app '%s' hit the %d-row cap: discarded, asking "
            "for %s..%s and %s..%s",
            window.start,
            window.end,
            stream.name,
            job.app_id,
            cap,
            halves[0].start,
            halves[0].end,
            halves[1].start,
            halves[1].end,
        )
        self._put_front([FetchJob(stream, job.app_id, job.today, half) for half in halves])

    def _adapt_to_rejection(self, job: FetchJob, exc: QueryRejectedError) -> bool:
        stream, window = job.stream, job.window
        text = exc.server_text
        horizon_start = job.today - timedelta(days=HORIZON_DAYS_STRICT)
        if _TOO_OLD.search(text) and window.start < horizon_start:
            if self.limits.horizon_days > HORIZON_DAYS_STRICT:
                self.limits.horizon_days = HORIZON_DAYS_STRICT
                stream.logger.warning(
                    "The API refused %s as too old: keeping to the last %d days for the rest "
                    "of the run",
                    window.start,
                    HORIZON_DAYS_STRICT,
                )
            dates = [d for d in window.dates if d >= horizon_start]
        elif _TOO_LONG.search(text) and self._halve_window_size(
            stream, exc.server_text, window.days
        ):
            dates = list(window.dates)
        else:
            return False
        if dates:
            self._replan(job, dates, partial=window.partial)
        return True

    def _halve_window_size(self, stream: WindowSource, server_text: str, refused: int) -> bool:
        """After a range 422: half the refused size for the rest of the run (logged once).

        Windows already in flight were planned with the old size and come back refused
        too: they must not halve it again.
        """
        if refused <= 1:
            return False
        size = min(self.limits.max_window_days, refused // 2)
        if size < self.limits.max_window_days:
            self.limits.max_window_days = size
            stream.logger.warning(
                "The API refused a %d-day range (%s): using %d-day windows for the rest of the run",
                refused,
                server_text,
                size,
            )
        return True


def _failed(error: BaseException) -> Future[CohortTable]:
    """An answer that is an error (a window the budget cannot cover)."""
    future: Future[CohortTable] = Future()
    future.set_exception(error)
    return future


def _values_waiting(job: FetchJob) -> int:
    """Values held by a job's finished calls (an estimate of the memory they take)."""
    held = 0
    for future in (job.futures or {}).values():
        if future.done() and not future.cancelled() and future.exception() is None:
            table = future.result()
            held += len(table.rows) * (len(table.columns) + 4)
    return held


def _results(job: FetchJob) -> dict[str, CohortTable]:
    """Wait for every call of a job; re-raise the first error."""
    assert job.futures is not None
    return {kpi: future.result() for kpi, future in job.futures.items()}
