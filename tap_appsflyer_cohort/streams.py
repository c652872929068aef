"""One stream per configured report; one partition per app.

A stream plans its apps (which windows each needs today, given its ledger), then emits
each window the scheduler hands back, oldest first, and records it in the ledger in the
partition state once its records are out (the SDK's bookmark alone cannot describe
maturing data).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import requests
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_appsflyer_cohort import ledger, planner
from tap_appsflyer_cohort.client import CohortApiStream
from tap_appsflyer_cohort.clock import Clock
from tap_appsflyer_cohort.columns import ReportColumns
from tap_appsflyer_cohort.contract import BUILTIN_KPI_FUNCTIONS
from tap_appsflyer_cohort.errors import AppNotEnabledError
from tap_appsflyer_cohort.output import RecordBufferedWriter, plain_output
from tap_appsflyer_cohort.pacer import Pacer
from tap_appsflyer_cohort.records import RecordBuilder
from tap_appsflyer_cohort.report import Report
from tap_appsflyer_cohort.responses import CohortTable, window_service
from tap_appsflyer_cohort.scheduler import ApiLimits, FetchJob, Scheduler
from tap_appsflyer_cohort.settings import Settings

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.tap_base import Tap

#: The earliest possible "today" on Earth: used when an app's time zone is unknown, so an
#: incomplete cohort day is never taken for a complete one.
_EARLIEST_ZONE = timezone(timedelta(hours=-12))
#: Where the state keeps the calls made so far on the current UTC day (for the budget).
USAGE_KEY = "api_calls"


def _note_event_values(seen: dict[str, bool], tables: Mapping[str, CohortTable]) -> None:
    """Remember, per event KPI, whether any answer so far held a non-zero value."""
    for kpi, table in tables.items():
        if kpi in BUILTIN_KPI_FUNCTIONS or seen.get(kpi) or not table.rows:
            continue
        seen[kpi] = any(value for *_, values in table.rows for value in values)


def save_usage(state: Any, usage: dict[str, object]) -> None:
    """Put the day's call count beside the bookmarks (the SDK keeps unknown keys)."""
    state[USAGE_KEY] = usage


@dataclass(frozen=True)
class AppPlan:
    """One app's plan for this run: its today, its ledger, the windows it needs."""

    app_id: str
    today: date
    ledger: ledger.Ledger
    windows: tuple[planner.Window, ...]


