"""records.py on its own: answers (one table per KPI) in, warehouse records out.

The tables are built here by hand, so each rule is seen alone: KPIs merged on the cohort
key, only complete periods (or incomplete ones flagged, with partial data), blanks named,
hours as date + hour, counts as integers, provenance stamped unless it is a grouping.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from tap_appsflyer_cohort.columns import ReportColumns
from tap_appsflyer_cohort.records import RecordBuilder
from tap_appsflyer_cohort.report import parse_report
from tap_appsflyer_cohort.responses import CohortTable

TODAY = date(2026, 6, 15)


def _report(**fields: Any) -> Any:
    raw = {"name": "r", "groupings": ["date", "pid"], "kpis": ["sessions"], **fields}
    return parse_report(raw, 0)


def _build(report: Any, tables: dict[str, CohortTable], dates: set[str], **kw: Any) -> list[Any]:
    builder = RecordBuilder(
        ReportColumns(report), "app", TODAY, currency="USD", timezone="UTC", **kw
    )
    return list(builder.build(tables, dates))


def _sessions(
    rows: list[tuple[tuple[str, ...], list[float | None]]], *, counts: bool = True
) -> CohortTable:
    """A sessions answer for periods 0 and 1 (count, rate, unique users each).

    As the parsers hand it over: counts are integers unless the report is ``per_user``.
    """
    table = CohortTable(
        kpi="sessions",
        columns=[(f, p) for p in (0, 1) for f in ("count", "rate", "unique_users")],
    )
    integer = {i for i, (f, _) in enumerate(table.columns) if counts and f != "rate"}

    def typed(values: list[float | None]) -> list[float | None]:
        return [round(v) if i in integer and v is not None else v for i, v in enumerate(values)]

    table.rows = [(key, 100, 1.5, 150.0, typed(values)) for key, values in rows]
    return table


def test_long_records_hold_only_complete_periods() -> None:
    report = _report(aggregation_type="on_day", filters={"period": [0, 1]})
    yesterday = [10.0, 10.0, 9.0, 5.0, 5.0, 4.0]
    older = [20.0, 20.0, 18.0, 8.0, 8.0, 7.0]
    tables = {
        "sessions": _sessions(
            [(("2026-06-14", "Organic"), yesterday), (("2026-06-13", "Organic"), older)]
        )
    }
    records = _build(report, tables, {"2026-06-13", "2026-06-14"})
    keys = [(r["date"], r["period"]) for r in records]
    # June 14 has only day 0 complete on June 15; June 13 has days 0 and 1.
    assert keys == [("2026-06-13", 0), ("2026-06-13", 1), ("2026-06-14", 0)]
    assert records[1]["sessions_count"] == 8
    assert isinstance(records[1]["sessions_count"], int)
    assert records[1]["sessions_rate"] == 8.0
    assert records[0]["currency"] == "USD"
    assert records[0]["aggregation_type"] == "on_day"


def test_only_the_dates_asked_for_are_built() -> None:
    report = _report(aggregation_type="on_day", filters={"period": [0]})
    tables = {
        "sessions": _sessions([(("2026-06-13", "a"), [1.0] * 6), (("2026-06-12", "a"), [2.0] * 6)])
    }
    records = _build(report, tables, {"2026-06-12"})
    assert {r["date"] for r in records} == {"2026-06-12"}


def test_kpis_are_merged_on_the_cohort_key() -> None:
    report = _report(kpis=["revenue", "roas"], filters={"period": [0]})
    revenue = CohortTable(kpi="revenue", columns=[("count", 0), ("sum", 0)])
    revenue.rows = [(("2026-06-13", "a"), 100, 2.0, 200.0, [3.0, 30.0])]
    roas = CohortTable(kpi="roas", columns=[("rate", 0)])
    roas.rows = [(("2026-06-13", "a"), 100, 2.0, 200.0, [15.0])]
    (record,) = _build(report, {"revenue": revenue, "roas": roas}, {"2026-06-13"})
    assert (record["revenue_count"], record["revenue_sum"], record["roas_rate"]) == (3, 30.0, 15.0)
    assert record["users"] == 100


def test_wide_layout_nulls_the_periods_not_complete() -> None:
    report = _report(layout="wide", aggregation_type="on_day", filters={"period": [0, 1]})
    tables = {"sessions": _sessions([(("2026-06-14", "a"), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])])}
    (record,) = _build(report, tables, {"2026-06-14"})
    assert record["sessions_count_day_0"] == 1
    assert record["sessions_count_day_1"] is None  # day 1 of June 14 is today
    assert "period" not in record


def test_partial_data_flags_the_running_day() -> None:
    report = _report(kpis=["revenue"], partial_data=True, filters={"period": [0, 1, 2]})
    table = CohortTable(kpi="revenue", columns=[("sum", p) for p in (0, 1, 2)])
    table.rows = [(("2026-06-14", "a"), 10, None, 0.0, [1.0, 2.0, 2.5])]
    records = _build(report, {"revenue": table}, {"2026-06-14"})
    assert [(r["period"], r["is_complete"]) for r in records] == [(0, True), (1, False)]


def test_blank_groupings_are_named_and_hours_split() -> None:
    report = _report(granularity="hour", groupings=["date", "c"], filters={"period": [0]})
    tables = {"sessions": _sessions([(("2026-06-14 05:00:00", ""), [1.0] * 6)])}
    (record,) = _build(report, tables, {"2026-06-14"}, blank_value="(none)")
    assert (record["date"], record["hour"], record["c"]) == ("2026-06-14", 5, "(none)")


def test_per_user_counts_stay_fractions() -> None:
    report = _report(per_user=True, aggregation_type="on_day", filters={"period": [0]})
    row = (("2026-06-13", "a"), [0.25, 1.0, 0.2, 0.0, 0.0, 0.0])
    tables = {"sessions": _sessions([row], counts=False)}
    (record,) = _build(report, tables, {"2026-06-13"})
    assert record["sessions_count"] == 0.25
    assert record["per_user"] is True


def test_provenance_is_not_written_over_a_grouping() -> None:
    report = _report(groupings=["date", "cohort_type"], filters={"period": [0]})
    tables = {"sessions": _sessions([(("2026-06-13", "retargeting"), [1.0] * 6)])}
    (record,) = _build(report, tables, {"2026-06-13"})
    assert record["cohort_type"] == "retargeting"
