"""Every invariant of a real account holds in every answer the sandbox gives, for any query.

Hypothesis draws queries (apps, seeds, KPIs and in-app events, groupings, aggregation
types, periods, filters, ``per_user``, ``min_cohort_size``, currency, time zone, partial
data) and checks each answer: counts >= unique users >= 0, rates = unique users /
users x 100 (percent), cumulative values never decreasing, ``sessions_count`` >=
``sessions_unique_users``, ecpi = cost / users; and across two answers: ROAS = revenue /
cost x 100 and ROI = (revenue - cost) / cost x 100, cumulative = running sum of on-day
values (unique users: between the day's and the sum of the days'), a coarse grouping =
the sum of the finer one. In process through ``answer(...)`` and over HTTP.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_appsflyer_cohort.contract import DEFAULT_PERIODS, GROUPING_DIMENSIONS
from tap_appsflyer_cohort.naming import api_column, api_measure, kpi_functions
from tap_appsflyer_cohort.sandbox.catalog import GEOS, ORGANIC, TOUCH_TYPES
from tap_appsflyer_cohort.sandbox.options import SandboxOptions
from tap_appsflyer_cohort.sandbox.server import SandboxServer
from tap_appsflyer_cohort.sandbox.testing import running_sandbox
from tests.test_sandbox_support import EUR_APP, IOS, JPY_APP, post

TODAY = date(2026, 6, 15)
NOW = datetime.combine(TODAY, SandboxOptions().time_of_day)  # UTC, as the sandbox's
SEEDS = (42, 7, 2026)
TRIAL_EVENT = {IOS: "Start Trial Auth", JPY_APP: "start trial auth", EUR_APP: "start trial auth"}
EVENTS = ("af_purchase", "af_complete_registration", "af_level_achieved", "af_not_an_event")
SOURCES = ("Facebook Ads", "googleadwords_int", "tiktokglobal_int", "Apple Search Ads", ORGANIC)
DIMENSIONS = tuple(d for d in GROUPING_DIMENSIONS if d != "date")
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PAIRS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Rounding slack of a rate (two decimals) and of a per-user value (four decimals).
RATE_ULP = Decimal("0.005")
PER_USER_ULP = Decimal("0.00005")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Case:
    """One query: the server's seed, the app and the body."""

    seed: int
    app: str
    body: dict[str, Any]

    @property
    def kpi(self) -> str:
        return str(self.body["kpis"][0])

    @property
    def cumulative(self) -> bool:
        return self.body["aggregation_type"] == "cumulative"

    @property
    def per_user(self) -> bool:
        return bool(self.body.get("per_user"))

    def but(self, **changes: Any) -> Case:
        """The same query with some fields changed (None removes a field)."""
        body = {**self.body, **changes}
        return Case(self.seed, self.app, {k: v for k, v in body.items() if v is not None})


