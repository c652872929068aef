"""Acceptance of issue 7: 200 daily runs against the sandbox end equal to the sandbox's truth.

Each run moves both clocks a day, carries the state on, and upserts the records into an
in-memory table keyed by the stream's key properties (last write wins, as target-postgres
does). Along the way: no value regresses, nothing incomplete is passed off as complete, and
every day's calls equal the fewest possible, computed from the loaded table by the model in
``test_planner``. At the end every cell equals the sandbox's answer for its cohort date
asked alone (all periods are complete by then), parsed here with the ``csv`` module.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import pytest

from tap_appsflyer_cohort.columns import output_column
from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tests.helpers import run_tap, sandbox_config, utc_noon
from tests.test_planner import complete_set, day_range, min_windows

APP = "id123456789"
PERIODS = (0, 1, 3, 7, 14)
FIRST_DAY = date(2026, 1, 5)
RUNS = 200
LAST_DAY = FIRST_DAY + timedelta(days=RUNS - 1)
#: A small backfill on the first run.
START = FIRST_DAY - timedelta(days=10)
#: Every requested period of every loaded date is complete on the last day.
END = LAST_DAY - timedelta(days=max(PERIODS) + 1)
MAX_WINDOW_DAYS = 60
#: Functions per KPI, written out here rather than taken from the tap.
FUNCTIONS = {
    ("sessions", "on_day"): ("count", "rate", "unique_users"),
    ("uninstalls", "on_day"): ("count", "rate"),
    ("revenue", "cumulative"): ("count", "sum"),
    ("af_purchase", "on_day"): ("count", "sum", "unique_users", "conversion_rate"),
}
PROVENANCE = {"cohort_type": "user_acquisition", "per_user": False, "currency": "USD"}


@dataclass(frozen=True)
class ReportCase:
    """One report of the simulation; groupings and KPIs tell its calls apart in the log."""

    name: str
    layout: str
    aggregation: str
    groupings: tuple[str, ...]
    kpis: tuple[str, ...]
    #: Filters keep the sandbox's work (and the test's time) small.
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    partial_data: bool = False

    def config(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "name": self.name,
            "groupings": list(self.groupings),
            "kpis": list(self.kpis),
            "aggregation_type": self.aggregation,
            "layout": self.layout,
            "filters": self.filters_with_periods(),
        }
        if self.partial_data:
            report["partial_data"] = True
        return report

    def filters_with_periods(self) -> dict[str, list[Any]]:
        return {**{k: list(v) for k, v in self.filters}, "period": list(PERIODS)}

    def owns(self, body: dict[str, Any]) -> bool:
        return (
            tuple(body["groupings"]) == self.groupings
            and body["kpis"][0] in self.kpis
            and body["aggregation_type"] == self.aggregation
        )

    @cached_property
    def columns(self) -> dict[str, tuple[str, str, int | None]]:
        """Warehouse KPI column -> (kpi, function, period or None for long)."""
        out = {}
        for kpi in self.kpis:
            for function in FUNCTIONS[(kpi, self.aggregation)]:
                if self.layout == "long":
                    out[output_column(kpi, function)] = (kpi, function, None)
                else:
                    for period in PERIODS:
                        out[output_column(kpi, function, period)] = (kpi, function, period)
        return out


GEOS = (("geo", ("US", "JP")),)
SOURCES = (("pid", ("Facebook Ads", "Organic")),)
REPORTS = (
    ReportCase("long_on_day", "long", "on_day", ("date", "pid"), ("sessions", "uninstalls"), GEOS),
    ReportCase("long_cumulative", "long", "cumulative", ("date", "pid"), ("revenue",), GEOS),
    ReportCase("wide_on_day", "wide", "on_day", ("date", "geo"), ("af_purchase",), SOURCES),
    ReportCase("wide_cumulative", "wide", "cumulative", ("date", "geo"), ("revenue",), SOURCES),
)


def _number(value: Any) -> Any:
    """Numbers compared as floats (the CSV says 12, the record may say 12.0)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value  # an id, a name, a date


