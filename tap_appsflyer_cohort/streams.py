"""One stream per configured report; one partition per app.

The stream asks the planner which windows to query, fetches each window once per KPI
(through the shared pacer, several requests in flight), merges the KPIs on the cohort
key, emits only what is complete, and records each fully emitted window in its own
ledger in the partition state (the SDK's bookmark alone cannot describe maturing data).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from datetime import date, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import backoff
import requests
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from singer_sdk import RESTStream
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_appsflyer_cohort import planner
from tap_appsflyer_cohort.clock import Clock
from tap_appsflyer_cohort.contract import API_PATH, HORIZON_DAYS, HORIZON_DAYS_STRICT
from tap_appsflyer_cohort.errors import (
    AppNotEnabledError,
    QueryRejectedError,
    RetriesExhaustedError,
    RowCapError,
    SingleDayCapError,
    TokenRejectedError,
)
from tap_appsflyer_cohort.output import RecordBufferedWriter, plain_output
from tap_appsflyer_cohort.pacer import BudgetExhaustedError, Pacer
from tap_appsflyer_cohort.prefetch import FetchJob, Prefetcher
from tap_appsflyer_cohort.prefetch import results as fetched
from tap_appsflyer_cohort.records import RecordBuilder
from tap_appsflyer_cohort.reports import Report, Settings
from tap_appsflyer_cohort.responses import CohortTable, ResponseShapeError, parse_csv, parse_json
from tap_appsflyer_cohort.schema import build_schema, key_properties

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.tap_base import Tap

LEDGER_KEY = "cohort_ledger"
#: Longest wait we accept from a Retry-After before calling it a daily limit.
MAX_RETRY_AFTER = 120.0
#: Total time one request may spend in retries (a full minute window, twice, and some).
MAX_RETRY_SECONDS = 300.0
_RANGE_WORDS = ("range", "days", "for key: to", "for key: from")
#: Of those, the ones that say the window is too long (not a bad or too old ``from``).
_HALVING_WORDS = ("range", "days", "for key: to")
#: Failures worth another try: 429, 5xx, timeouts, resets, cut or malformed answers.
_RETRIED = (
    ConnectionResetError,
    RetriableAPIError,
    ResponseShapeError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
#: The earliest possible "today" on Earth: used when an app's time zone is unknown, so an
#: incomplete cohort day is never taken for a complete one.
_EARLIEST_ZONE = timezone(timedelta(hours=-12))


class PartialDataShortfallError(Exception):
    """A partial-data answer lacked periods we need: fall back to complete-data windows."""


class RunLimits:
    """What the API taught us during this run, shared by all streams."""

    def __init__(self, max_window_days: int) -> None:
        self.max_window_days = max_window_days
        self.horizon_days = HORIZON_DAYS
        self.partial_fetch_ok = True
        self.failed: list[str] = []


class CohortReportStream(RESTStream[None]):
    """A cohort report: records keyed by app, LTV date, groupings (and period in long)."""

    http_method = "POST"
    path = API_PATH
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
        limits: RunLimits,
        prefetcher: Prefetcher,
        plan_all: Callable[[], Iterable[FetchJob]],
    ) -> None:
        self.report = report
        self.settings = settings
        self.pacer = pacer
        self.clock = clock
        self.limits = limits
        self._session = session
        self._plain_output: bool | None = None
        self.prefetcher = prefetcher
        self.plan_all = plan_all
        self._plans: dict[str, tuple[date, planner.Ledger]] = {}
        self._warned: set[str] = set()
        self._time_extracted = clock.now()
        super().__init__(tap=tap, name=report.name, schema=build_schema(report))
        self.primary_keys = key_properties(report)

    # ---- SDK hooks -----------------------------------------------------------------

    @property
    def url_base(self) -> str:
        """The API root (AppsFlyer, or the sandbox on loopback)."""
        return self.settings.api_url

    @property
    def partitions(self) -> list[dict[str, Any]]:
        """One partition per app: the API is single-app, and each app has its own state."""
        return [{"app_id": app_id} for app_id in self.settings.apps_for(self.report)]

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:
        """Bearer auth with the V2 token (never logged, never in state)."""
        return BearerTokenAuthenticator(token=self.settings.api_token)

    @property
    def http_headers(self) -> dict[str, str]:
        """The headers the vendor page marks mandatory."""
        return {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
        }

    @property
    def requests_session(self) -> requests.Session:
        """One keep-alive session for the whole tap, sized for the requests in flight."""
        return self._session

    @property
    def timeout(self) -> int:
        """Seconds to wait for an answer before retrying."""
        return int(self.settings.request_timeout)

    def _increment_stream_state(
        self, latest_record: Any, *, context: Context | None = None
    ) -> None:
        """Leave the bookmark to the ledger.

        The SDK would set it to the largest date seen in the run, which goes backwards
        when a run re-reads only older cohorts; ``_save_ledger`` writes it instead.
        """

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

    def generate_child_contexts(
        self, record: dict[str, Any], context: Context | None
    ) -> Iterable[Context | None]:
        """None: cohort streams have no children (the SDK would copy the context per record)."""
        return ()

    def validate_response(self, response: requests.Response) -> None:
        """Sort answers into retriable, fatal with advice, or good."""
        status = response.status_code
        if status == 200:
            if "html" in response.headers.get("Content-Type", "").lower():
                msg = "the API answered 200 with an HTML page instead of data"
                raise RetriableAPIError(msg, response)
            return
        if status == 401:
            raise TokenRejectedError
        if status == 404:
            raise AppNotEnabledError(self._app_of(response), self.name)
        if status == 429:
            retry_after = _seconds(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                raise _DailyLimitError(retry_after)  # whatever max_retries says
        if status == 429 or status >= 500:
            msg = f"{status} {response.reason} from the Cohort API"
            raise RetriableAPIError(msg, response)
        text = self._server_text(response)
        if status == 422 and ("too large" in text.lower() or "exceed" in text.lower()):
            raise RowCapError(text)
        if status == 422:
            raise _RejectedError(text)
        msg = f"{status} {response.reason} from the Cohort API: {text}"
        raise FatalAPIError(msg)

    def request_decorator(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Retry transient failures (429, 5xx, timeouts, resets, cut bodies), bounded."""
        decorator: Callable[..., Any] = backoff.on_exception(
            self.backoff_wait_generator,
            _RETRIED,
            max_tries=self.backoff_max_tries,
            max_time=MAX_RETRY_SECONDS,
            on_backoff=self.backoff_handler,
            on_giveup=self._log_giveup,
            jitter=self.backoff_jitter,
            raise_on_giveup=True,
            logger=None,  # our handlers log each retry and the give-up, in one line each
        )(func)
        return decorator

    def backoff_max_tries(self) -> int:
        """Tries per request: the first one plus ``max_retries``."""
        return self.settings.max_retries + 1

    def backoff_jitter(self, value: float) -> float:
        """Jitter is added by the wait generator itself, which knows the cause."""
        return value

    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        """Wait as the server asks on 429, else grow exponentially with jitter.

        ``backoff`` primes the generator, then sends each exception in (as with
        ``backoff_runtime``), so the wait can depend on the answer.
        """
        attempt = 0
        exception = yield 0.0
        while True:
            attempt += 1
            exception = yield self._retry_wait(exception, attempt)

    def backoff_handler(self, details: Mapping[str, Any]) -> None:
        """Log each retry in one line (no request object, so no header can leak)."""
        exc = details.get("exception")
        self.logger.warning(
            "Retrying %s after %s (try %d of %d, waiting %.1f s)",
            self.name,
            _describe(exc),
            details.get("tries", 0),
            self.backoff_max_tries(),
            details.get("wait", 0.0),
        )

    # ---- sync --------------------------------------------------------------------

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Plan, fetch and emit one app's windows; a 404 app fails alone."""
        assert context is not None
        app_id = context["app_id"]
        try:
            yield from self._sync_app(app_id, context)
        except AppNotEnabledError as exc:
            self.logger.error("%s", exc)
            self.limits.failed.append(str(exc))

    def app_today(self, app_id: str) -> date:
        """Today in the time zone the report's dates are in (decides completeness)."""
        now = self.clock.now()
        if not self.report.preferred_timezone:
            return now.date()
        zone = self.settings.timezone_of(app_id)
        if zone is None:
            self._warn_once(
                f"report '{self.name}' has preferred_timezone but app '{app_id}' has no "
                "app_timezone setting: taking today at UTC-12 so nothing incomplete is "
                "loaded as complete (set app_timezone for fresher data)"
            )
            return now.astimezone(_EARLIEST_ZONE).date()
        return now.astimezone(ZoneInfo(zone)).date()

    def load_ledger(self, context: Context) -> planner.Ledger:
        """The ledger from state; a missing, stale or broken one gives a larger plan."""
        state = self.get_context_state(context)
        saved = state.get(LEDGER_KEY)
        if isinstance(saved, dict):
            if saved.get("fingerprint") != self.report.fingerprint():
                self.logger.warning(
                    "Report '%s' changed since the last run for app '%s': reloading it from "
                    "start_date",
                    self.name,
                    context["app_id"],
                )
                return planner.Ledger()
            try:
                return planner.Ledger.from_state(saved.get("ledger"))
            except planner.LedgerError as exc:
                self.logger.warning("Ignoring unreadable ledger in state (%s)", exc)
        bookmark = state.get("replication_key_value")
        if isinstance(bookmark, str):
            try:
                return planner.Ledger.from_bookmark(
                    date.fromisoformat(bookmark[:10]), self.report.max_period
                )
            except ValueError:
                self.logger.warning("Ignoring unreadable bookmark %r in state", bookmark)
        return planner.Ledger()

    def plan_for(self, ledger: planner.Ledger, today: date) -> list[planner.Window]:
        """The windows this report needs today, given what its ledger says is loaded."""
        bounds = self._date_bounds(today)
        if bounds is None:
            return []
        first, last = bounds
        report = self.report
        return planner.plan(
            first_date=first,
            last_date=last,
            today=today,
            periods=report.periods,
            ledger=ledger,
            max_window_days=self.limits.max_window_days,
            restatement_days=report.restatement_days,
            partial_fetch=report.aggregation_type == "cumulative" and self.limits.partial_fetch_ok,
            refresh_incomplete=report.partial_data,
        )

    def _date_bounds(self, today: date) -> tuple[date, date] | None:
        start = self.settings.start_date or today - timedelta(days=30)
        first = max(start, today - timedelta(days=self.limits.horizon_days))
        last = today - timedelta(days=1)
        if self.report.granularity == "hour":
            # The API serves hours of the last 72 only: the two whole days before today.
            first = max(first, today - timedelta(days=2))
        if self.settings.end_date is not None:
            last = min(last, self.settings.end_date)
        return (first, last) if first <= last else None

    def plan_partitions(self) -> list[FetchJob]:
        """Plan every app of this stream (called once, when the sync starts) and log it."""
        jobs: list[FetchJob] = []
        for context in self.partitions:
            app_id = context["app_id"]
            today = self.app_today(app_id)
            ledger = self.load_ledger(context)
            windows = self.plan_for(ledger, today)
            self._plans[app_id] = (today, ledger)
            calls = len(windows) * len(self.report.kpis)
            self.logger.info(
                "Plan for report '%s', app '%s' (today %s): %d window(s) x %d KPI(s) = "
                "%d call(s), about %.1f min at %d calls/min",
                self.name,
                app_id,
                today,
                len(windows),
                len(self.report.kpis),
                calls,
                self.pacer.minutes_for(calls),
                self.settings.requests_per_minute,
            )
            jobs += [FetchJob(self, app_id, today, window) for window in windows]
        return jobs

    def kpi_names(self) -> tuple[str, ...]:
        """The report's KPIs: one call each per window."""
        return self.report.kpis

    def _sync_app(self, app_id: str, context: Context) -> Iterable[dict[str, Any]]:
        self.prefetcher.plan_once(self.plan_all)
        if app_id not in self._plans:  # synced on its own (not through the tap's sync_all)
            self.prefetcher.add(job for job in self.plan_partitions() if job.app_id == app_id)
        today, ledger = self._plans.pop(app_id)
        handler = _WindowHandler(self, app_id, today)
        try:
            while (job := self.prefetcher.take(self, app_id)) is not None:
                tables = handler.collect(job)
                if tables is None:
                    continue
                window = job.window
                served, records = self._emit(app_id, window, tables, today)
                # One extraction time per answer: when its data was read from the API.
                self._time_extracted = self.clock.now()
                yield from records
                if served:
                    ledger = ledger.record(served, today, self.report.max_period)
                    self._save_ledger(context, ledger)
                self.logger.info(
                    "Window done: report '%s', app '%s', %s..%s, %d row(s), %.1f s, "
                    "%d call(s) left today",
                    self.name,
                    app_id,
                    window.start,
                    window.end,
                    max((len(t.rows) for t in tables.values()), default=0),
                    handler.seconds,
                    self.pacer.remaining_today,
                )
        except GeneratorExit:
            # The SDK stopped this stream early (record limit of --test): drop all its apps.
            self.prefetcher.abandon(self)
            raise
        finally:
            self.prefetcher.abandon(self, app_id)

    def _save_ledger(self, context: Context, ledger: planner.Ledger) -> None:
        state = self.get_context_state(context)
        state[LEDGER_KEY] = {"fingerprint": self.report.fingerprint(), "ledger": ledger.to_state()}
        mark = ledger.high_water_mark()
        if mark is not None:
            state["replication_key"] = self.replication_key
            state["replication_key_value"] = mark.isoformat()
        self.state_manager.is_flushed = False
        self._write_state_message()

    # ---- fetching (runs in worker threads) ------------------------------------------

    def fetch(self, app_id: str, window: planner.Window, kpi: str, today: date) -> CohortTable:
        """One KPI for one window: paced, retried, parsed as it streams in."""
        start, end = window.start.isoformat(), window.end.isoformat()
        if self.report.granularity == "hour":
            start, end = f"{start} 00:00:00", f"{end} 23:59:59"  # hourly needs times
        body = self.report.query_body(kpi, start, end, partial=window.partial)
        request = self.build_prepared_request(
            method="POST",
            url=self.url_base + self.path.format(app_id=app_id),
            params={"format": self.settings.response_format},
            headers=self.http_headers,
            json=body,
        )
        oldest = planner.complete_periods(window.start, today, self.report.periods)
        newest = planner.complete_periods(window.end, today, self.report.periods)
        required = set(oldest if window.partial else newest)
        tries = 0

        def send_and_parse() -> CohortTable:
            nonlocal tries
            tries += 1
            # The first try spends the call the window was promised; retries spend spare ones.
            return self._send_and_parse(request, kpi, required, window.partial, tries == 1)

        started = time.monotonic()
        try:
            table: CohortTable = self.request_decorator(send_and_parse)()
        except _RejectedError as exc:
            raise QueryRejectedError(
                self.name, app_id, f"{window.start}..{window.end}", str(exc)
            ) from None
        except _RETRIED as exc:
            raise RetriesExhaustedError(
                self.name,
                app_id,
                f"{window.start}..{window.end}",
                self._cause(exc),
                tries,
                time.monotonic() - started,
            ) from None
        return table

    def _cause(self, exc: BaseException) -> str:
        """What went wrong with a call, in words (never the request, so never the token)."""
        if isinstance(exc, (RetriableAPIError, ResponseShapeError)):
            return str(exc)
        if isinstance(exc, requests.exceptions.Timeout):
            return f"no answer within request_timeout ({self.timeout} s)"
        if isinstance(exc, (ChunkedEncodingError, ContentDecodingError)):
            return "the answer was cut off in transit"
        return f"the connection failed ({type(exc).__name__})"

    def _send_and_parse(
        self,
        request: requests.PreparedRequest,
        kpi: str,
        required: set[int],
        partial: bool,
        reserved: bool = False,
    ) -> CohortTable:
        self.pacer.acquire(reserved=reserved)
        response = self.requests_session.send(
            self.authenticator(request), timeout=self.timeout, stream=True
        )
        try:
            self.validate_response(response)
            groupings = self.report.groupings
            if self.settings.response_format == "json":
                table = parse_json(response.content, kpi=kpi, groupings=groupings)
            else:
                chunks = response.iter_content(chunk_size=1 << 16)
                table = parse_csv(chunks, kpi=kpi, groupings=groupings)
        finally:
            response.close()
        if table.rows:
            missing = sorted(
                required - {p for f, p in table.columns if f in self.report.functions(kpi)}
            )
            if missing and partial:
                raise PartialDataShortfallError(str(missing))
            if missing:
                msg = (
                    f"the answer for KPI '{kpi}' lacks period(s) {missing}, which are complete "
                    "by this machine's date; if this persists, check that its clock is not "
                    "ahead of the API's (the API's 'today' decides completeness)"
                )
                raise ResponseShapeError(msg)
            columns = set(table.columns)
            lacking = sorted(
                {f for f in self.report.functions(kpi) for p in required if (f, p) not in columns}
            )
            if lacking:  # the period came, one function's column did not: never silent
                self._warn_once(
                    f"Report '{self.name}': the API's answers for KPI '{kpi}' lack "
                    f"{', '.join(lacking)} for some complete period(s): those values load as null"
                )
        return table

    def _retry_wait(self, exception: Any, attempt: int) -> float:
        response = getattr(exception, "response", None)
        if response is not None and response.status_code == 429:
            retry_after = _seconds(response.headers.get("Retry-After"))
            if retry_after is None:
                # No hint: the per-minute window frees within a minute.
                retry_after = 60.0 - (time.time() % 60.0) + random.uniform(0.5, 3.0)
            elif retry_after > MAX_RETRY_AFTER:
                raise _DailyLimitError(retry_after) from exception
            self.pacer.hold_off(retry_after)
            return retry_after + random.uniform(0.0, 0.5)
        return min(2.0**attempt, 60.0) * random.uniform(0.5, 1.0)

    def _log_giveup(self, details: Mapping[str, Any]) -> None:
        # A warning: the run's one ERROR line is the stop message, which says what to do.
        self.logger.warning(
            "Giving up on %s after %d tries over %.0f s: %s",
            self.name,
            details.get("tries", 0),
            details.get("elapsed", 0.0),
            _describe(details.get("exception")),
        )

    def _server_text(self, response: requests.Response) -> str:
        try:
            text = response.text
        except requests.RequestException:
            return ""
        try:
            payload = json.loads(text)
            if isinstance(payload, dict) and "error" in payload:
                text = str(payload["error"])
            elif isinstance(payload, str):
                text = payload
        except ValueError:
            pass
        return text.replace(self.settings.api_token, "[redacted]")[:500] if text else ""

    def _app_of(self, response: requests.Response) -> str:
        path = urlparse(response.url).path
        return path.rstrip("/").rsplit("/", 1)[-1]

    # ---- emission ------------------------------------------------------------------

    def _emit(
        self, app_id: str, window: planner.Window, tables: Mapping[str, CohortTable], today: date
    ) -> tuple[list[date], Iterator[dict[str, Any]]]:
        """The dates a window served, and their records (merged across KPIs)."""
        lacking = sorted({c for table in tables.values() for c in table.missing_columns})
        if lacking:
            self._warn_once(
                f"Report '{self.name}': the API's answers lack column(s) {', '.join(lacking)}: "
                "those values load as null"
            )
        unknown = sorted({c for table in tables.values() for c in table.unknown_columns})
        if unknown:
            self._warn_once(
                f"Report '{self.name}': ignoring column(s) the tap does not know in the API's "
                f"answers: {', '.join(unknown)}"
            )
        wanted = {d.isoformat() for d in window.dates}
        returned = {key[0][:10] for t in tables.values() for key, *_ in t.rows} & wanted
        if not returned:
            self.logger.warning(
                "No data for report '%s', app '%s', %s..%s: those dates stay due and are "
                "asked again next run",
                self.name,
                app_id,
                window.start,
                window.end,
            )
            return [], iter(())
        # Dates after the newest one returned may be data not yet processed: keep them due.
        newest_returned = max(returned)
        served = [d for d in window.dates if d.isoformat() <= newest_returned]
        report = self.report
        builder = RecordBuilder(
            report,
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
        return served, builder.build(tables, {d.isoformat() for d in served})

    # ---- helpers -------------------------------------------------------------------

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.logger.warning("%s", message)

    def halve_window_size(self, server_text: str, refused_days: int) -> bool:
        """After a range 422: half the refused size for the rest of the run (logged once).

        Windows already in flight were planned with the old size and come back refused
        too: they must not halve it again.
        """
        if refused_days <= 1:
            return False
        size = min(self.limits.max_window_days, refused_days // 2)
        if size < self.limits.max_window_days:
            self.limits.max_window_days = size
            self.logger.warning(
                "The API refused a %d-day range (%s): using %d-day windows for the rest of the run",
                refused_days,
                server_text,
                size,
            )
        return True


class _RejectedError(Exception):
    """A 422 seen inside the retry loop; turned into QueryRejectedError with context."""


class _DailyLimitError(Exception):
    """A 429 whose Retry-After says the day's quota is spent."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"the API's daily limit is reached (Retry-After {seconds:.0f} s)")


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _describe(exc: Any) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    return type(exc).__name__ if exc is not None else "an error"


class _WindowHandler:
    """Turns one app's fetched windows into tables, or into replacement windows.

    Row-cap splits, partial-data fallbacks and range rejections put new windows at the
    front of the queue, so emission stays oldest first and state never skips a window.
    """

    def __init__(self, stream: CohortReportStream, app_id: str, today: date) -> None:
        self.stream = stream
        self.app_id = app_id
        self.today = today
        self.seconds = 0.0
        self._started = time.monotonic()

    def _replace(self, windows: Iterable[planner.Window]) -> None:
        self.stream.prefetcher.put_front(
            [FetchJob(self.stream, self.app_id, self.today, window) for window in windows]
        )

    def collect(self, job: FetchJob) -> dict[str, CohortTable] | None:
        """The window's tables (None when other windows replace it)."""
        stream = self.stream
        window = job.window
        tables: dict[str, CohortTable] | None = None
        try:
            tables = fetched(job)
        except RowCapError:
            capped = True
        except PartialDataShortfallError as exc:
            stream.limits.partial_fetch_ok = False
            stream.logger.warning(
                "A partial-data answer lacked complete periods %s: asking for complete data "
                "only from now on",
                exc,
            )
            self._replace(
                planner.plan_windows(
                    window.dates,
                    today=self.today,
                    periods=stream.report.periods,
                    max_window_days=stream.limits.max_window_days,
                )
            )
            return None
        except QueryRejectedError as exc:
            range_words = any(word in exc.server_text.lower() for word in _RANGE_WORDS)
            if window.days > 1 and range_words and self._adapt_to_rejection(window, exc):
                return None
            raise
        except _DailyLimitError as exc:
            resume = stream.clock.now() + timedelta(seconds=exc.seconds)
            raise BudgetExhaustedError(
                stream.pacer.used_today, stream.pacer.daily_budget, resume, api_limit=True
            ) from None
        else:
            capped = any(len(t.rows) >= stream.settings.row_cap for t in tables.values())
        now = time.monotonic()
        self.seconds, self._started = now - self._started, now
        if not capped and tables is not None:
            return tables
        halves = planner.split_window(window)
        if halves is None:
            day = window.start.isoformat()
            if stream.settings.on_row_cap == "warn":
                stream.logger.warning(
                    "Skipping report '%s', app '%s', date %s: one day returns %d rows, the "
                    "API's cap (on_row_cap: warn); it is asked again next run",
                    stream.name,
                    self.app_id,
                    day,
                    stream.settings.row_cap,
                )
                return None
            raise SingleDayCapError(stream.name, self.app_id, day, stream.settings.row_cap)
        stream.logger.info(
            "Window %s..%s of report '%s', app '%s' hit the %d-row cap: discarded, asking "
            "for %s..%s and %s..%s",
            window.start,
            window.end,
            stream.name,
            self.app_id,
            stream.settings.row_cap,
            halves[0].start,
            halves[0].end,
            halves[1].start,
            halves[1].end,
        )
        self._replace(halves)
        return None

    def _adapt_to_rejection(self, window: planner.Window, exc: QueryRejectedError) -> bool:
        stream = self.stream
        text = exc.server_text.lower()
        horizon_start = self.today - timedelta(days=HORIZON_DAYS_STRICT)
        if "for key: from" in text and window.start < horizon_start:
            if stream.limits.horizon_days > HORIZON_DAYS_STRICT:
                stream.limits.horizon_days = HORIZON_DAYS_STRICT
                stream.logger.warning(
                    "The API refused %s as too old: keeping to the last %d days for the rest "
                    "of the run",
                    window.start,
                    HORIZON_DAYS_STRICT,
                )
            dates = [d for d in window.dates if d >= horizon_start]
        elif any(w in text for w in _HALVING_WORDS) and stream.halve_window_size(
            exc.server_text, window.days
        ):
            dates = list(window.dates)
        else:
            return False
        if dates:
            self._replace(
                planner.plan_windows(
                    dates,
                    today=self.today,
                    periods=stream.report.periods,
                    max_window_days=stream.limits.max_window_days,
                    partial_fetch=window.partial,
                )
            )
        return True


logging.getLogger(__name__).addHandler(logging.NullHandler())
