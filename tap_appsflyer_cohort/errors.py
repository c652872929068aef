"""Every error the tap raises, under one base class.

``TapError`` is what a run stops on: its message says what happened and what to do, in
one line, and never holds the token. The tap's sync catches this one class. Subclasses
below ``WindowSignal`` are not failures of the run: the scheduler turns them into other
windows (split, re-planned) or into a clean stop.
"""

from __future__ import annotations

from datetime import datetime

from singer_sdk.exceptions import ConfigValidationError

TOKEN_ADVICE = (
    "use the V2 (JWT) API token from the AppsFlyer dashboard (more than 700 characters); "  # noqa: S105
    "tokens issued before 2026-03-10 were revoked"
)


class TapError(Exception):
    """A problem the user must act on; the message says what and what to do."""


class ConfigError(TapError, ConfigValidationError):
    """A setting or report that cannot work; the message names where and why."""

    def __init__(self, where: str, problem: str) -> None:
        message = f"{where}: {problem}"
        super().__init__(message, errors=[message])


class TokenRejectedError(TapError):
    """401: the token is malformed, old or unknown."""

    def __init__(self) -> None:
        super().__init__(f"401 Unauthorized: the API token was refused; {TOKEN_ADVICE}")


class AppNotEnabledError(TapError):
    """404: the app is not in the account or not enabled for the Cohort API."""

    def __init__(self, app_id: str, stream: str) -> None:
        self.app_id = app_id
        super().__init__(
            f"404 for app '{app_id}' (stream '{stream}'): the app id is wrong, or the app "
            "is not enabled for the Cohort API on your plan (ask your CSM), or the token is "
            "not the current one; the other apps still sync"
        )


class QueryRejectedError(TapError):
    """422: the API refused the query; the server's own text says why."""

    def __init__(self, stream: str, app_id: str, window: str, server_text: str) -> None:
        self.server_text = server_text
        super().__init__(
            f"422 for stream '{stream}', app '{app_id}', {window}: the API refused the query: "
            f"{server_text}"
        )


class ApiStatusError(TapError):
    """A status the API does not document for this endpoint (400, 403, 405...)."""


class RetriesExhaustedError(TapError):
    """A call still failed after every retry: the run stops; its saved state resumes it."""

    def __init__(
        self, stream: str, app_id: str, window: str, cause: str, tries: int, seconds: float
    ) -> None:
        super().__init__(
            f"{cause}, for stream '{stream}', app '{app_id}', {window}, still failing after "
            f"{tries} tries over {seconds:.0f} s; every window before it is saved in state: "
            "run the tap again to resume (if this keeps happening, raise max_retries or "
            "request_timeout)"
        )


class SingleDayCapError(TapError):
    """Even one day returns a full page: only a narrower report can fix it."""

    def __init__(self, stream: str, app_id: str, day: str, cap: int) -> None:
        super().__init__(
            f"stream '{stream}', app '{app_id}', date {day}: one day alone returns {cap} rows, "
            "the API's cap, so rows are missing; raise min_cohort_size, drop a grouping or add "
            "a filter (or set on_row_cap: warn to skip such days)"
        )


class BudgetExhaustedError(TapError):
    """The day's request budget is spent; the run must stop and resume later."""

    def __init__(
        self,
        used: int,
        budget: int,
        resume_at: datetime,
        needed: int = 0,
        *,
        api_limit: bool = False,
    ) -> None:
        self.resume_at = resume_at
        what = f"daily request budget spent ({used} of {budget} calls)"
        if needed:
            what = (
                f"daily request budget nearly spent ({used} of {budget} calls; the next "
                f"window needs {needed})"
            )
        advice = " (or raise daily_request_budget)"
        if api_limit:
            what, advice = f"the API's daily request limit is reached ({used} calls this run)", ""
        super().__init__(
            f"{what}; state is saved, run again after {resume_at:%Y-%m-%d %H:%M} UTC{advice}"
        )


class RunStoppedError(TapError):
    """The run is stopping: calls not yet sent are not sent (and not retried)."""

    def __init__(self) -> None:
        super().__init__("the run is stopping")


class AnswerError(TapError):
    """An answer that is not a whole cohort table: cut short, HTML, or missing columns.

    Retried like a 5xx: the next try usually brings the whole table.
    """


class WindowSignal(TapError):  # noqa: N818 (a signal to the scheduler, not an error)
    """Raised by a call; the scheduler answers it with other windows, not a stop."""


class RowCapReached(WindowSignal):
    """The answer held the row cap (or the API said it is too large): it was cut."""


class PartialDataShortfall(WindowSignal):
    """A partial-data answer lacked periods we need: fall back to complete-data windows."""


class QueryRefused(WindowSignal):
    """A 422 seen inside the retry loop; the scheduler adapts the window or stops."""

    def __init__(self, server_text: str) -> None:
        self.server_text = server_text
        super().__init__(server_text)


class DailyLimitReached(WindowSignal):
    """A 429 whose Retry-After says the day's quota is spent."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"the API's daily limit is reached (Retry-After {seconds:.0f} s)")
