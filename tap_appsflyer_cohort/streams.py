"""One stream per configured report; one partition per app: the SDK's side of the tap.

A stream plans its apps (which windows each needs today, given its ledger), then hands
each app to an ``AppEmitter``, which emits the windows the scheduler returns, oldest
first; the stream records each in the ledger in the partition state once its records are
out (the SDK's bookmark alone cannot describe maturing data).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import requests
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_appsflyer_cohort import ledger, planner
from tap_appsflyer_cohort.client import CohortApiStream
from tap_appsflyer_cohort.clock import Clock
from tap_appsflyer_cohort.columns import ReportColumns
from tap_appsflyer_cohort.emission import AppEmitter
from tap_appsflyer_cohort.errors import AppNotEnabledError
from tap_appsflyer_cohort.output import RecordBufferedWriter, plain_output
from tap_appsflyer_cohort.pacer import Pacer, save_usage
from tap_appsflyer_cohort.planner import AppPlan
from tap_appsflyer_cohort.report import Report
from tap_appsflyer_cohort.scheduler import ApiLimits, FetchJob, Scheduler
from tap_appsflyer_cohort.settings import Settings

if TYPE_CHECKING:
    from datetime import date

    from singer_sdk.helpers.types import Context
    from singer_sdk.tap_base import Tap


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
        if not self.report.preferred_timezone:
            return self.clock.now().date()
        zone = self.settings.timezone_of(app_id)
        if zone is None:
            self.warn_once(
                f"report '{self.name}' has preferred_timezone but app '{app_id}' has no "
                "app_timezone setting: taking today at UTC-12 so nothing incomplete is "
                "loaded as complete (set app_timezone for fresher data)"
            )
        return self.clock.today_in(zone)

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
        bounds = planner.date_bounds(
            today=today,
            start_date=self.settings.start_date,
            end_date=self.settings.end_date,
            horizon_days=limits.horizon_days,
            hourly=report.granularity == "hour",
        )
        if bounds.horizon_cut is not None:
            self.warn_once(
                f"start_date {bounds.horizon_cut} is older than the {limits.horizon_days} days "
                f"the API keeps: syncing from {bounds.oldest}"
            )
        plan = planner.plan_app(
            report,
            app_id,
            today=today,
            ledger=loaded,
            bounds=bounds,
            max_window_days=limits.max_window_days,
            partial_fetch_ok=limits.partial_fetch_ok,
        )
        self._plans[app_id] = plan
        return plan

    def jobs_for(self, plan: AppPlan) -> list[FetchJob]:
        """A plan's windows as the scheduler's jobs (a dry run, --test, reads one window)."""
        windows = plan.windows if self.ABORT_AT_RECORD_COUNT is None else plan.windows[:1]
        return [FetchJob(self, plan.app_id, plan.today, window) for window in windows]

    # ---- sync ----------------------------------------------------------------------

    @override
    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Emit one app's planned windows; a 404 app fails alone."""
        assert context is not None
        app_id = context["app_id"]
        plan = self._plans.pop(app_id, None)
        if plan is None:  # synced on its own (a dry run), not through the tap's sync_all
            plan = self.plan_app(context, self.scheduler.limits)
            self.scheduler.enqueue(self.jobs_for(plan))
        emitter = AppEmitter(
            self,
            self.columns,
            self.scheduler,
            plan,
            on_answer=self._answer_read,
            on_served=lambda loaded: self._save_progress(context, loaded),
        )
        try:
            yield from emitter.records()
        except AppNotEnabledError as exc:
            self.logger.error("%s", exc)
            self.failed_apps.append(str(exc))
        finally:
            self.dates_left_due += emitter.dates_left_due

    def _answer_read(self) -> None:
        # One extraction time per answer: when its data was read from the API.
        self._time_extracted = self.clock.now()

    def _save_progress(self, context: Context, loaded: ledger.Ledger) -> None:
        """Save an app's ledger and the day's calls, and write the STATE message."""
        ledger.save_ledger(
            self.get_context_state(context),
            loaded,
            fingerprint=self.report.fingerprint(),
            replication_key="date",
        )
        save_usage(self.tap_state, self.pacer.usage())
        self.state_manager.is_flushed = False
        self._write_state_message()

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
        writer = self._tap.message_writer
        if self._plain_output is None:
            self._plain_output = isinstance(writer, RecordBufferedWriter) and plain_output(self)
        if not self._plain_output or not isinstance(writer, RecordBufferedWriter):
            super()._write_record_message(record)
            return
        writer.write_record(self.name, record, self._stream_version, self._time_extracted)
        self.state_manager.is_flushed = False

    @override
    def generate_child_contexts(
        self, record: dict[str, Any], context: Context | None
    ) -> Iterable[Context | None]:
        """None: cohort streams have no children (the SDK would copy the context per record)."""
        return ()