class CohortReportStream(CohortApiStream):
    """A cohort report: records keyed by app, LTV date, groupings (and period in long)."""

    replication_key = "date"
    is_sorted = False
    # Records are built typed from the schema, so per-record conformance is skipped.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(
        self,
        tap: Tap,
        report: Report,
        settings: Settings,
        *,
        pacer: Pacer,
        clock: Clock,
        session: requests.Session,
        scheduler: Scheduler,
    ) -> None:
        self.columns = ReportColumns(report, settings.blank_value)
        self.scheduler = scheduler
        self.failed_apps: list[str] = []
        #: Dates not loaded this run because an answer was short (asked again next run).
        self.dates_left_due = 0
        self._plans: dict[str, AppPlan] = {}
        self._plain_output: bool | None = None
        self._time_extracted = clock.now()
        super().__init__(
            tap, report, settings, self.columns.schema(), pacer=pacer, clock=clock, session=session
        )
        self.primary_keys = self.columns.key_properties

    @property
    @override
    def partitions(self) -> list[dict[str, Any]]:
        """One partition per app: the API is single-app, and each app has its own state."""
        return [{"app_id": app_id} for app_id in self.settings.apps_for(self.report)]

    # ---- planning ------------------------------------------------------------------

    def app_today(self, app_id: str) -> date:
        """Today in the time zone the report's dates are in (decides completeness)."""
        now = self.clock.now()
        if not self.report.preferred_timezone:
            return now.date()
        zone = self.settings.timezone_of(app_id)
        if zone is None:
            self.warn_once(
                f"report '{self.name}' has preferred_timezone but app '{app_id}' has no "
                "app_timezone setting: taking today at UTC-12 so nothing incomplete is "
                "loaded as complete (set app_timezone for fresher data)"
            )
            return now.astimezone(_EARLIEST_ZONE).date()
        return now.astimezone(ZoneInfo(zone)).date()

    def plan_app(self, context: Context, limits: ApiLimits) -> AppPlan:
        """The windows one app needs today, given what its ledger says is loaded."""
        app_id = context["app_id"]
        today = self.app_today(app_id)
        report = self.report
        loaded = ledger.load_ledger(
            self.get_context_state(context),
            fingerprint=report.fingerprint(),
            max_period=report.max_period,
            report_name=self.name,
            app_id=app_id,
            logger=self.logger,
        )
        start = self.settings.start_date or today - timedelta(days=30)
        first = max(start, today - timedelta(days=limits.horizon_days))
        if first > start:
            self.warn_once(
                f"start_date {start} is older than the {limits.horizon_days} days the API "
                f"keeps: syncing from {first}"
            )
        last = today - timedelta(days=1)
        if report.granularity == "hour":
            # The API serves hours of the last 72 only: the two whole days before today.
            first = max(first, today - timedelta(days=2))
        if self.settings.end_date is not None:
            last = min(last, self.settings.end_date)
        windows: list[planner.Window] = []
        if first <= last:
            windows = planner.plan(
                first_date=first,
                last_date=last,
                today=today,
                periods=report.periods,
                ledger=loaded,
                max_window_days=limits.max_window_days,
                restatement_days=report.restated_days,
                partial_fetch=report.uses_partial_fetch and limits.partial_fetch_ok,
                refresh_incomplete=report.partial_data,
            )
        self._plans[app_id] = plan = AppPlan(app_id, today, loaded, tuple(windows))
        return plan

    # ---- sync ----------------------------------------------------------------------

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Emit one app's planned windows; a 404 app fails alone."""
        assert context is not None
        app_id = context["app_id"]
        try:
            yield from self._sync_app(app_id, context)
        except AppNotEnabledError as exc:
            self.logger.error("%s", exc)
            self.failed_apps.append(str(exc))

    def _sync_app(self, app_id: str, context: Context) -> Iterator[dict[str, Any]]:
        plan = self._plans.pop(app_id, None)
        if plan is None:  # synced on its own (a dry run), not through the tap's sync_all
            plan = self.plan_app(context, self.scheduler.limits)
            windows = plan.windows
            if self.ABORT_AT_RECORD_COUNT is not None:
                windows = windows[:1]  # a dry run (--test) reads a few records
            self.scheduler.enqueue(FetchJob(self, app_id, plan.today, w) for w in windows)
        loaded = plan.ledger
        started = time.monotonic()
        event_signal: dict[str, bool] = {}  # event KPI -> a non-zero value was seen
        try:
            while (job := self.scheduler.take(self, app_id)) is not None:
                tables = self.scheduler.collect(job)
                waited, started = time.monotonic() - started, time.monotonic()
                if tables is None:
                    continue
                _note_event_values(event_signal, tables)
                served, covered_days, records = self._emit(app_id, job.window, tables, plan.today)
                # One extraction time per answer: when its data was read from the API.
                self._time_extracted = self.clock.now()
                yield from records
                if served:
                    loaded = loaded.record(served, plan.today, self.report.max_period, covered_days)
                    state = self.get_context_state(context)
                    ledger.save_ledger(
                        state,
                        loaded,
                        fingerprint=self.report.fingerprint(),
                        replication_key="date",
                    )
                    save_usage(self.tap_state, self.pacer.usage())
                    self.state_manager.is_flushed = False
                    self._write_state_message()
                self.logger.info(
                    "Window done: report '%s', app '%s', %s..%s, %d row(s), %.1f s, "
                    "%d call(s) left today",
                    self.name,
                    app_id,
                    job.window.start,
                    job.window.end,
                    max((len(t.rows) for t in tables.values()), default=0),
                    waited,
                    self.pacer.remaining_today,
                )
        except GeneratorExit:
            # The SDK stopped this stream early (record limit of --test): drop all its apps.
            self.scheduler.abandon(self)
            raise
        finally:
            self.scheduler.abandon(self, app_id)
        for kpi in sorted(k for k, nonzero in event_signal.items() if not nonzero):
            # [I] What the API answers for an unknown event is not documented; the sandbox
            # and, by report, the API answer zeros rather than a 422.
            self.logger.warning(
                "Report '%s', app '%s': event KPI '%s' is zero in every row this run; check "
                "the event name's spelling and case (event names are case-sensitive)",
                self.name,
                app_id,
                kpi,
            )

    def _emit(
        self, app_id: str, window: planner.Window, tables: Mapping[str, CohortTable], today: date
    ) -> tuple[list[date], int | None, Iterator[dict[str, Any]]]:
        """The dates a window served, what they cover, and their records (KPIs merged)."""
        self._warn_about_columns(tables)
        service = window_service(
            (d.isoformat() for d in window.dates),
            window.start.isoformat(),
            window.end.isoformat(),
            tables.values(),
        )
        if service.outside:
            self.warn_once(
                f"Report '{self.name}', app '{app_id}': ignoring rows for dates the query did "
                f"not ask for (e.g. {min(service.outside)})"
            )
        if service.inconsistent:
            shown = ", ".join(sorted(service.inconsistent)[:3])
            self.logger.warning(
                "Report '%s', app '%s': the KPIs' answers disagree on the cohorts of %d "
                "date(s) (%s...): one answered short; those dates are not loaded now and "
                "are asked again next run",
                self.name,
                app_id,
                len(service.inconsistent),
                shown,
            )
            self.dates_left_due += len(service.inconsistent)
        if not service.emit and not service.inconsistent:
            self.logger.warning(
                "No data for report '%s', app '%s', %s..%s: those dates stay due and are "
                "asked again next run",
                self.name,
                app_id,
                window.start,
                window.end,
            )
            return [], None, iter(())
        covered = [t.covered_days for t in tables.values() if t.covered_days is not None]
        covered_days = min(covered) if covered else None
        if covered_days is not None:
            self.warn_once(
                f"The API's complete cohort days for app '{app_id}' run behind this machine's "
                "date (normal around midnight: the vendor says a day's data appears at 00:01 "
                "in the app's time zone): the newest cohort days stay maturing and are asked "
                "again next run"
            )
        served = [d for d in window.dates if d.isoformat() in service.served]
        report = self.report
        builder = RecordBuilder(
            self.columns,
            app_id,
            today,
            currency=(self.settings.currency_of(app_id) or "APP")
            if report.preferred_currency
            else "USD",
            timezone=(self.settings.timezone_of(app_id) or "APP")
            if report.preferred_timezone
            else "UTC",
            blank_value=self.settings.blank_value,
        )
        return served, covered_days, builder.build(tables, set(service.emit))

    def _warn_about_columns(self, tables: Mapping[str, CohortTable]) -> None:
        lacking = sorted({c for table in tables.values() for c in table.missing_columns})
        if lacking:
            self.warn_once(
                f"Report '{self.name}': the API's answers lack column(s) {', '.join(lacking)}: "
                "those values load as null"
            )
        unknown = sorted({c for table in tables.values() for c in table.unknown_columns})
        if unknown:
            self.warn_once(
                f"Report '{self.name}': ignoring column(s) the tap does not know in the API's "
                f"answers: {', '.join(unknown)}"
            )

    # ---- the SDK's per-record path (no public hook in singer-sdk 0.54) ----------------

    @override
    def _increment_stream_state(
        self, latest_record: Any, *, context: Context | None = None
    ) -> None:
        """Leave the bookmark to the ledger.

        The SDK would set it to the largest date seen in the run, which goes backwards
        when a run re-reads only older cohorts; ``ledger.save_ledger`` writes it instead.
        """

    @override
    def _write_record_message(self, record: dict[str, Any]) -> None:
        """Queue the record with the writer directly when the SDK's per-record work is a no-op.

        Records are built typed from the schema, and the SDK's pruning, conformance and
        mapping change nothing when every property is selected and no stream map or
        flattening is set (checked once); the output is the same JSON line (tested).
        """
        if self._plain_output is None:
            writer = self._tap.message_writer
            self._plain_output = isinstance(writer, RecordBufferedWriter) and plain_output(self)
        if not self._plain_output:
            super()._write_record_message(record)
            return
        writer = self._tap.message_writer
        assert isinstance(writer, RecordBufferedWriter)
        writer.write_record(self.name, record, self._stream_version, self._time_extracted)
        self.state_manager.is_flushed = False

    @override
    def generate_child_contexts(
        self, record: dict[str, Any], context: Context | None
    ) -> Iterable[Context | None]:
        """None: cohort streams have no children (the SDK would copy the context per record)."""
        return ()
