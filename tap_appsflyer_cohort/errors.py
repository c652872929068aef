"""Errors that carry a message a user can act on (what happened, what to do)."""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError

TOKEN_ADVICE = (
    "use the V2 (JWT) API token from the AppsFlyer dashboard (more than 700 characters); "  # noqa: S105
    "tokens issued before 2026-03-10 were revoked"
)


class TokenRejectedError(FatalAPIError):
    """401: the token is malformed, old or unknown."""

    def __init__(self) -> None:
        super().__init__(f"401 Unauthorized: the API token was refused; {TOKEN_ADVICE}")


class AppNotEnabledError(FatalAPIError):
    """404: the app is not in the account or not enabled for the Cohort API."""

    def __init__(self, app_id: str, stream: str) -> None:
        self.app_id = app_id
        super().__init__(
            f"404 for app '{app_id}' (stream '{stream}'): the app id is wrong, or the app "
            "is not enabled for the Cohort API on your plan (ask your CSM), or the token is "
            "not the current one; the other apps still sync"
        )


class QueryRejectedError(FatalAPIError):
    """422: the API refused the query; the server's own text says why."""

    def __init__(self, stream: str, app_id: str, window: str, server_text: str) -> None:
        self.server_text = server_text
        super().__init__(
            f"422 for stream '{stream}', app '{app_id}', {window}: the API refused the query: "
            f"{server_text}"
        )


class RetriesExhaustedError(FatalAPIError):
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


class RowCapError(Exception):
    """The answer held the row cap (or the API said it is too large): it was cut."""


class SingleDayCapError(FatalAPIError):
    """Even one day returns a full page: only a narrower report can fix it."""

    def __init__(self, stream: str, app_id: str, day: str, cap: int) -> None:
        super().__init__(
            f"stream '{stream}', app '{app_id}', date {day}: one day alone returns {cap} rows, "
            "the API's cap, so rows are missing; raise min_cohort_size, drop a grouping or add "
            "a filter (or set on_row_cap: warn to skip such days)"
        )
