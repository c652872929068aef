"""Evaluate a validated query against the synthetic account: cells in, table rows out.

Completeness is the rule the tap relies on most. With T the query's "today":

* ``partial_data`` false: periods ``p < (T - to).days`` only, so every value is final.
* ``partial_data`` true: periods up to ``(T - from).days``; for cohort date D the day
  ``D + q == T`` counts at half its value and later days not at all, so incomplete
  values are visibly smaller than the final ones.

Cells are summed as integers (cents, counts) before any division or currency
conversion, so a coarse grouping always equals the sum of the finer ones. A KPI is a
few integer series, each the sum of some cell *terms* (``sandbox.series``); a day's
per-group sums of each term are kept (``sandbox.groups``) for later queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import chain, repeat
from operator import mul, sub, truediv
from typing import Any

from tap_appsflyer_cohort.contract import MAX_PERIOD
from tap_appsflyer_cohort.naming import api_column, kpi_functions
from tap_appsflyer_cohort.sandbox.account import Account
from tap_appsflyer_cohort.sandbox.catalog import DIMENSION_INDEX, App
from tap_appsflyer_cohort.sandbox.cells import REVENUE_EVENT, DayCells
from tap_appsflyer_cohort.sandbox.groups import (
    DayGroups,
    Selection,
    Series,
    combine,
    difference,
    group_day,
)
from tap_appsflyer_cohort.sandbox.series import (
    ACTIVE,
    ACTIVE_RETURNED,
    REVENUE_CENTS,
    REVENUE_COUNTS,
    SESSION_REPEATS,
    UNINSTALLS,
    Term,
    event_terms,
)
from tap_appsflyer_cohort.sandbox.validation import Query

REVENUE_KPIS = frozenset({"revenue", "roas", "roi"})
#: One group's integer series (one per KPI series, one value per period).
GroupSeries = list[Sequence[int]]


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
    groups = _group_sums(query, account, app, periods)
    rate = app.rate if query.preferred_currency else 1.0
    make_row = _row_maker(query, functions, rate)
    table.rows = [
        make_row(key, users, cost, series)
        for key, (users, cost, series) in sorted(groups.items())
        if users >= query.min_cohort_size
    ]
    return table


def _group_sums(
    query: Query, account: Account, app: App, periods: tuple[int, ...]
) -> dict[tuple[str, ...], list[Any]]:
    """Per output group (key in ``groupings`` order): [users, cost cents, series]."""
    outputs = kpi_series(query, account, app)
    selection = query_selection(query)
    key_indices = tuple(DIMENSION_INDEX[g] for g in query.groupings if g != "date")
    profile_groups = account.profile_groups(app.app_id, selection, key_indices)
    full_key = _key_builder(query.groupings)
    cumulative = query.aggregation_type == "cumulative"
    groups: dict[tuple[str, ...], list[Any]] = {}
    for day, hours in _days(query):

        def load(day: date = day) -> DayCells:
            return account.day_cells(app.app_id, day)

        # Hourly groups depend on the hours the query's "now" covers: not kept.
        cache_key = (app.app_id, day, selection, key_indices)
        day_groups = account.day_groups.fetch(cache_key) if hours is None else None
        if day_groups is None:
            day_groups = group_day(load(), profile_groups, hours)
        elapsed = (query.today - day).days
        values = day_values(day_groups, outputs, periods, elapsed, cumulative, load)
        if hours is None:
            account.day_groups.store(cache_key, day_groups)  # new, or grown: re-weighed
        label = day.isoformat()
        for subkey, users, cost, series in zip(
            day_groups.keys, day_groups.users, day_groups.cost_cents, values, strict=True
        ):
            if hours is None:
                key = full_key(label, subkey)
            else:
                key = full_key(f"{label} {subkey[-1]:02d}:00:00", subkey[:-1])
            entry = groups.get(key)
            if entry is None:
                groups[key] = [users, cost, series]
            else:
                entry[0] += users
                entry[1] += cost
                entry[2] = [combine(old, new) for old, new in zip(entry[2], series, strict=True)]
    return groups


def query_selection(query: Query) -> Selection:
    """The cohort types and dimension filters a query covers."""
    types = {"unified": {"user_acquisition", "retargeting"}}.get(
        query.cohort_type, {query.cohort_type}
    )
    if "cohort_type" in query.filters:
        types &= query.filters["cohort_type"]
    checks = sorted(
        (DIMENSION_INDEX[name], allowed)
        for name, allowed in query.filters.items()
        if name in DIMENSION_INDEX and name != "cohort_type"
    )
    return Selection(frozenset(types), tuple(checks))


def _days(query: Query) -> Iterator[tuple[date, frozenset[int] | None]]:
    """Yield each LTV date of the window, with the hours it covers for hourly queries."""
    hourly = query.granularity == "hour"
    window_start = query.start.replace(minute=0, second=0)
    day = query.first_date
    while day <= query.last_date:
        if not hourly:
            if day >= query.today:
                return  # Cohorts of today or later have no data yet.
            yield day, None
        else:
            midnight = datetime(day.year, day.month, day.day)
            hours = frozenset(
                hour
                for hour in range(24)
                if window_start <= midnight + timedelta(hours=hour) <= query.end
                and midnight + timedelta(hours=hour + 1) <= query.local_now
            )
            yield day, hours
        day += timedelta(days=1)


def _key_builder(groupings: tuple[str, ...]) -> Callable[[str, tuple[Any, ...]], tuple[Any, ...]]:
    """Return a function placing the date label among the other grouping values."""
    if "date" not in groupings:
        return lambda label, others: others
    at = groupings.index("date")
    return lambda label, others: (*others[:at], label, *others[at:])


def kpi_series(query: Query, account: Account, app: App) -> list[Series]:
    """The KPI's integer series, each the sum of its terms (no term: all zeros).

    Counts are first-timers, returns and repeats; unique users are the first-timers
    (cumulative) or first-timers and returns (on day); see ``sandbox.cells``.
    """
    cumulative = query.aggregation_type == "cumulative"
    kpi = query.kpi
    if kpi in REVENUE_KPIS:
        kinds = sorted(query.filters.get("revenue_type", {"regular", "ad_monetization"}))
        counts = tuple(REVENUE_COUNTS[kind] for kind in kinds) if kpi == "revenue" else ()
        return [counts, tuple(REVENUE_CENTS[kind] for kind in kinds)]
    if kpi == "sessions":
        active = (ACTIVE,) if cumulative else (ACTIVE, ACTIVE_RETURNED)
        return [(ACTIVE, ACTIVE_RETURNED, SESSION_REPEATS), active]
    if kpi == "uninstalls":
        return [(UNINSTALLS,)]
    kind = account.event_kind(app, kpi)
    if kind is None:
        return [(), (), ()]
    terms = event_terms(kpi, kind)
    cents = terms.cents if kind == REVENUE_EVENT else ()  # other events: zero sums
    uniques = (terms.converters,) if cumulative else (terms.converters, terms.returned)
    return [terms.counts, cents, uniques]


def day_values(
    groups: DayGroups,
    outputs: list[Series],
    periods: tuple[int, ...],
    elapsed: int,
    cumulative: bool,
    load: Callable[[], DayCells],
) -> list[GroupSeries]:
    """Per group of one day: each output series over ``periods``.

    Periods before ``elapsed`` (complete days) read the sums; with partial data the
    later ones all hold the value of today, counted half.
    """
    complete = [p for p in periods if p < elapsed]
    later = len(periods) - len(complete)
    width = len(groups.keys)
    by_output: list[list[tuple[int, ...]]] = []
    for terms in outputs:
        vectors: list[Sequence[int]] = [[0] * width] * len(periods)
        for number, term in enumerate(terms):
            found = _term_vectors(groups, term, complete, later, elapsed, cumulative, load)
            vectors = found if number == 0 else list(map(combine, vectors, found))
        by_output.append(list(zip(*vectors, strict=True)) or [()] * width)
    return [list(series) for series in zip(*by_output, strict=True)]


def _term_vectors(
    groups: DayGroups,
    term: Term,
    complete: list[int],
    later: int,
    elapsed: int,
    cumulative: bool,
    load: Callable[[], DayCells],
) -> list[Sequence[int]]:
    """One term's per-group values, period by period."""
    if cumulative:
        sums = groups.point_sums(term, complete, load)
        base = groups.base_sums(term, load)
        found: list[Sequence[int]] = [
            sums[p] if base is None else combine(base, sums[p]) for p in complete
        ]
        if later:
            found.extend([groups.half_sums(term, elapsed, load)] * later)
        return found
    needed = sorted({*complete, *(p - 1 for p in complete if p)})
    sums = groups.point_sums(term, needed, load)
    on_day: list[Sequence[int]] = [
        difference(sums[p], sums[p - 1]) if p else sums[p] for p in complete
    ]
    base = groups.base_sums(term, load) if 0 in complete else None
    if base is not None:  # day 0 is the whole value through day 0, base included
        on_day[0] = combine(base, on_day[0])
    return on_day