@st.composite
def cases(draw: st.DrawFn, kpis: tuple[str, ...] | None = None) -> Case:
    """A valid query the sandbox must answer with 200."""
    app = draw(st.sampled_from((IOS, JPY_APP, EUR_APP)))
    choices = kpis or ("sessions", "revenue", "roas", "roi", "uninstalls", *EVENTS)
    kpi = draw(st.sampled_from(choices))
    kpi = TRIAL_EVENT[app] if kpi == "trial" else kpi
    cumulative = draw(st.booleans())
    cohort_type = draw(st.sampled_from(("user_acquisition", "retargeting", "unified")))
    if kpi == "uninstalls" and cohort_type == "unified":
        cohort_type = "user_acquisition"  # not available for unified (a 422)
    others = draw(st.lists(st.sampled_from(DIMENSIONS), max_size=3, unique=True))
    groupings = list(others)
    if not others or draw(st.booleans()):
        groupings.insert(draw(st.integers(0, len(others))), "date")
    # Maturing cohorts (the last 40 days), and a few older dates (drawing a date's cells
    # is most of an answer's time; every cell keeps the invariants by construction).
    age = draw(st.one_of(st.integers(1, 40), st.sampled_from((61, 95, 181, 200, 365, 700))))
    last = TODAY - timedelta(days=age)
    first = max(last - timedelta(days=draw(st.integers(0, 9))), TODAY - timedelta(days=730))
    filters: dict[str, Any] = {}
    if draw(st.booleans()):
        filters["period"] = draw(st.lists(st.integers(0, 180), min_size=1, max_size=8))
    if draw(st.integers(0, 3)) == 0:
        filters["geo"] = draw(st.lists(st.sampled_from(GEOS), min_size=1, max_size=3))
    if draw(st.integers(0, 3)) == 0:
        filters["pid"] = draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=3))
    if draw(st.integers(0, 4)) == 0:
        filters["attributed_touch_type"] = [draw(st.sampled_from(TOUCH_TYPES))]
    if kpi in {"revenue", "roas", "roi"} and draw(st.booleans()):
        filters["revenue_type"] = [draw(st.sampled_from(("regular", "ad_monetization")))]
    body: dict[str, Any] = {
        "cohort_type": cohort_type,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "groupings": groupings,
        "kpis": [kpi],
        "aggregation_type": "cumulative" if cumulative else "on_day",
        "per_user": draw(st.booleans()),
        "partial_data": cumulative and draw(st.booleans()),
        "preferred_currency": draw(st.booleans()),
        "preferred_timezone": draw(st.booleans()),
        "min_cohort_size": draw(st.one_of(st.just(1), st.integers(1, 300))),
    }
    if filters:
        body["filters"] = filters
    if draw(st.integers(0, 7)) == 0:  # hourly cohorts of the last 60 hours (limit: 72)
        start = NOW - timedelta(hours=draw(st.integers(1, 60)))
        end = start + timedelta(hours=draw(st.integers(0, 30)))
        body.update({"granularity": "hour", "from": f"{start:%Y-%m-%d %H:00}"})
        body["to"] = f"{end:%Y-%m-%d %H:00}"
    return Case(draw(st.sampled_from(SEEDS)), app, body)


@cache
def server(seed: int) -> SandboxServer:
    """An in-process sandbox per seed (never started: ``answer`` needs no socket)."""
    return SandboxServer(SandboxOptions(today=TODAY, seed=seed))


Answer = tuple[list[str], list[dict[str, Decimal | str | None]]]


def _number(raw: Any) -> Decimal | None:
    return None if raw is None or raw == "" else Decimal(str(raw))


def parse_csv(payload: bytes, case: Case) -> Answer:
    """Header and rows of a CSV answer; grouping values as text, numbers as Decimal."""
    reader = csv.DictReader(io.StringIO(payload.decode()))
    groupings = set(case.body["groupings"])
    rows = [{k: v if k in groupings else _number(v) for k, v in row.items()} for row in reader]
    return list(reader.fieldnames or []), rows


def parse_json(payload: bytes, case: Case) -> Answer:
    """The JSON answer flattened to the CSV's columns."""
    functions = kpi_functions(case.kpi, case.body["aggregation_type"])
    rows, header = [], []
    for record in json.loads(payload)["results"]:
        row: dict[str, Decimal | str | None] = {}
        for key, value in record.items():
            if key != "measures":
                row[key] = value if key in case.body["groupings"] else _number(value)
        for measure in record["measures"]:
            for function in functions:
                column = api_column(case.kpi, function, measure["period"])
                row[column] = _number(measure[api_measure(case.kpi, function)])
        rows.append(row)
        header = list(row)
    return header, rows


def ask(case: Case) -> Answer:
    """The in-process answer; it must be a 200."""
    status, _, payload = server(case.seed).answer(case.app, case.body)
    assert status == 200, payload
    return parse_csv(payload, case)


