"""tap-appsflyer-cohort: the Singer tap for the AppsFlyer Cohort reporting API."""

from __future__ import annotations

import contextlib
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import IO, Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError, RetriableAPIError
from singer_sdk.helpers._util import load_json
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from singer_sdk.plugin_base import _ConfigInput

from tap_appsflyer_cohort.clock import Clock
from tap_appsflyer_cohort.output import RecordBufferedWriter
from tap_appsflyer_cohort.pacer import BudgetExhaustedError, Pacer
from tap_appsflyer_cohort.prefetch import FetchJob, Prefetcher
from tap_appsflyer_cohort.reports import Settings, parse_settings
from tap_appsflyer_cohort.responses import ResponseShapeError
from tap_appsflyer_cohort.settings_schema import CONFIG_SCHEMA
from tap_appsflyer_cohort.streams import CohortReportStream, RunLimits


class TokenRedactor(logging.Filter):
    """Blanks the API token out of every log line, whatever logger wrote it."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._pattern = re.compile(re.escape(token)) if len(token) >= 8 else None

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message (arguments merged in) when it holds the token."""
        if self._pattern is not None:
            message = record.getMessage()
            if self._pattern.search(message):
                record.msg = self._pattern.sub("[redacted]", message)
                record.args = None
        return True


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

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Check reports before the JSON schema, whose errors name neither report nor field."""
        if raise_errors:
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                parse_settings(self._config, for_sync=True)  # raises ReportConfigError
        return super()._validate_config(raise_errors=raise_errors)

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
    def run_limits(self) -> RunLimits:
        """What the API teaches during this run (window size, horizon), shared."""
        return RunLimits(self.settings.max_window_days)

    @cached_property
    def executor(self) -> ThreadPoolExecutor:
        """Worker threads for requests in flight; emission stays ordered."""
        return ThreadPoolExecutor(
            max_workers=self.settings.max_requests_in_flight, thread_name_prefix="cohort-fetch"
        )

    @cached_property
    def prefetcher(self) -> Prefetcher:
        """Windows fetched ahead across every stream and app, handed back in order."""
        # Two windows per request slot keep the slots busy while one window is emitted.
        return Prefetcher(
            self.executor,
            max_ahead=2 * self.settings.max_requests_in_flight,
            budget=self.pacer,  # a window is sent only if the day's budget covers all its calls
        )

    def plan_all_streams(self) -> list[FetchJob]:
        """Every selected stream's windows, in the order the SDK syncs them."""
        jobs: list[FetchJob] = []
        for stream in self.streams.values():
            if isinstance(stream, CohortReportStream) and stream.selected:
                planned = stream.plan_partitions()
                if stream.ABORT_AT_RECORD_COUNT is not None:
                    # A dry run (--test) reads a few records: the first window is enough.
                    planned = planned[:1]
                jobs += planned
        calls = sum(len(job.stream.kpi_names()) for job in jobs)
        self.logger.info(
            "Plan for this run: %d window(s), %d call(s), about %.1f min at %d calls/min "
            "(%d calls left in today's budget)",
            len(jobs),
            calls,
            self.pacer.minutes_for(calls),
            self.settings.requests_per_minute,
            self.pacer.remaining_today,
        )
        return jobs

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session with a pool as large as the requests in flight."""
        session = requests.Session()
        size = self.settings.max_requests_in_flight
        adapter = HTTPAdapter(pool_connections=size, pool_maxsize=size)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

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
                limits=self.run_limits,
                prefetcher=self.prefetcher,
                plan_all=self.plan_all_streams,
            )
            for report in self.settings.reports
        ]

    def run_sync(self) -> None:
        """Sync every stream; stop with one clear line on errors a user must act on.

        A 404 app fails alone (the others sync) and makes the run exit non-zero at the
        end. Every fully emitted window already wrote its STATE, so a rerun resumes.
        """
        try:
            self.sync_all()
        except (
            FatalAPIError,
            RetriableAPIError,
            ResponseShapeError,
            BudgetExhaustedError,
            requests.RequestException,
        ) as exc:
            self.logger.error("Sync stopped: %s", exc)
            raise SystemExit(1) from None
        finally:
            self.pacer.stop()
            self.executor.shutdown(wait=False, cancel_futures=True)
            if isinstance(self.message_writer, RecordBufferedWriter):
                self.message_writer.close()
        failed = self.run_limits.failed
        if failed:
            self.logger.error(
                "Sync finished with %d app partition(s) failed; see the errors above", len(failed)
            )
            raise SystemExit(1)
        self.logger.info("Sync finished: %d API call(s) made", self.pacer.total_calls)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
    ) -> None:
        """Run the tap from the command line (the SDK's flow, with ``run_sync``)."""
        super(Tap, cls).invoke(about=about, about_format=about_format)
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        tap = cls(
            config=config.config,
            state=None if state is None else load_json(state.read()),
            catalog=None if catalog is None else load_json(catalog.read()),
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        tap.run_sync()


__all__ = ["ConfigValidationError", "TapAppsFlyerCohort"]
