"""Errors that stop an audience with a line a user can act on (what happened, what to do)."""

from __future__ import annotations


class AudienceSyncError(RuntimeError):
    """An audience could not be brought in step; the message says which and why."""


class RequestRefusedError(AudienceSyncError):
    """400: the API refused a batch; its own message says why."""

    def __init__(self, where: str, server_text: str) -> None:
        self.server_text = server_text
        super().__init__(f"400 for {where}: the API refused the batch: {server_text}")


class DeviceCapError(RequestRefusedError):
    """400 "Cannot process more than Y devices per request": the batch must be split."""

    def __init__(self, where: str, server_text: str, cap: int | None) -> None:
        self.cap = cap
        super().__init__(where, server_text)


class TokenRefusedError(AudienceSyncError):
    """401/403: the token is wrong, or the account has no Audiences (a premium feature)."""

    def __init__(self, status: int, where: str) -> None:
        super().__init__(
            f"{status} Forbidden for {where}: the API token was refused; use the account's "
            "V2 (JWT) API token from the AppsFlyer dashboard (Security center > AppsFlyer API "
            "tokens), and check that the account has AppsFlyer Audiences (a premium feature)"
        )


class UnexpectedAnswerError(AudienceSyncError):
    """A status the API does not document (404 from a wrong api_url, 405, ...)."""

    def __init__(self, status: int, where: str, server_text: str) -> None:
        super().__init__(
            f"{status} for {where}: unexpected answer ({server_text or 'no body'}); check "
            "api_url (the API root, e.g. https://hq1.appsflyer.com)"
        )


class RetriesExhaustedError(AudienceSyncError):
    """A call still failed after every retry."""

    def __init__(self, where: str, cause: str, tries: int, seconds: float) -> None:
        super().__init__(
            f"{cause}, for {where}, still failing after {tries} tries over {seconds:.0f} s; "
            "what was sent before is recorded, so the next run repairs the audience (if this "
            "keeps happening, lower requests_per_minute or raise max_retries)"
        )


class EmptyMirrorError(AudienceSyncError):
    """Mirror of an empty membership without a baseline: the API cannot empty an audience."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"{where}: the stream has no member, and mirror cannot empty an audience it has no "
            "record of (the API refuses an overwrite with no device: 'Device list cannot be "
            "empty'); the audience is left unchanged. Set membership_store (after one complete "
            "run it removes every member), or use mode: remove"
        )


class RemovalGuardError(AudienceSyncError):
    """Mirror would remove more of the audience than ``max_removal_percent`` allows."""

    def __init__(self, where: str, removals: int, members: int, limit: int) -> None:
        share = 100 * removals / members if members else 100.0
        super().__init__(
            f"{where}: mirror would remove {removals} of {members} members ({share:.1f} %), "
            f"more than max_removal_percent ({limit} %); nothing was sent. If the upstream "
            "table really shrank, raise max_removal_percent for one run; if the tap failed, "
            "fix it and run again"
        )