def periods_of(header: list[str], case: Case) -> list[int]:
    function = kpi_functions(case.kpi, case.body["aggregation_type"])[0]
    prefix = f"{case.kpi}_{function}_day_"
    return [int(column[len(prefix) :]) for column in header if column.startswith(prefix)]


def number(row: dict[str, Any], column: str) -> Decimal:
    value = row[column]
    assert isinstance(value, Decimal), (column, value)
    return value


def series(
    row: dict[str, Any], case: Case, function: str, periods: list[int]
) -> list[Decimal | None]:
    return [row[api_column(case.kpi, function, p)] for p in periods]


def key_of(row: dict[str, Any], case: Case) -> tuple[Any, ...]:
    return tuple(row[g] for g in case.body["groupings"])


# --- one answer ---------------------------------------------------------------------


def check_answer(case: Case, header: list[str], rows: list[dict[str, Any]]) -> None:
    """Every invariant one answer can show on its own."""
    periods = periods_of(header, case)
    expected = [p for p in case.body.get("filters", {}).get("period", DEFAULT_PERIODS)]
    assert set(periods) <= set(expected)
    functions = kpi_functions(case.kpi, case.body["aggregation_type"])
    for row in rows:
        users = number(row, "users")
        assert users >= max(1, case.body["min_cohort_size"])
        cost = number(row, "cost")
        assert cost >= 0
        if cost == 0:
            assert row["ecpi"] is None
        else:  # ecpi = cost / users; both are rounded to cents
            assert abs(number(row, "ecpi") - cost / users) <= RATE_ULP * (1 + 1 / users)
        values = {f: series(row, case, f, periods) for f in functions}
        check_kpi(case, users, cost, values)


def check_kpi(
    case: Case, users: Decimal, cost: Decimal, values: dict[str, list[Decimal | None]]
) -> None:
    """The KPI's functions on each returned period."""
    per_user = case.per_user
    share_ulp = PER_USER_ULP if per_user else ZERO  # slack of a unique-user share
    whole = Decimal(1) if per_user else users  # unique users per user, or users
    if case.kpi in {"roas", "roi"}:
        rates = values["rate"]
        if cost == 0:
            assert all(r is None for r in rates)  # no cost, no return on it
            return
        floor = ZERO if case.kpi == "roas" else Decimal(-100)
        assert all(r is not None and r >= floor for r in rates)
    else:
        for function, found in values.items():
            assert all(v is not None and v >= 0 for v in found), function
    if case.cumulative:
        for function, found in values.items():
            assert found == sorted(found), f"cumulative {function} decreases"  # type: ignore[type-var]
    counts = values.get("count")
    uniques = values.get("unique_users")
    if counts is not None and uniques is not None:
        for count, unique in zip(counts, uniques, strict=True):
            assert count >= unique, "count < unique users"  # type: ignore[operator]
            assert unique <= whole  # type: ignore[operator]
    rate_name = "conversion_rate" if "conversion_rate" in values else "rate"
    if uniques is not None:
        for unique, rate in zip(uniques, values[rate_name], strict=True):
            share = unique * 100 / whole  # type: ignore[operator]
            assert abs(rate - share) <= RATE_ULP + share_ulp * 100, "rate != uniques / users"  # type: ignore[operator]
    elif case.kpi == "sessions":  # cumulative: the rate is the only trace of unique users
        for count, rate in zip(values["count"], values["rate"], strict=True):
            assert rate <= 100  # type: ignore[operator]
            assert count >= (rate - RATE_ULP) * whole / 100 - share_ulp  # type: ignore[operator]
    elif case.kpi == "uninstalls":
        for count, rate in zip(values["count"], values["rate"], strict=True):
            assert count <= whole  # type: ignore[operator]
            share = count * 100 / whole  # type: ignore[operator]
            assert abs(rate - share) <= RATE_ULP + share_ulp * 100  # type: ignore[operator]
    if "sum" in values:
        check_money(case, values)


