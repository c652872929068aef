"""Which date windows to query so maturing cohorts are refreshed with the fewest calls.

A pure module: dates, periods and the ledger of what is loaded go in, windows come out.

The rule it encodes (vendor page: "the number of complete cohort days for a query is the
difference between today's date and the to date"): a query for LTV dates ``[from, to]``
without partial data returns, for every cohort in it, the requested periods ``p`` with
``p < today - to``. Cohort date ``D`` itself has its periods ``p < today - D`` complete.
So a date can share a window ending at ``to`` only when no requested period lies in
``[today - to, today - D)``: then the window gives it every period complete today, and
none that is not. A date is *final* once all requested periods are complete
(``today - D > max period``) and is never queried again, except for restatements.

With partial data (cumulative reports only) the API returns incomplete periods too and
the tap judges completeness per row (period ``p`` of ``D`` is complete when
``D + p < today``), so any window of at most ``max_window_days`` serves all its dates.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from tap_appsflyer_cohort.ledger import Ledger
from tap_appsflyer_cohort.report import Report


@dataclass(frozen=True)
class Window:
    """One date window to query (once per KPI); ``dates`` are the dates it must serve."""

    start: date
    end: date
    dates: tuple[date, ...]
    partial: bool = False

    @property
    def days(self) -> int:
        """Length of the window in days, both ends included."""
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class DateBounds:
    """The cohort dates a run may ask for (none when ``first > last``)."""

    first: date
    last: date
    #: The oldest date the API keeps.
    oldest: date
    #: The start date, when it is older than ``oldest`` (the sync starts later).
    horizon_cut: date | None = None


def date_bounds(
    *,
    today: date,
    start_date: date | None,
    end_date: date | None,
    horizon_days: int,
    hourly: bool = False,
) -> DateBounds:
    """The first and last cohort date to sync today.

    From ``start_date`` (30 days back when unset) but no older than the API's horizon,
    to yesterday or ``end_date``; hours only for the two whole days before today (the API
    serves hours of the last 72 only).
    """
    start = start_date or today - timedelta(days=30)
    oldest = today - timedelta(days=horizon_days)
    first = max(start, oldest)
    if hourly:
        first = max(first, today - timedelta(days=2))
    last = today - timedelta(days=1)
    if end_date is not None:
        last = min(last, end_date)
    return DateBounds(first, last, oldest, start if start < oldest else None)


@dataclass(frozen=True)
class AppPlan:
    """One app's plan for this run: its today, its ledger, the windows it needs."""

    app_id: str
    today: date
    ledger: Ledger
    windows: tuple[Window, ...]


def complete_periods(cohort_date: date, today: date, periods: Sequence[int]) -> list[int]:
    """Requested periods of ``cohort_date`` that are complete today."""
    elapsed = (today - cohort_date).days
    return [p for p in periods if p < elapsed]


def _count_below(periods: Sequence[int], days: int) -> int:
    return bisect.bisect_left(periods, days)


def dates_to_query(
    *,
    first_date: date,
    last_date: date,
    today: date,
    periods: Sequence[int],
    ledger: Ledger,
    restatement_days: int = 0,
    refresh_incomplete: bool = False,
) -> list[date]:
    """Dates whose loaded values are behind what is complete today, oldest first.

    ``periods`` must be sorted. ``refresh_incomplete`` (user asked for partial data) also
    refreshes every date that still has incomplete periods.
    """
    max_period = periods[-1]
    needed = []
    day = first_date
    while day <= last_date and day < today:
        elapsed = (today - day).days
        # A "final" date still inside the horizon cannot be (hand-edited state, or a clock
        # that went back): it is refreshed as a maturing date instead of every run.
        if elapsed > max_period and ledger.is_final(day):
            if elapsed <= max_period + restatement_days:
                needed.append(day)  # a restatement: final, but the user wants it re-read
        else:
            now_complete = _count_below(periods, elapsed)
            loaded = _count_below(periods, ledger.loaded_days(day))
            if now_complete > loaded or (refresh_incomplete and elapsed <= max_period):
                needed.append(day)
        day += timedelta(days=1)
    return needed


