"""tap-appsflyer-cohort: the Singer tap for the AppsFlyer Cohort reporting API.

The run, in one direction: settings -> one stream per report -> a plan per stream and
app -> the scheduler keeps calls in flight in sync order -> each stream emits its
windows and saves its ledger -> a summary line (or one line saying why the run stopped).
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Any, ClassVar

import click
import requests
from requests.adapters import HTTPAdapter
from singer_sdk import Tap
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from singer_sdk.singerlib import StateMessage
from typing_extensions import override

from tap_appsflyer_cohort.client import TokenRedactor
from tap_appsflyer_cohort.clock import Clock
from tap_appsflyer_cohort.errors import TapError
from tap_appsflyer_cohort.output import RecordBufferedWriter
from tap_appsflyer_cohort.pacer import USAGE_KEY, Pacer, save_usage
from tap_appsflyer_cohort.scheduler import ApiLimits, FetchJob, RowCapPolicy, Scheduler
from tap_appsflyer_cohort.settings import (
    CONFIG_SCHEMA,
    Settings,
    parse_settings,
    report_fields_markdown,
)
from tap_appsflyer_cohort.streams import CohortReportStream


class TapAppsFlyerCohort(Tap):
    """AppsFlyer Cohort API tap: one stream per configured cohort report."""

    name = "tap-appsflyer-cohort"
    config_jsonschema = CONFIG_SCHEMA
    # The fast (msgspec) writer is opt-in in singer-sdk 0.54; ours also skips a flush per record.
    message_writer_class = RecordBufferedWriter
    # No BATCH (answers are at most 10,000 rows) and no ACTIVATE_VERSION (incremental only).
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Syncing needs a token, apps and a start date; discovery and --about do not.
        self._strict = bool(kwargs.get("validate_config", True))
        super().__init__(*args, **kwargs)
        token = self.config.get("api_token")
        if isinstance(token, str) and token:
            redactor = TokenRedactor(token)
            for handler in logging.getLogger().handlers:
                handler.addFilter(redactor)
            self.logger.addFilter(redactor)
        # Semantic checks run at start-up, before any call, in every mode.
        _ = self.settings

    @cached_property
    def settings(self) -> Settings:
        """The checked settings; bad ones stop the tap with one line naming the field."""
        return parse_settings(self.config, for_sync=self._strict)

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check reports before the JSON schema, whose errors name neither report nor field."""
        if raise_errors:
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                parse_settings(self._config, for_sync=True)  # raises ConfigError
        return super()._validate_config(raise_errors=raise_errors)

    @override
    def load_state(self, state: dict[str, Any]) -> None:
        """The SDK's bookmarks, plus the day's call count (the budget spans runs)."""
        super().load_state(state)
        if USAGE_KEY in state:
            save_usage(self.state, state[USAGE_KEY])
            self.pacer.resume_usage(state[USAGE_KEY])

    @classmethod
    @override
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> Any:
        """The SDK's ``--config`` reader; a missing or broken file is one line, not a traceback."""
        try:
            return super().cb_config(ctx, param, value)
        except FileNotFoundError as exc:
            raise click.BadParameter(f"{exc} Give the path of a JSON config file.") from None
        except ValueError as exc:  # simplejson's JSONDecodeError
            raise click.BadParameter(f"the file is not JSON ({exc})") from None

    @classmethod
    @override
    def print_about(cls, output_format: str | None = None) -> None:
        """The SDK's ``--about``, plus the fields of a report in text and Markdown."""
        super().print_about(output_format)
        if output_format in (None, "text", "markdown"):
            print(report_fields_markdown())

    # ---- what every stream shares (the API's limits are per account) ----------------

    @cached_property
    def clock(self) -> Clock:
        """The tap's now (the real clock, or ``as_of`` for demos against the sandbox)."""
        return Clock(self.settings.as_of)

    @cached_property
    def pacer(self) -> Pacer:
        """One pacer for every stream and app: the limits are per account."""
        return Pacer(
            self.settings.requests_per_minute,
            self.settings.daily_request_budget,
            now=self.clock.now,
        )

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session with a pool as large as the requests in flight."""
        session = requests.Session()
        size = self.settings.max_requests_in_flight
        adapter = HTTPAdapter(pool_connections=size, pool_maxsize=size)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    @cached_property
    def executor(self) -> ThreadPoolExecutor:
        """Worker threads for requests in flight; emission stays ordered."""
        return ThreadPoolExecutor(
            max_workers=self.settings.max_requests_in_flight, thread_name_prefix="cohort-fetch"
        )

    @cached_property
    def scheduler(self) -> Scheduler:
        """Windows fetched ahead across every stream and app, handed back in order."""
        settings = self.settings
        return Scheduler(
            self.executor,
            # Two windows per request slot keep the slots busy while one window is emitted.
            max_ahead=2 * settings.max_requests_in_flight,
            limits=ApiLimits(settings.max_window_days),
            row_caps=RowCapPolicy(settings.row_cap, settings.on_row_cap),
            budget=self.pacer,  # a window is sent only if the day's budget covers all its calls
            now=self.clock.now,
        )

    @override
    def discover_streams(self) -> list[CohortReportStream]:
        """One stream per report, from config alone (discovery makes no API call)."""
        return [
            CohortReportStream(
                self,
                report,
                self.settings,
                pacer=self.pacer,
                clock=self.clock,
                session=self.session,
                scheduler=self.scheduler,
            )
            for report in self.settings.reports
        ]

    # ---- the run -------------------------------------------------------------------

    def _report_streams(self) -> list[CohortReportStream]:
        return [s for s in self.streams.values() if isinstance(s, CohortReportStream)]

    def plan(self) -> list[FetchJob]:
        """Every selected stream's windows, in the order the SDK syncs them, logged."""
        jobs: list[FetchJob] = []
        rate = self.settings.requests_per_minute
        for stream in self._report_streams():
            if not stream.selected:
                continue
            for context in stream.partitions:
                plan = stream.plan_app(context, self.scheduler.limits)
                app_jobs = stream.jobs_for(plan)
                calls = sum(job.calls for job in app_jobs)
                self.logger.info(
                    "Plan for report '%s', app '%s' (today %s): %d window(s) x %d KPI(s) = "
                    "%d call(s), about %.1f min at %d calls/min",
                    stream.name,
                    plan.app_id,
                    plan.today,
                    len(app_jobs),
                    len(stream.report.kpis),
                    calls,
                    self.pacer.minutes_for(calls),
                    rate,
                )
                jobs += app_jobs
        calls = sum(job.calls for job in jobs)
        self.logger.info(
            "Plan for this run: %d window(s), %d call(s), about %.1f min at %d calls/min "
            "(%d calls left in today's budget, %d made earlier today)",
            len(jobs),
            calls,
            self.pacer.minutes_for(calls),
            rate,
            self.pacer.remaining_today,
            self.pacer.used_before,
        )
        return jobs

    @override  # type: ignore[misc]  # final in the SDK, which has no hook around a run
    def sync_all(self) -> None:
        """Plan, sync every stream, summarise; stop with one clear line on errors to act on.

        singer-sdk 0.54 marks ``sync_all`` final and offers no hook around a run, so this
        extends it (calling the SDK's own) rather than copying the CLI that calls it.

        A 404 app fails alone (the others sync) and makes the run exit non-zero at the
        end. Every fully emitted window already wrote its STATE, so a rerun resumes.
        """
        try:
            self.scheduler.enqueue(self.plan())
            super().sync_all()
        except TapError as exc:
            self.logger.error("Sync stopped: %s", exc)
            raise SystemExit(1) from None
        finally:
            self.pacer.stop()
            self.executor.shutdown(wait=False, cancel_futures=True)
            # The day's calls, for the next run's budget (also after a stop).
            save_usage(self.state, self.pacer.usage())
            self.write_message(StateMessage(value=self.state))
            if isinstance(self.message_writer, RecordBufferedWriter):
                self.message_writer.close()
        left_due = sum(s.dates_left_due for s in self._report_streams())
        if left_due:
            self.logger.warning(
                "%d date(s) were not loaded because an answer came back short; the next run "
                "asks for them again",
                left_due,
            )
        failed = [failure for s in self._report_streams() for failure in s.failed_apps]
        if failed:
            self.logger.error(
                "Sync finished with %d app partition(s) failed; see the errors above", len(failed)
            )
            raise SystemExit(1)
        self.logger.info("Sync finished: %d API call(s) made", self.pacer.total_calls)
