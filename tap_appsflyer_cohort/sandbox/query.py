"""Evaluate a validated query against the synthetic account: cells in, table rows out.

Completeness is the rule the tap relies on most. With T the query's "today":

* ``partial_data`` false: periods ``p < (T - to).days`` only, so every value is final.
* ``partial_data`` true: periods up to ``(T - from).days``; for cohort date D the day
  ``D + q == T`` counts at half its value and later days not at all, so incomplete
  values are visibly smaller than the final ones.

Cells are summed as integers (cents, counts) before any division or currency
conversion, so a coarse grouping always equals the sum of the finer ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import add
from typing import Any

from tap_appsflyer_cohort.contract import MAX_PERIOD
from tap_appsflyer_cohort.naming import api_column, kpi_functions
from tap_appsflyer_cohort.sandbox.account import (
    DECAY,
    DIMENSION_INDEX,
    GROWTH,
    Account,
    App,
    Cell,
)
from tap_appsflyer_cohort.sandbox.validation import Query

REVENUE_KPIS = frozenset({"revenue", "roas", "roi"})
Series = list[list[int]]


@dataclass
class Table:
    """The answer before rendering: typed row values in column order."""

    groupings: tuple[str, ...]
    kpi: str
    functions: tuple[str, ...]
    periods: tuple[int, ...]
    rows: list[list[Any]] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """Groupings, the always-present columns, then KPI columns period by period."""
        kpi_columns = [api_column(self.kpi, f, p) for p in self.periods for f in self.functions]
        return [*self.groupings, "users", "ecpi", "cost", *kpi_columns]


def returned_periods(query: Query) -> tuple[int, ...]:
    """Return the requested periods the completeness rule lets through."""
    today = query.today
    if query.partial_data:
        last = min(MAX_PERIOD, (today - query.first_date).days)
        return tuple(p for p in query.periods if p <= last)
    complete_days = (today - query.last_date).days
    return tuple(p for p in query.periods if p < complete_days)


def evaluate(query: Query, account: Account, app: App) -> Table:
    """Compute every row of ``query`` (before any row cap)."""
    periods = returned_periods(query)
    functions = kpi_functions(query.kpi, query.aggregation_type)
    table = Table(query.groupings, query.kpi, functions, periods)
    if query.first_date > query.today:
        return table  # Dates in the future: a valid query with no data.
    series_of = _series_builder(query, account, app, periods)
    groups: dict[tuple[str, ...], list[Any]] = {}
    for day, cell, label in _matching_cells(query, account, app):
        key = tuple(label if g == "date" else _dimension(cell, g) for g in query.groupings)
        series = series_of(cell, (query.today - day).days)
        entry = groups.get(key)
        if entry is None:
            groups[key] = [cell.users, cell.cost_cents, series]
        else:
            entry[0] += cell.users
            entry[1] += cell.cost_cents
            entry[2] = [list(map(add, old, new)) for old, new in zip(entry[2], series, strict=True)]
    rate = app.rate if query.preferred_currency else 1.0
    make_row = _row_maker(query, functions, rate)
    table.rows = [
        make_row(key, users, cost, series)
        for key, (users, cost, series) in sorted(groups.items())
        if users >= query.min_cohort_size
    ]
    return table


def _dimension(cell: Cell, name: str) -> str:
    return cell.cohort_type if name == "cohort_type" else cell.dims[DIMENSION_INDEX[name]]


def _matching_cells(query: Query, account: Account, app: App) -> list[tuple[date, Cell, str]]:
    """Return (LTV date, cell, date label) for every cell the query covers."""
    types = {"unified": {"user_acquisition", "retargeting"}}.get(
        query.cohort_type, {query.cohort_type}
    )
    if "cohort_type" in query.filters:
        types &= query.filters["cohort_type"]
    checks = [
        (DIMENSION_INDEX[name], allowed)
        for name, allowed in query.filters.items()
        if name in DIMENSION_INDEX
    ]
    hourly = query.granularity == "hour"
    window_start = query.start.replace(minute=0, second=0)
    found: list[tuple[date, Cell, str]] = []
    day = query.first_date
    while day <= query.last_date:
        if not hourly and day >= query.today:
            break  # Cohorts of today or later have no data yet.
        label = day.isoformat()
        midnight = datetime(day.year, day.month, day.day)
        for cell in account.cells(app.app_id, day):
            if cell.cohort_type not in types:
                continue
            if checks and not all(cell.dims[i] in allowed for i, allowed in checks):
                continue
            if hourly:
                moment = midnight + timedelta(hours=cell.hour)
                complete = moment + timedelta(hours=1) <= query.local_now
                if not (window_start <= moment <= query.end and complete):
                    continue
                found.append((day, cell, f"{label} {cell.hour:02d}:00:00"))
            else:
                found.append((day, cell, label))
        day += timedelta(days=1)
    return found


def _cumulative(
    base: int, span: float, curve: Sequence[float], periods: Sequence[int], elapsed: int
) -> list[int]:
    """Cumulative values through each period; day ``elapsed`` (today) counts half."""
    values = [base + int(span * curve[p]) for p in periods]
    if periods and periods[-1] >= elapsed:
        before = base + int(span * curve[elapsed - 1]) if elapsed > 0 else 0
        today = base + int(span * curve[elapsed])
        half = before + (today - before) // 2
        values = [v if p < elapsed else half for v, p in zip(values, periods, strict=True)]
    return values


def _on_day(span: float, curve: Sequence[float], periods: Sequence[int]) -> list[int]:
    """Daily increments of a cumulative count (base 0)."""
    return [int(span * curve[p]) - (int(span * curve[p - 1]) if p else 0) for p in periods]


def _daily_unique(
    users: int, share: float, decay: Sequence[float], periods: Sequence[int]
) -> list[int]:
    return [int(users * share * decay[p]) for p in periods]


def _series_builder(
    query: Query, account: Account, app: App, periods: tuple[int, ...]
) -> Callable[[Cell, int], Series]:
    """Return a function giving one cell's integer series for the query's KPI."""
    cumulative = query.aggregation_type == "cumulative"
    kpi = query.kpi
    zeros = [0] * len(periods)

    def count(span: float, curve: int, elapsed: int) -> list[int]:
        if cumulative:
            return _cumulative(0, span, GROWTH[curve], periods, elapsed)
        return _on_day(span, GROWTH[curve], periods)

    if kpi in REVENUE_KPIS:
        kinds = sorted(query.filters.get("revenue_type", {"regular", "ad_monetization"}))

        def revenue(cell: Cell, elapsed: int) -> Series:
            counts, cents = list(zeros), list(zeros)
            for kind in kinds:
                span, curve, price = cell.revenue[kind]
                counts = list(map(add, counts, count(span, curve, elapsed)))
                cents = list(map(add, cents, count(span * price, curve, elapsed)))
            return [counts, cents]

        return revenue
    if kpi == "sessions":

        def sessions(cell: Cell, elapsed: int) -> Series:
            counts = count(cell.sessions_span, cell.sessions_curve, elapsed)
            if cumulative:
                base = int(cell.users * cell.active_share)
                curve = GROWTH[cell.active_curve]
                active = _cumulative(base, cell.active_span, curve, periods, elapsed)
            else:
                active = _daily_unique(
                    cell.users, cell.active_share, DECAY[cell.active_decay], periods
                )
            return [counts, active]

        return sessions
    if kpi == "uninstalls":
        return lambda cell, elapsed: [count(cell.uninstalls_span, cell.uninstalls_curve, elapsed)]
    kind = account.event_kind(app, kpi)
    if kind is None:
        return lambda cell, elapsed: [list(zeros), list(zeros), list(zeros)]

    def event(cell: Cell, elapsed: int) -> Series:
        params = cell.event(kpi, kind)
        counts = count(params.count_span, params.count_curve, elapsed)
        cents = (
            count(params.cents_span, params.cents_curve, elapsed)
            if params.cents_span
            else list(zeros)
        )
        if cumulative:
            curve = GROWTH[params.converters_curve]
            base, span = params.converters_base, params.converters_span
            uniques = _cumulative(base, span, curve, periods, elapsed)
        else:
            uniques = _daily_unique(cell.users, params.unique_share, DECAY[params.decay], periods)
        return [counts, cents, uniques]

    return event


def _row_maker(
    query: Query, functions: tuple[str, ...], rate: float
) -> Callable[[tuple[str, ...], int, int, Series], list[Any]]:
    """Return a function turning one group's integer sums into output values."""
    per_user = query.per_user
    kpi = query.kpi

    def make_row(key: tuple[str, ...], users: int, cost: int, series: Series) -> list[Any]:
        def plain(values: list[int]) -> list[Any]:
            return [round(v / users, 4) for v in values] if per_user else values

        def money(cents: list[int]) -> list[float]:
            if per_user:
                return [round(c * rate / 100 / users, 4) for c in cents]
            if rate == 1.0:
                return [c / 100 for c in cents]  # already exact to the cent
            return [round(c * rate / 100, 2) for c in cents]

        def percent(values: list[int]) -> list[float]:
            return [round(v * 100 / users, 2) for v in values]

        def on_cost(values: list[int]) -> list[float | None]:
            return [round(v * 100 / cost, 2) if cost else None for v in values]

        by_function: dict[str, list[Any]]
        if kpi in REVENUE_KPIS:
            counts, cents = series
            if kpi == "revenue":
                by_function = {"count": plain(counts), "sum": money(cents)}
            elif kpi == "roas":
                by_function = {"rate": on_cost(cents)}
            else:
                by_function = {"rate": on_cost([c - cost for c in cents])}
        elif kpi == "sessions":
            counts, active = series
            by_function = {"count": plain(counts), "rate": percent(active)}
            by_function["unique_users"] = plain(active)
        elif kpi == "uninstalls":
            (counts,) = series
            by_function = {"count": plain(counts), "rate": percent(counts)}
        else:
            counts, cents, uniques = series
            by_function = {
                "count": plain(counts),
                "sum": money(cents),
                "unique_users": plain(uniques),
                "conversion_rate": percent(uniques),
            }
        cost_value = cost / 100 if rate == 1.0 else round(cost * rate / 100, 2)
        ecpi = round(cost * rate / 100 / users, 2) if cost else None
        ordered = [by_function[f] for f in functions]
        kpi_values = [value for per_period in zip(*ordered, strict=True) for value in per_period]
        return [*key, users, ecpi, cost_value, *kpi_values]

    return make_row