def check_money(case: Case, values: dict[str, list[Decimal | None]]) -> None:
    """Revenue comes from events: no events, no revenue; only purchases earn."""
    if case.kpi not in {"revenue", "af_purchase"}:
        assert all(v == 0 for v in values["sum"])
        return
    if not case.per_user:  # per user, a count may round to 0
        for count, money in zip(values["count"], values["sum"], strict=True):
            assert count != 0 or money == 0, "revenue without a revenue event"


@PROPERTY
@given(cases())
def test_every_answer_keeps_the_invariants(case: Case) -> None:
    check_answer(case, *ask(case))


@settings(max_examples=20, deadline=None)
@given(cases(kpis=("af_not_an_event",)))
def test_unknown_events_are_all_zeros(case: Case) -> None:
    header, rows = ask(case)
    assert rows or case.body["min_cohort_size"] > 1 or "filters" in case.body
    periods = periods_of(header, case)
    for row in rows:
        for function in kpi_functions(case.kpi, case.body["aggregation_type"]):
            assert series(row, case, function, periods) == [0] * len(periods)


# --- two answers --------------------------------------------------------------------


def keyed(case: Case) -> tuple[list[int], dict[tuple[Any, ...], dict[str, Any]]]:
    header, rows = ask(case)
    check_answer(case, header, rows)
    return periods_of(header, case), {key_of(row, case): row for row in rows}


@PAIRS
@given(cases(kpis=("roas", "roi")))
def test_roas_and_roi_are_revenue_over_cost(case: Case) -> None:
    _, ratios = keyed(case)
    periods, money = keyed(case.but(kpis=["revenue"], per_user=False))
    assert ratios.keys() == money.keys()
    for key, row in money.items():
        cost = number(row, "cost")
        for p in periods:
            rate = ratios[key][api_column(case.kpi, "rate", p)]
            if cost == 0:
                assert rate is None
                continue
            revenue = number(row, api_column("revenue", "sum", p))
            # revenue and cost are rounded to cents, the rate to hundredths
            slack = RATE_ULP + 100 * RATE_ULP * (1 / cost + revenue / cost / cost)
            expected = revenue / cost * 100 - (100 if case.kpi == "roi" else 0)
            assert abs(rate - expected) <= slack, (key, p)


@PAIRS
@given(
    cases(kpis=("sessions", "revenue", "roas", "uninstalls", "trial", *EVENTS)),
    st.integers(0, 30),
)
def test_cumulative_is_the_running_sum_of_on_day(case: Case, last: int) -> None:
    window = {"filters": {**case.body.get("filters", {}), "period": list(range(last + 1))}}
    daily_case = case.but(aggregation_type="on_day", partial_data=None, **window)
    total_case = case.but(aggregation_type="cumulative", partial_data=None, **window)
    periods, daily = keyed(daily_case)
    total_periods, totals = keyed(total_case)
    assert total_periods == periods == list(range(len(periods)))
    assert daily.keys() == totals.keys()
    per_user = case.per_user
    for key, day_row in daily.items():
        total_row = totals[key]
        for function in kpi_functions(case.kpi, "cumulative"):
            if function in {"unique_users", "conversion_rate"}:
                continue  # not additive: checked below
            on_day = series(day_row, daily_case, function, periods)
            total = series(total_row, total_case, function, periods)
            if None in total:
                assert on_day == total  # no cost: no ROAS either way
                continue
            check_running_sum(case, function, on_day, total, per_user)  # type: ignore[arg-type]
        if "unique_users" in kpi_functions(case.kpi, "on_day"):
            on_day = series(day_row, daily_case, "unique_users", periods)
            slack = PER_USER_ULP * 2 if per_user else ZERO
            if case.kpi == "sessions":  # cumulative sessions show unique users as the rate
                users = Decimal(1) if per_user else number(total_row, "users")
                rates = series(total_row, total_case, "rate", periods)
                total = [r * users / 100 for r in rates]  # type: ignore[operator]
                slack += RATE_ULP * users / 100
            else:
                total = series(total_row, total_case, "unique_users", periods)
            check_unique_users(on_day, total, slack)  # type: ignore[arg-type]