# The per-KPI formulas are closures over one group's users and cost, picked per KPI in one
# place: splitting them apart would add calls per group on the sandbox's hottest path.
def _row_maker(  # noqa: C901 (see above)
    query: Query, functions: tuple[str, ...], rate: float
) -> Callable[[tuple[str, ...], int, int, GroupSeries], list[Any]]:
    """Return a function turning one group's integer sums into output values."""
    per_user = query.per_user
    kpi = query.kpi

    def make_row(  # noqa: C901 (see above)
        key: tuple[str, ...], users: int, cost: int, series: GroupSeries
    ) -> list[Any]:
        # Each helper is the plain per-value formula written as C-level ``map`` chains.
        def plain(values: Sequence[int]) -> Iterable[Any]:
            if not per_user:
                return values
            return map(round, map(truediv, values, repeat(users)), repeat(4))  # v / users

        def money(cents: Sequence[int]) -> Iterable[float]:
            if per_user:  # round(c * rate / 100 / users, 4)
                units = map(truediv, map(mul, cents, repeat(rate)), repeat(100))
                return map(round, map(truediv, units, repeat(users)), repeat(4))
            if rate == 1.0:
                return map(truediv, cents, repeat(100))  # c / 100: already exact to the cent
            units = map(truediv, map(mul, cents, repeat(rate)), repeat(100))
            return map(round, units, repeat(2))  # round(c * rate / 100, 2)

        def percent(values: Sequence[int]) -> Iterable[float]:
            shares = map(truediv, map(mul, values, repeat(100)), repeat(users))
            return map(round, shares, repeat(2))  # round(v * 100 / users, 2)

        def on_cost(values: Sequence[int]) -> Iterable[float | None]:
            if not cost:
                return [None] * len(values)
            shares = map(truediv, map(mul, values, repeat(100)), repeat(cost))
            return map(round, shares, repeat(2))  # round(v * 100 / cost, 2)

        by_function: dict[str, Iterable[Any]]
        if kpi in REVENUE_KPIS:
            counts, cents = series
            if kpi == "revenue":
                by_function = {"count": plain(counts), "sum": money(cents)}
            elif kpi == "roas":
                by_function = {"rate": on_cost(cents)}
            else:
                by_function = {"rate": on_cost(list(map(sub, cents, repeat(cost))))}
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
        return [*key, users, ecpi, cost_value, *chain.from_iterable(zip(*ordered, strict=True))]

    return make_row
