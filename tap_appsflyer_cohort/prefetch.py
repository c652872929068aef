"""Fetch windows ahead across every stream and app, hand them back strictly in order.

The SDK syncs streams one after another and each stream's apps one after another. Left
alone, every app boundary would drain the requests in flight and waste the account's
per-minute budget while answers take seconds. So every selected stream plans all its
apps when the sync starts, and this queue keeps up to ``max_ahead`` windows in flight in
that same order, across boundaries. Emission stays ordered because each stream takes its
own windows, oldest first, and state is written only after a window is emitted.

Answers that arrive faster than they can be emitted wait in memory, so the queue also
stops sending while the answers already waiting hold more than ``max_buffered_values``
values: memory stays flat however many windows a backfill has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from tap_appsflyer_cohort.pacer import BudgetExhaustedError
from tap_appsflyer_cohort.planner import Window
from tap_appsflyer_cohort.responses import CohortTable


class WindowSource(Protocol):
    """What the queue needs from a stream."""

    name: str

    def fetch(self, app_id: str, window: Window, kpi: str, today: date) -> CohortTable:
        """One KPI of one window (runs in a worker thread)."""

    def kpi_names(self) -> tuple[str, ...]:
        """The KPIs, one call each per window."""


class CallBudget(Protocol):
    """The day's call budget, promised window by window (the pacer)."""

    def reserve(self, calls: int) -> None:
        """Promise ``calls``; raise BudgetExhaustedError when the budget cannot cover them."""

    def release(self, calls: int) -> None:
        """Give back promised calls that will not be made."""


@dataclass(eq=False)
class FetchJob:
    """One window of one stream and app, and its calls once submitted."""

    stream: WindowSource
    app_id: str
    today: date
    window: Window
    futures: dict[str, Future[CohortTable]] | None = field(default=None, repr=False)

    def belongs_to(self, stream: WindowSource, app_id: str | None) -> bool:
        """True for jobs of ``stream`` (and ``app_id``, when given)."""
        return self.stream is stream and (app_id is None or self.app_id == app_id)


class Prefetcher:
    """An ordered queue of windows with a bounded number submitted ahead."""

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        max_ahead: int,
        max_buffered_values: int = 2_000_000,
        budget: CallBudget | None = None,
    ) -> None:
        self.executor = executor
        self.max_ahead = max(1, max_ahead)
        self.max_buffered_values = max_buffered_values
        self.budget = budget
        self._queue: deque[FetchJob] = deque()
        self._planned = False

    def plan_once(self, plan_all: Callable[[], Iterable[FetchJob]]) -> None:
        """Queue every stream's windows the first time any stream starts syncing."""
        if not self._planned:
            self._planned = True
            self._queue.extend(plan_all())

    def add(self, jobs: Iterable[FetchJob]) -> None:
        """Queue windows at the back (a stream synced without the up-front plan)."""
        self._queue.extend(jobs)

    def put_front(self, jobs: list[FetchJob]) -> None:
        """Queue windows first and send them now (they replace the one being handled)."""
        for job in reversed(jobs):
            self._queue.appendleft(job)
            self._submit(job)

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

    def _submit(self, job: FetchJob, *, needed: bool = False) -> bool:
        """Send a window's calls if the budget covers all of them; False if it does not.

        A window that is ``needed`` now and not covered gets the budget error as its
        answer, so the run stops there, before any of its calls, with state saved.
        """
        if job.futures is not None:
            return True
        kpis = job.stream.kpi_names()
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


def results(job: FetchJob) -> dict[str, Any]:
    """Wait for every call of a job; re-raise the first error."""
    assert job.futures is not None
    return {kpi: future.result() for kpi, future in job.futures.items()}