def check_running_sum(
    case: Case, function: str, on_day: list[Decimal], total: list[Decimal], per_user: bool
) -> None:
    """cumulative(p) = sum of on-day(0..p), up to the rounding of each value."""
    if function == "rate" and case.kpi == "sessions":
        # The cumulative rate counts users, not visits: at least the day's.
        assert all(t >= d - RATE_ULP for d, t in zip(on_day, total, strict=True))
        return
    ulp = {"rate": RATE_ULP, "sum": RATE_ULP}.get(function, ZERO)
    if per_user:
        ulp = max(ulp, PER_USER_ULP) if function != "rate" else RATE_ULP
    running = ZERO
    for p, (day, cumulative) in enumerate(zip(on_day, total, strict=True)):
        running += day
        assert abs(cumulative - running) <= ulp * (p + 2), (function, p)


def check_unique_users(on_day: list[Decimal], total: list[Decimal], slack: Decimal) -> None:
    """Unique users are not additive: between the day's and the sum of the days'."""
    running = ZERO
    for p, (day, cumulative) in enumerate(zip(on_day, total, strict=True)):
        running += day
        assert day - slack <= cumulative <= running + slack * (p + 1), p
        if p:  # who is new on day p did it on day p
            assert cumulative - total[p - 1] <= day + slack * 2, p


@PAIRS
@given(cases(), st.sampled_from(DIMENSIONS))
def test_a_coarse_grouping_is_the_sum_of_the_finer_one(case: Case, extra: str) -> None:
    """Users belong to one cell: users, cost, counts, sums and unique users add up."""
    base = case.but(per_user=False, min_cohort_size=1, preferred_currency=False)
    coarse_groupings = [g for g in base.body["groupings"] if g != extra] or ["date"]
    coarse = base.but(groupings=coarse_groupings)
    fine = base.but(groupings=[*coarse_groupings, extra])
    periods, coarse_rows = keyed(coarse)
    _, fine_rows = keyed(fine)
    additive = [
        f for f in kpi_functions(case.kpi, case.body["aggregation_type"]) if "rate" not in f
    ]
    columns = ["users", "cost", *(api_column(case.kpi, f, p) for f in additive for p in periods)]
    sums: dict[tuple[Any, ...], dict[str, Decimal]] = {}
    for row in fine_rows.values():
        entry = sums.setdefault(key_of(row, coarse), dict.fromkeys(columns, ZERO))
        for column in columns:
            entry[column] += number(row, column)
    assert sums.keys() == coarse_rows.keys()
    for key, row in coarse_rows.items():
        assert {c: number(row, c) for c in columns} == sums[key], key


# --- over HTTP ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_sandbox() -> Iterator[SandboxServer]:
    """A running sandbox (seed 42), unlimited calls, for every example of the module."""
    with running_sandbox(
        today=TODAY, seed=42, requests_per_minute=10**9, requests_per_day=10**9
    ) as running:
        yield running


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases(), st.sampled_from(("csv", "json")))
def test_every_http_answer_keeps_the_invariants(
    http_sandbox: SandboxServer, case: Case, fmt: str
) -> None:
    case = Case(42, case.app, case.body)
    response = post(http_sandbox, case.body, app=case.app, fmt=fmt)
    assert response.status_code == 200, response.text
    if fmt == "json":
        header, rows = parse_json(response.content, case)
        assert len(rows) == len(ask(case)[1])
    else:
        header, rows = parse_csv(response.content, case)
        assert (header, rows) == ask(case)
    check_answer(case, header, rows)
