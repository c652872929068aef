"""The Cohort API client: one query per KPI and window, paced, retried, parsed as it arrives.

Built on singer-sdk's ``RESTStream`` hooks (URL from ``path``, query parameters, JSON
payload, authenticator, ``validate_response``, the backoff hooks), so a report stream is
only partitions, planning and emission. ``fetch`` runs in worker threads: it builds its
own prepared request and never touches shared state but the pacer (thread-safe).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import backoff
import requests
import urllib3
from requests.exceptions import ChunkedEncodingError, ContentDecodingError
from singer_sdk import RESTStream
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.streams.rest import PageContext
from typing_extensions import override

from tap_appsflyer_cohort import planner
from tap_appsflyer_cohort.clock import Clock
from tap_appsflyer_cohort.columns import INTEGER_FUNCTIONS
from tap_appsflyer_cohort.contract import API_PATH, MAX_API_LAG_DAYS
from tap_appsflyer_cohort.errors import (
    AnswerError,
    ApiStatusError,
    AppNotEnabledError,
    DailyLimitReached,
    PartialDataShortfall,
    QueryRefused,
    QueryRejectedError,
    RetriesExhaustedError,
    RowCapReached,
    TokenRejectedError,
)
from tap_appsflyer_cohort.pacer import Pacer
from tap_appsflyer_cohort.report import Report
from tap_appsflyer_cohort.responses import CohortTable, check_periods, parse_csv, parse_json
from tap_appsflyer_cohort.settings import Settings

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.tap_base import Tap

#: Longest wait we accept from a Retry-After before calling it a daily limit.
MAX_RETRY_AFTER = 120.0
#: Total time one request may spend in retries (a full minute window, twice, and some).
MAX_RETRY_SECONDS = 300.0
#: A 422 that says the answer would be too large (rows), not some other excess.
_ROW_CAP_TEXT = re.compile(
    r"too (large|many rows|big)|row (cap|limit)|\b(rows?|results?)\b.*\b(exceed|limit|maximum)"
    r"|\b(exceed|limit|maximum)\w*\b.*\brows?\b|10,?000",
    re.IGNORECASE,
)
#: Failures worth another try: 429, 5xx, timeouts, resets, cut or malformed answers
#: (the SDK's own list, plus answers that came back incomplete with status 200).
RETRIED: tuple[type[Exception], ...] = (
    ConnectionResetError,
    RetriableAPIError,
    AnswerError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class TokenRedactor(logging.Filter):
    """Blanks the API token out of every log line, whatever logger wrote it."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._pattern = re.compile(re.escape(token)) if len(token) >= 8 else None

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message (arguments merged in) when it holds the token."""
        if self._pattern is not None:
            message = record.getMessage()
            if self._pattern.search(message):
                record.msg = self._pattern.sub("[redacted]", message)
                record.args = None
        return True


@dataclass(frozen=True)
class Query:
    """One call: a window of LTV dates and one KPI (the SDK's "page token")."""

    window: planner.Window
    kpi: str
    today: date


class CohortApiStream(RESTStream[Query]):
    """HTTP for one report: the request, its checks and its retries."""

    http_method = "POST"
    path = API_PATH

    def __init__(
        self,
        tap: Tap,
        report: Report,
        settings: Settings,
        schema: dict[str, Any],
        *,
        pacer: Pacer,
        clock: Clock,
        session: requests.Session,
    ) -> None:
        self.report = report
        self.settings = settings
        self.pacer = pacer
        self.clock = clock
        self._session = session
        self._warned: set[str] = set()
        super().__init__(tap=tap, name=report.name, schema=schema)

    # ---- the request ---------------------------------------------------------------

    @property
    @override
    def url_base(self) -> str:
        """The API root (AppsFlyer, or the sandbox on loopback)."""
        return self.settings.api_url

    @cached_property
    @override
    def authenticator(self) -> BearerTokenAuthenticator:
        """Bearer auth with the V2 token (never logged, never in state)."""
        return BearerTokenAuthenticator(token=self.settings.api_token)

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        """The headers the vendor page marks mandatory."""
        return {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
        }

    @property
    @override
    def requests_session(self) -> requests.Session:
        """One keep-alive session for the whole tap, sized for the requests in flight."""
        return self._session

    @property
    @override
    def timeout(self) -> int:
        """Seconds to wait for an answer before retrying."""
        return int(self.settings.request_timeout)

    @override
    def get_url_params(self, context: Context | None, next_page_token: Query | None) -> Any:
        """CSV (default) or JSON answers."""
        return {"format": self.settings.response_format}

    @override
    def prepare_request_payload(
        self, context: Context | None, next_page_token: Query | None
    ) -> dict[str, Any] | None:
        """The query body: the report's definition for one window and one KPI."""
        assert next_page_token is not None
        window = next_page_token.window
        start, end = window.start.isoformat(), window.end.isoformat()
        if self.report.granularity == "hour":
            start, end = f"{start} 00:00:00", f"{end} 23:59:59"  # hourly needs times
        return self.report.query_body(next_page_token.kpi, start, end, partial=window.partial)

    def _prepare(self, app_id: str, query: Query) -> requests.PreparedRequest:
        """The authenticated request (built here, so no shared session is touched)."""
        http = self.get_http_request(
            page=PageContext(stream_context={"app_id": app_id}, next_page_token=query)
        )
        request = requests.Request(
            method=http.method,
            url=http.url,
            params=http.encode_params(),
            headers=http.headers,
            json=http.data,
        ).prepare()
        authenticated: requests.PreparedRequest = self.authenticator(request)
        return authenticated

    # ---- one call, in a worker thread ----------------------------------------------

    def fetch(self, app_id: str, window: planner.Window, kpi: str, today: date) -> CohortTable:
        """One KPI for one window: paced, retried, parsed as it streams in."""
        query = Query(window, kpi, today)
        request = self._prepare(app_id, query)
        periods = self.report.periods
        oldest = planner.complete_periods(window.start, today, periods)
        newest = planner.complete_periods(window.end, today, periods)
        required = set(oldest if window.partial else newest)
        tries = 0

        def send_and_parse() -> CohortTable:
            nonlocal tries
            tries += 1
            # The first try spends the call the window was promised; retries spend spare ones.
            return self._send_and_parse(request, query, required, tries == 1)

        started = time.monotonic()
        try:
            table: CohortTable = self.request_decorator(send_and_parse)()
        except QueryRefused as exc:
            raise QueryRejectedError(
                self.name, app_id, f"{window.start}..{window.end}", exc.server_text
            ) from None
        except RETRIED as exc:
            raise RetriesExhaustedError(
                self.name,
                app_id,
                f"{window.start}..{window.end}",
                self._cause(exc),
                tries,
                time.monotonic() - started,
            ) from None
        return table

    def _send_and_parse(
        self,
        request: requests.PreparedRequest,
        query: Query,
        required: set[int],
        reserved: bool = False,
    ) -> CohortTable:
        kpi, window, today, partial = query.kpi, query.window, query.today, query.window.partial
        self.pacer.acquire(reserved=reserved)
        deadline = time.monotonic() + self.timeout
        response = self.requests_session.send(request, timeout=self.timeout, stream=True)
        try:
            self.validate_response(response)
            groupings = self.report.groupings
            hourly = self.report.granularity == "hour"
            chunks = _read_until(response, deadline, self.timeout)
            # Counts are integers, except divided per user.
            counts = frozenset() if self.report.per_user else INTEGER_FUNCTIONS
            if self.settings.response_format == "json":
                table = parse_json(
                    b"".join(chunks), kpi=kpi, groupings=groupings, hourly=hourly, counts=counts
                )
            else:
                charset = _declared_charset(response.headers.get("Content-Type", ""))
                table = parse_csv(
                    chunks,
                    kpi=kpi,
                    groupings=groupings,
                    hourly=hourly,
                    charset=charset,
                    counts=counts,
                )
        finally:
            response.close()
        if partial:
            _check_partial_is_current(table, window, today)
        coverage = check_periods(
            table, self.report.functions(kpi), required, self.report.periods, partial=partial
        )
        if coverage.covered_days is not None:
            lag = (today - window.end).days - coverage.covered_days
            if lag > MAX_API_LAG_DAYS:
                msg = (
                    f"the answer for KPI '{kpi}' covers {coverage.covered_days} cohort day(s) "
                    f"where this machine's date says {(today - window.end).days}: the API's "
                    f"days run at least {lag} days behind; check that this machine's clock is "
                    "not ahead of the API's (the API's 'today' decides completeness)"
                )
                raise AnswerError(msg)
        table.covered_days = coverage.covered_days
        if coverage.lacking_functions:  # the period came, one function's column did not
            self.warn_once(
                f"Report '{self.name}': the API's answers for KPI '{kpi}' lack "
                f"{', '.join(coverage.lacking_functions)} for some complete period(s): those "
                "values load as null"
            )
        return table

    def _cause(self, exc: BaseException) -> str:
        """What went wrong with a call, in words (never the request, so never the token)."""
        if isinstance(exc, (RetriableAPIError, AnswerError)):
            return str(exc)
        if isinstance(exc, requests.exceptions.Timeout):
            return f"no whole answer within request_timeout ({self.timeout} s)"
        if isinstance(exc, (ChunkedEncodingError, ContentDecodingError)):
            return "the answer was cut off in transit"
        return f"the connection failed ({type(exc).__name__})"

    # ---- answers -------------------------------------------------------------------

    @override
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
            raise AppNotEnabledError(_app_of(response), self.name)
        if status == 429:
            retry_after = retry_after_seconds(response)
            if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                raise DailyLimitReached(retry_after)  # whatever max_retries says
        if status == 429 or status >= 500:
            msg = f"{status} {response.reason} from the Cohort API"
            raise RetriableAPIError(msg, response)
        text = self.response_error_message(response)
        if status == 422 and _ROW_CAP_TEXT.search(text):
            raise RowCapReached(text)
        if status == 422:
            raise QueryRefused(text)
        msg = f"{status} {response.reason} from the Cohort API: {text}"
        raise ApiStatusError(msg)

    @override
    def response_error_message(self, response: requests.Response) -> str:
        """The server's own text (its ``error`` field when JSON), without the token."""
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

    # ---- retries, through the SDK's backoff hooks -----------------------------------

    @override
    def request_decorator(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """The SDK's retry decorator, bounded in time, logging each retry in one line."""
        decorator: Callable[..., Any] = backoff.on_exception(
            self.backoff_wait_generator,
            RETRIED,
            max_tries=self.backoff_max_tries,
            max_time=MAX_RETRY_SECONDS,
            on_backoff=self.backoff_handler,
            on_giveup=self._log_giveup,
            jitter=self.backoff_jitter,
            raise_on_giveup=True,
            logger=None,  # our handlers log each retry and the give-up, in one line each
        )(func)
        return decorator

    @override
    def backoff_max_tries(self) -> int:
        """Tries per request: the first one plus ``max_retries``."""
        return self.settings.max_retries + 1

    @override
    def backoff_jitter(self, value: float) -> float:
        """Jitter is added by the wait itself, which knows the cause."""
        return value

    @override
    def backoff_wait_generator(self) -> Generator[float, Any, None]:
        """Wait as the server asks on 429, else grow exponentially with jitter."""
        attempts = iter(range(1, 1 << 30))
        return self.backoff_runtime(value=lambda exc: self._retry_wait(exc, next(attempts)))

    @override
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

    def _retry_wait(self, exception: Any, attempt: int) -> float:
        response = getattr(exception, "response", None)
        if response is not None and response.status_code == 429:
            retry_after = retry_after_seconds(response)
            if retry_after is None:
                # No hint: the per-minute window frees within a minute.
                retry_after = 60.0 - (time.time() % 60.0) + random.uniform(0.5, 3.0)
            elif retry_after > MAX_RETRY_AFTER:
                raise DailyLimitReached(retry_after) from exception
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

    def warn_once(self, message: str) -> None:
        """Log a warning the first time only (answers repeat their quirks)."""
        if message not in self._warned:
            self._warned.add(message)
            self.logger.warning("%s", message)


def _check_partial_is_current(table: CohortTable, window: planner.Window, today: date) -> None:
    """A partial-data answer must reach yesterday when it was asked to, else the API lags.

    Partial data has no mark of completeness: the tap judges each period by its own
    clock, which is only right when the API's days keep up. A window ending yesterday
    whose answer has older dates but not yesterday says they do not: complete-data
    windows (which show the API's completeness in their columns) take over.
    """
    last = window.end.isoformat()
    if window.end != today - timedelta(days=1) or not table.rows:
        return
    if not any(key[0].startswith(last) for key, *_ in table.rows):
        raise PartialDataShortfall(f"no rows yet for {last}: the API's days lag this machine's")


def _app_of(response: requests.Response) -> str:
    return urlparse(response.url).path.rstrip("/").rsplit("/", 1)[-1]


def retry_after_seconds(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds: a number, or an HTTP date (counted from ``Date``)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        sent = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        sent = datetime.now(timezone.utc)
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=timezone.utc)
    return max((when - sent).total_seconds(), 0.0)


def _read_until(response: requests.Response, deadline: float, timeout: int) -> Iterator[bytes]:
    """The body as it arrives, cut off at ``deadline``: request_timeout bounds the whole call.

    ``read1`` returns what one read brings, so a server that trickles bytes cannot hold
    a call past the deadline (the socket timeout alone only bounds the silence between
    bytes).
    """
    raw = response.raw
    while True:
        if time.monotonic() > deadline:
            msg = f"the answer did not finish within request_timeout ({timeout} s)"
            raise requests.exceptions.ReadTimeout(msg)
        try:
            chunk = raw.read1(1 << 16, decode_content=True)
        except urllib3.exceptions.ProtocolError as exc:
            raise ChunkedEncodingError(exc) from None
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc) from None
        except urllib3.exceptions.DecodeError as exc:
            raise ContentDecodingError(exc) from None
        if not chunk:
            return
        yield chunk


def _declared_charset(content_type: str) -> str | None:
    """The ``charset=`` of a Content-Type header, if any."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"').strip()
    return None


def _describe(exc: Any) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    return type(exc).__name__ if exc is not None else "an error"