@dataclass
class UpsertTable:
    """A table keyed by a stream's key properties; the last write wins (target-postgres)."""

    key_properties: list[str]
    rows: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)

    def key(self, record: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(record[k] for k in self.key_properties)


@dataclass
class Simulation:
    """The loaded tables, the sandbox, and the counts of calls made and needed."""

    server: SandboxServer
    reports: tuple[ReportCase, ...]
    start: date = START
    end: date = END
    tables: dict[str, UpsertTable] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    fewest: Counter[str] = field(default_factory=Counter)
    state: dict[str, Any] | None = None
    held: defaultdict[str, defaultdict[date, dict[tuple[Any, ...], set[int]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )

    def config(self, **overrides: Any) -> dict[str, Any]:
        return sandbox_config(
            self.server,
            start_date=self.start.isoformat(),
            end_date=self.end.isoformat(),
            max_window_days=MAX_WINDOW_DAYS,
            # The in-process sandbox computes answers under the tap's GIL: calls in
            # parallel only queue behind each other there (concurrency is tested apart).
            max_requests_in_flight=1,
            reports=[r.config() for r in self.reports],
            **overrides,
        )

    def loaded_periods(self, report: ReportCase) -> dict[date, frozenset[int]]:
        """Per cohort date, the periods the table holds for every cohort row of that date."""
        return {
            day: frozenset.intersection(*map(frozenset, rows.values()))
            for day, rows in self.held[report.name].items()
        }

    def _index(self, report: ReportCase, record: dict[str, Any]) -> None:
        """Keep, per date and cohort row, the periods the table holds (read per day)."""
        day = date.fromisoformat(record["date"])
        row_key = tuple(record[g] for g in report.groupings[1:])
        rows = self.held[report.name][day]
        if report.layout == "long":
            if record.get("is_complete", True):
                rows.setdefault(row_key, set()).add(record["period"])
        else:
            rows[row_key] = {
                period
                for column, (_, _, period) in report.columns.items()
                if record[column] is not None and period is not None
            }

    def fewest_calls(self, report: ReportCase, today: date) -> int:
        """Calls the tap needs today: the dates behind what is complete, minimally covered."""
        loaded = self.loaded_periods(report)
        needed = [
            day
            for day in day_range(self.start, min(self.end, today - timedelta(days=1)))
            if not complete_set(day, today, PERIODS) <= loaded.get(day, frozenset())
        ]
        windows = min_windows(
            needed,
            today,
            PERIODS,
            MAX_WINDOW_DAYS,
            partial_ok=report.aggregation == "cumulative",
        )
        return windows * len(report.kpis)

    def run_day(self, today: date, config: dict[str, Any]) -> None:
        self.server.set_today(today)
        self.server.clear_log()
        fewest = {report.name: self.fewest_calls(report, today) for report in self.reports}
        run = run_tap(config, state=self.state, now=utc_noon(today))
        assert run.exit_code == 0, f"run on {today} failed"
        self.state = run.last_state or self.state
        for message in run.messages:
            if message["type"] == "SCHEMA":
                self.tables.setdefault(
                    message["stream"], UpsertTable(list(message["key_properties"]))
                )
        for report in self.reports:
            for record in run.records.get(report.name, []):
                self.upsert(report, record, today)
        log = self.server.request_log
        assert all(call.status == 200 for call in log), [c.status for c in log]
        for report in self.reports:
            made = sum(1 for call in log if call.body is not None and report.owns(call.body))
            self.calls[report.name] += made
            self.fewest[report.name] += fewest[report.name]
            assert made == fewest[report.name], (
                f"{report.name} on {today}: {made} call(s), the fewest is {fewest[report.name]}"
            )

    def upsert(self, report: ReportCase, record: dict[str, Any], today: date) -> None:
        """Check one record against what is loaded and what is complete, then store it."""
        day = date.fromisoformat(record["date"])
        age = (today - day).days
        assert self.start <= day <= min(self.end, today - timedelta(days=1)), record
        if report.layout == "long":
            complete = record["period"] < age
            if report.partial_data:
                assert record["is_complete"] is complete, (today, record)
            else:
                assert complete, f"incomplete period emitted on {today}: {record}"
        else:
            for column, (_, _, period) in report.columns.items():
                if record[column] is not None:
                    assert period is not None
                    assert period < age, f"incomplete {column} emitted on {today}: {record}"
        table = self.tables[report.name]
        key = table.key(record)
        old = table.rows.get(key)
        if old is not None and not (report.partial_data and not old["is_complete"]):
            for column, value in old.items():
                if value is not None:
                    assert _number(record[column]) == _number(value), (
                        f"{report.name} {key} column {column} regressed on {today}: "
                        f"{value!r} -> {record[column]!r}"
                    )
        table.rows[key] = record
        self._index(report, record)


# ---- the truth: the sandbox asked for one cohort date at a time --------------------------


def truth_body(report: ReportCase, kpi: str, day: date) -> dict[str, Any]:
    return {
        "cohort_type": "user_acquisition",
        "from": day.isoformat(),
        "to": day.isoformat(),
        "groupings": list(report.groupings),
        "kpis": [kpi],
        "aggregation_type": report.aggregation,
        "min_cohort_size": 1,
        "per_user": False,
        "preferred_currency": False,
        "preferred_timezone": False,
        "partial_data": False,
        "filters": report.filters_with_periods(),
    }


def truth(
    server: SandboxServer, report: ReportCase, first: date, last: date
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Expected rows keyed like the stream (app, date, groupings[, period])."""
    expected: dict[tuple[Any, ...], dict[str, Any]] = {}
    for day in day_range(first, last):
        for kpi in report.kpis:
            status, _, body = server.answer(APP, truth_body(report, kpi, day))
            assert status == 200, body[:300]
            for line in csv.DictReader(io.StringIO(body.decode("utf-8"))):
                assert line["date"] == day.isoformat()
                head = (APP, day.isoformat(), *[line[g] for g in report.groupings[1:]])
                fixed = {name: _number(line[name]) for name in ("users", "ecpi", "cost")}
                for period in PERIODS:
                    key = (*head, period) if report.layout == "long" else head
                    row = expected.setdefault(key, dict(fixed))
                    for function in FUNCTIONS[(kpi, report.aggregation)]:
                        value = _number(line[f"{kpi}_{function}_day_{period}"])
                        column = (
                            output_column(kpi, function)
                            if report.layout == "long"
                            else output_column(kpi, function, period)
                        )
                        row[column] = value
    return expected


def assert_table_equals_truth(simulation: Simulation, report: ReportCase) -> int:
    table = simulation.tables[report.name]
    expected = truth(simulation.server, report, simulation.start, simulation.end)
    assert set(table.rows) == set(expected), (
        f"{report.name}: {len(set(table.rows) - set(expected))} unexpected and "
        f"{len(set(expected) - set(table.rows))} missing key(s)"
    )
    for key, row in expected.items():
        loaded = table.rows[key]
        provenance = {**PROVENANCE, "aggregation_type": report.aggregation, "timezone": "UTC"}
        for column, value in provenance.items():
            assert loaded[column] == value, (report.name, key, column)
        for column, value in row.items():
            assert _number(loaded[column]) == value, (report.name, key, column, loaded[column])
    return len(expected)


@pytest.fixture
def quiet_tap() -> Iterator[None]:
    """The tap logs a plan and a line per window; 200 runs of that only slow the test."""
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def fast_sandbox() -> Any:
    return running_sandbox(
        today=FIRST_DAY, seed=42, requests_per_minute=10**7, requests_per_day=10**9
    )


@pytest.mark.slow
@pytest.mark.usefixtures("quiet_tap")
def test_two_hundred_daily_runs_end_equal_to_the_truth_with_the_fewest_calls() -> None:
    with fast_sandbox() as server:
        simulation = Simulation(server, REPORTS)
        config = simulation.config()
        for offset in range(RUNS):
            simulation.run_day(FIRST_DAY + timedelta(days=offset), config)
        cells = {r.name: assert_table_equals_truth(simulation, r) for r in REPORTS}
    totals = ", ".join(
        f"{r.name}: {simulation.calls[r.name]} (fewest {simulation.fewest[r.name]})"
        for r in REPORTS
    )
    made, fewest = sum(simulation.calls.values()), sum(simulation.fewest.values())
    summary = f"{RUNS} daily runs, {made} calls in all, fewest possible {fewest}: {totals}"
    print(f"\n{summary}; rows checked against the truth: {cells}")
    assert made == fewest, summary
    assert all(cells.values()), cells


@pytest.mark.usefixtures("quiet_tap")
def test_partial_data_marks_is_complete_and_never_replaces_a_complete_row() -> None:
    report = ReportCase(
        "partial", "long", "cumulative", ("date", "pid"), ("revenue",), GEOS, partial_data=True
    )
    runs = 20
    last = FIRST_DAY + timedelta(days=runs - 1)
    with fast_sandbox() as server:
        # Every period of every date is complete on the last run.
        end = last - timedelta(days=max(PERIODS) + 1)
        simulation = Simulation(server, (report,), end=end)
        config = simulation.config()
        table = simulation.tables[report.name] = UpsertTable(["app_id", "date", "pid", "period"])
        incomplete = 0
        for offset in range(runs):
            today = FIRST_DAY + timedelta(days=offset)
            server.set_today(today)
            run = run_tap(config, state=simulation.state, now=utc_noon(today))
            assert run.exit_code == 0
            simulation.state = run.last_state or simulation.state
            for record in run.records.get(report.name, []):
                old = table.rows.get(table.key(record))
                if old is not None and old["is_complete"]:
                    assert record["is_complete"], f"complete row replaced on {today}: {record}"
                incomplete += not record["is_complete"]
                # Also checks is_complete against the date and refuses any regression.
                simulation.upsert(report, record, today)
        assert incomplete, "partial data never produced an incomplete row"
        expected = truth(server, report, START, end)
    assert all(row["is_complete"] for row in table.rows.values())
    assert set(table.rows) == set(expected)
    for key, row in expected.items():
        for column, value in row.items():
            assert _number(table.rows[key][column]) == value, (key, column)
