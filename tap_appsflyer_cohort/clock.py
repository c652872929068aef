"""The tap's notion of "now": the real UTC clock, or a moment set by ``as_of``.

Completeness of a cohort day depends on "today", so a demo or a test that wants to show
maturing cohorts must be able to run the tap "a week ago" against a sandbox whose clock
says the same. ``as_of`` fixes the start of the run; the clock then ticks in real time,
so pacing, retries and time_extracted still see time pass.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

#: The earliest possible "today" on Earth: used when an app's time zone is unknown, so an
#: incomplete cohort day is never taken for a complete one.
EARLIEST_ZONE = timezone(timedelta(hours=-12))


class Clock:
    """UTC now, shifted to start at ``as_of`` when one is given."""

    def __init__(self, as_of: datetime | None = None) -> None:
        self._offset = timedelta(0)
        if as_of is not None:
            self._offset = as_of.astimezone(timezone.utc) - datetime.now(timezone.utc)
        self.shifted = as_of is not None

    def now(self) -> datetime:
        """The aware UTC datetime the tap takes for now."""
        return datetime.now(timezone.utc) + self._offset

    def today_in(self, zone: str | None) -> date:
        """Today in an IANA time zone; with no zone, at UTC-12 (the earliest date anywhere)."""
        now = self.now()
        return now.astimezone(ZoneInfo(zone) if zone is not None else EARLIEST_ZONE).date()
