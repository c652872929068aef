"""Turn one window's KPI answers into records: merged on the cohort key, complete only.

Everything that does not depend on the row (column names, which answer column feeds which
record field, null defaults) is worked out once per answer, so the per-row work is a few
dict operations: this is the tap's hot path.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any

from tap_appsflyer_cohort.columns import ReportColumns, output_column
from tap_appsflyer_cohort.report import Report
from tap_appsflyer_cohort.responses import CohortTable

Row = tuple[tuple[str, ...], Any, Any, Any, list[Any]]


class _Plan:
    """Where one answer's KPI values go: sorted by period, cut by completeness per row."""

    def __init__(self, report: Report, table: CohortTable) -> None:
        functions = set(report.functions(table.kpi))
        requested = set(report.periods)
        slots = sorted(
            (period, index, function)
            for index, (function, period) in enumerate(table.columns)
            if function in functions and period in requested
        )
        self.periods = [period for period, _, _ in slots]
        self.indexes = [index for _, index, _ in slots]
        self.wide_names = [output_column(table.kpi, f, p) for p, _, f in slots]
        long_names = {f: output_column(table.kpi, f) for f in functions}
        self.by_period: dict[int, list[tuple[int, str]]] = {}
        for period, index, function in slots:
            self.by_period.setdefault(period, []).append((index, long_names[function]))


class RecordBuilder:
    """Builds one report's records for one app and one day's notion of completeness."""

    def __init__(
        self,
        columns: ReportColumns,
        app_id: str,
        today: date,
        *,
        currency: str,
        timezone: str,
        blank_value: str = "",
    ) -> None:
        report = columns.report
        self.report = report
        self.blank_value = blank_value
        self.hourly = report.granularity == "hour"
        self.app_id = app_id
        self.today_ordinal = today.toordinal()
        self.provenance = columns.provenance(
            {
                "cohort_type": report.cohort_type,
                "aggregation_type": report.aggregation_type,
                "per_user": report.per_user,
                "currency": currency,
                "timezone": timezone,
            }
        )
        self.dimension_names = report.dimension_groupings
        self.key_names = ("date", *report.dimension_groupings)
        nulls = columns.null_kpis()
        self.null_wide = nulls if report.layout == "wide" else {}
        self.null_long = nulls if report.layout == "long" else {}
        self._elapsed_by_date: dict[str, int] = {}

    def _elapsed(self, day: str) -> int:
        elapsed = self._elapsed_by_date.get(day)
        if elapsed is None:
            elapsed = self.today_ordinal - date.fromisoformat(day[:10]).toordinal()
            self._elapsed_by_date[day] = elapsed
        return elapsed

    def build(self, tables: Mapping[str, CohortTable], dates: set[str]) -> Iterator[dict[str, Any]]:
        """Records of the cohorts whose LTV date is in ``dates``, in key order."""
        plans = {kpi: _Plan(self.report, table) for kpi, table in tables.items()}
        merged: dict[tuple[str, ...], tuple[Any, Any, Any, dict[str, list[Any]]]] = {}
        for kpi, table in tables.items():
            for key, users, ecpi, cost, values in table.rows:
                if key[0][:10] not in dates:
                    continue
                entry = merged.get(key)
                if entry is None:
                    entry = merged[key] = (users, ecpi, cost, {})
                entry[3][kpi] = values
        wide = self.report.layout == "wide"
        for key in sorted(merged):
            users, ecpi, cost, values_by_kpi = merged[key]
            head = self._head(key)
            measures = {"users": users, "ecpi": ecpi, "cost": cost, **self.provenance}
            elapsed = self._elapsed(key[0])
            if wide:
                yield self._wide(head, measures, elapsed, values_by_kpi, plans)
            else:
                yield from self._long(head, measures, elapsed, values_by_kpi, plans)

    def _head(self, key: tuple[str, ...]) -> dict[str, Any]:
        """The key columns of a record: app, date (and hour), groupings."""
        if self.blank_value and "" in key:
            key = tuple(value or self.blank_value for value in key)
        if not self.hourly:  # the answer's date is already YYYY-MM-DD (DateReader)
            head: dict[str, Any] = {"app_id": self.app_id}
            head.update(zip(self.key_names, key, strict=True))
            return head
        # "2026-06-14 05:00:00": a date and an hour, in the report's time zone
        # (no offset: targets disagree on offsets, and local hours have no fixed one).
        moment = key[0]
        head = {"app_id": self.app_id, "date": moment[:10]}
        head["hour"] = int(moment[11:13])
        head.update(zip(self.dimension_names, key[1:], strict=True))
        return head

    def _wide(
        self,
        head: dict[str, Any],
        measures: dict[str, Any],
        elapsed: int,
        values_by_kpi: dict[str, list[Any]],
        plans: Mapping[str, _Plan],
    ) -> dict[str, Any]:
        record = {**head, **measures, **self.null_wide}
        for kpi, values in values_by_kpi.items():
            plan = plans[kpi]
            cut = bisect.bisect_left(plan.periods, elapsed)  # periods >= elapsed: incomplete
            record.update(
                zip(plan.wide_names[:cut], [values[i] for i in plan.indexes[:cut]], strict=True)
            )
        return record

    def _long(
        self,
        head: dict[str, Any],
        measures: dict[str, Any],
        elapsed: int,
        values_by_kpi: dict[str, list[Any]],
        plans: Mapping[str, _Plan],
    ) -> Iterator[dict[str, Any]]:
        emit_incomplete = self.report.partial_data
        tail = {**measures, **self.null_long}
        if len(values_by_kpi) == 1:
            ((kpi, values),) = values_by_kpi.items()
            yield from self._long_one_kpi(head, tail, elapsed, values, plans[kpi])
            return
        by_period: dict[int, dict[str, Any]] = {}
        for kpi, values in values_by_kpi.items():
            for period, slots in plans[kpi].by_period.items():
                complete = period < elapsed
                if not complete and not (emit_incomplete and period <= elapsed):
                    break
                row = by_period.get(period)
                if row is None:
                    row = by_period[period] = {**head, "period": period, **tail}
                    if emit_incomplete:
                        row["is_complete"] = complete
                for index, name in slots:
                    row[name] = values[index]
        for period in sorted(by_period):
            yield by_period[period]

    def _long_one_kpi(
        self,
        head: dict[str, Any],
        tail: dict[str, Any],
        elapsed: int,
        values: list[Any],
        plan: _Plan,
    ) -> Iterator[dict[str, Any]]:
        """Long records of a one-KPI report: one per period, nothing to merge."""
        emit_incomplete = self.report.partial_data
        for period, slots in plan.by_period.items():
            complete = period < elapsed
            if not complete and not (emit_incomplete and period <= elapsed):
                break  # sorted: the rest are incomplete (or, with partial data, not begun)
            record = {**head, "period": period, **tail}
            for index, name in slots:
                record[name] = values[index]
            if emit_incomplete:
                record["is_complete"] = complete
            yield record