def _reach(
    end: date, today: date, periods: Sequence[int], max_window_days: int, *, partial: bool
) -> date:
    """The oldest date a window ending at ``end`` still serves fully."""
    reach = end - timedelta(days=max_window_days - 1)
    if partial:
        return reach
    elapsed_at_end = (today - end).days
    index = bisect.bisect_left(periods, elapsed_at_end)
    if index < len(periods):
        # The next requested period at or after elapsed_at_end must not be complete for
        # an older date in the window, else that date would miss it.
        reach = max(reach, today - timedelta(days=periods[index]))
    return reach


def plan_windows(
    needed: Sequence[date],
    *,
    today: date,
    periods: Sequence[int],
    max_window_days: int,
    partial_fetch: bool = False,
) -> list[Window]:
    """Cover ``needed`` dates with the fewest windows, returned oldest first.

    Greedy from the newest date: a window ends at the newest uncovered date (ending
    later only shrinks what it can serve) and reaches as far back as it can.
    Optimal because the reach of a window never grows as its end moves later.
    """
    max_period = periods[-1]
    windows: list[Window] = []
    pending = sorted(set(needed), reverse=True)
    i = 0
    while i < len(pending):
        end = pending[i]
        maturing = (today - end).days <= max_period
        partial = partial_fetch and maturing
        reach = _reach(end, today, periods, max_window_days, partial=partial)
        served = []
        while i < len(pending) and pending[i] >= reach:
            served.append(pending[i])
            i += 1
        windows.append(
            Window(start=served[-1], end=end, dates=tuple(reversed(served)), partial=partial)
        )
    windows.reverse()
    return windows


def plan(
    *,
    first_date: date,
    last_date: date,
    today: date,
    periods: Sequence[int],
    ledger: Ledger,
    max_window_days: int,
    restatement_days: int = 0,
    partial_fetch: bool = False,
    refresh_incomplete: bool = False,
) -> list[Window]:
    """The windows one report needs for one app today, oldest first."""
    needed = dates_to_query(
        first_date=first_date,
        last_date=last_date,
        today=today,
        periods=periods,
        ledger=ledger,
        restatement_days=restatement_days,
        refresh_incomplete=refresh_incomplete,
    )
    return plan_windows(
        needed,
        today=today,
        periods=periods,
        max_window_days=max_window_days,
        partial_fetch=partial_fetch or refresh_incomplete,
    )


def plan_app(
    report: Report,
    app_id: str,
    *,
    today: date,
    ledger: Ledger,
    bounds: DateBounds,
    max_window_days: int,
    partial_fetch_ok: bool = True,
) -> AppPlan:
    """One app's plan for one report: the windows it needs within ``bounds`` today."""
    windows: list[Window] = []
    if bounds.first <= bounds.last:
        windows = plan(
            first_date=bounds.first,
            last_date=bounds.last,
            today=today,
            periods=report.periods,
            ledger=ledger,
            max_window_days=max_window_days,
            restatement_days=report.restated_days,
            partial_fetch=report.uses_partial_fetch and partial_fetch_ok,
            refresh_incomplete=report.partial_data,
        )
    return AppPlan(app_id, today, ledger, tuple(windows))


def split_window(window: Window) -> tuple[Window, Window] | None:
    """Halve a window by date; None for a single day.

    Each half ends no later than the whole, so it returns at least the periods the whole
    did, and never one that is incomplete for its dates: halves serve their dates too.
    """
    if len(window.dates) < 2:
        return None
    middle = window.start + timedelta(days=(window.end - window.start).days // 2)
    older = tuple(d for d in window.dates if d <= middle)
    newer = tuple(d for d in window.dates if d > middle)
    return (
        Window(start=older[0], end=older[-1], dates=older, partial=window.partial),
        Window(start=newer[0], end=newer[-1], dates=newer, partial=window.partial),
    )
