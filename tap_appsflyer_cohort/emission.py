"""One app's windows of one report, emitted in order: records out, then the ledger updated.

The scheduler hands back each window's answers (one table per KPI); the emitter checks
what they serve, builds the records (KPIs merged, provenance added), yields them, and
only then reports the dates served so the stream can save them in its state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any

from tap_appsflyer_cohort.client import CohortApiStream
from tap_appsflyer_cohort.columns import ReportColumns
from tap_appsflyer_cohort.contract import BUILTIN_KPI_FUNCTIONS
from tap_appsflyer_cohort.ledger import Ledger
from tap_appsflyer_cohort.planner import AppPlan, Window
from tap_appsflyer_cohort.records import RecordBuilder
from tap_appsflyer_cohort.responses import CohortTable, window_service
from tap_appsflyer_cohort.scheduler import Scheduler

#: Long records per call above which the loader, not the API, sets a backfill's pace:
#: MeltanoLabs target-postgres and target-duckdb load about 17,000 long records/s with
#: the shipped settings (``scripts/bench.py e2e``), against one call a second at the
#: API's 60 calls/min; past about three times that, the hint below is worth a line.
LONG_RECORDS_HINT_PER_CALL = 50_000


def long_records_per_call(tables: Mapping[str, CohortTable], periods: int) -> int:
    """Long records a window writes per call, at most: its cohorts times the periods.

    The long layout merges a window's KPIs into one record per cohort and period, and a
    window takes one call per KPI.
    """
    cohorts = max((len(t.rows) for t in tables.values()), default=0)
    return cohorts * periods // max(len(tables), 1)


def note_event_values(seen: dict[str, bool], tables: Mapping[str, CohortTable]) -> None:
    """Remember, per event KPI, whether any answer so far held a non-zero value."""
    for kpi, table in tables.items():
        if kpi in BUILTIN_KPI_FUNCTIONS or seen.get(kpi) or not table.rows:
            continue
        seen[kpi] = any(value for *_, values in table.rows for value in values)


class AppEmitter:
    """Emits one app's planned windows of one stream, as the scheduler hands them back."""

    def __init__(
        self,
        stream: CohortApiStream,
        columns: ReportColumns,
        scheduler: Scheduler,
        plan: AppPlan,
        *,
        on_answer: Callable[[], None],
        on_served: Callable[[Ledger], None],
    ) -> None:
        self.stream = stream
        self.columns = columns
        self.scheduler = scheduler
        self.plan = plan
        #: Called before a window's records go out (its data was just read from the API).
        self.on_answer = on_answer
        #: Called with the updated ledger once a window's records are out.
        self.on_served = on_served
        self.ledger = plan.ledger
        #: Dates not loaded because an answer was short (asked again next run).
        self.dates_left_due = 0

    def records(self) -> Iterator[dict[str, Any]]:
        """Every window's records, oldest window first; closing this drops the stream's jobs."""
        stream, app_id, report = self.stream, self.plan.app_id, self.stream.report
        started = time.monotonic()
        event_signal: dict[str, bool] = {}  # event KPI -> a non-zero value was seen
        try:
            while (job := self.scheduler.take(stream, app_id)) is not None:
                tables = self.scheduler.collect(job)
                waited, started = time.monotonic() - started, time.monotonic()
                if tables is None:
                    continue
                note_event_values(event_signal, tables)
                if report.layout == "long":
                    self._hint_at_wide(tables)
                served, covered_days, records = self._emit(job.window, tables)
                self.on_answer()
                yield from records
                if served:
                    self.ledger = self.ledger.record(
                        served, self.plan.today, report.max_period, covered_days
                    )
                    self.on_served(self.ledger)
                stream.logger.info(
                    "Window done: report '%s', app '%s', %s..%s, %d row(s), %.1f s, "
                    "%d call(s) left today",
                    stream.name,
                    app_id,
                    job.window.start,
                    job.window.end,
                    max((len(t.rows) for t in tables.values()), default=0),
                    waited,
                    stream.pacer.remaining_today,
                )
        except GeneratorExit:
            # The SDK stopped this stream early (record limit of --test): drop all its apps.
            self.scheduler.abandon(stream)
            raise
        finally:
            self.scheduler.abandon(stream, app_id)
        for kpi in sorted(k for k, nonzero in event_signal.items() if not nonzero):
            # [I] What the API answers for an unknown event is not documented; the sandbox
            # and, by report, the API answer zeros rather than a 422.
            stream.logger.warning(
                "Report '%s', app '%s': event KPI '%s' is zero in every row this run; check "
                "the event name's spelling and case (event names are case-sensitive)",
                stream.name,
                app_id,
                kpi,
            )

    def _emit(
        self, window: Window, tables: Mapping[str, CohortTable]
    ) -> tuple[list[date], int | None, Iterator[dict[str, Any]]]:
        """The dates a window served, what they cover, and their records (KPIs merged)."""
        stream, app_id = self.stream, self.plan.app_id
        self._warn_about_columns(tables)
        service = window_service(
            (d.isoformat() for d in window.dates),
            window.start.isoformat(),
            window.end.isoformat(),
            tables.values(),
        )
        if service.outside:
            stream.warn_once(
                f"Report '{stream.name}', app '{app_id}': ignoring rows for dates the query "
                f"did not ask for (e.g. {min(service.outside)})"
            )
        if service.inconsistent:
            shown = ", ".join(sorted(service.inconsistent)[:3])
            stream.logger.warning(
                "Report '%s', app '%s': the KPIs' answers disagree on the cohorts of %d "
                "date(s) (%s...): one answered short; those dates are not loaded now and "
                "are asked again next run",
                stream.name,
                app_id,
                len(service.inconsistent),
                shown,
            )
            self.dates_left_due += len(service.inconsistent)
        if not service.emit and not service.inconsistent:
            stream.logger.warning(
                "No data for report '%s', app '%s', %s..%s: those dates stay due and are "
                "asked again next run",
                stream.name,
                app_id,
                window.start,
                window.end,
            )
            return [], None, iter(())
        covered = [t.covered_days for t in tables.values() if t.covered_days is not None]
        covered_days = min(covered) if covered else None
        if covered_days is not None:
            stream.warn_once(
                f"The API's complete cohort days for app '{app_id}' run behind this machine's "
                "date (normal around midnight: the vendor says a day's data appears at 00:01 "
                "in the app's time zone): the newest cohort days stay maturing and are asked "
                "again next run"
            )
        served = [d for d in window.dates if d.isoformat() in service.served]
        settings, report = stream.settings, stream.report
        builder = RecordBuilder(
            self.columns,
            app_id,
            self.plan.today,
            currency=settings.currency_label(report, app_id),
            timezone=settings.timezone_label(report, app_id),
            blank_value=settings.blank_value,
        )
        return served, covered_days, builder.build(tables, set(service.emit))

    def _hint_at_wide(self, tables: Mapping[str, CohortTable]) -> None:
        """Once per stream: say when long records, not the API, will set the pace."""
        report = self.stream.report
        if long_records_per_call(tables, len(report.periods)) > LONG_RECORDS_HINT_PER_CALL:
            self.stream.warn_once(
                f"Report '{self.stream.name}': its answers make over "
                f"{LONG_RECORDS_HINT_PER_CALL:,} long records per call; loaders take about "
                "1 s per 17,000 records, so a backfill runs at the loader's pace, not the "
                "API's: 'layout: wide' holds the same values in one record per cohort"
            )

    def _warn_about_columns(self, tables: Mapping[str, CohortTable]) -> None:
        name = self.stream.name
        lacking = sorted({c for table in tables.values() for c in table.missing_columns})
        if lacking:
            self.stream.warn_once(
                f"Report '{name}': the API's answers lack column(s) {', '.join(lacking)}: "
                "those values load as null"
            )
        unknown = sorted({c for table in tables.values() for c in table.unknown_columns})
        if unknown:
            self.stream.warn_once(
                f"Report '{name}': ignoring column(s) the tap does not know in the API's "
                f"answers: {', '.join(unknown)}"
            )
