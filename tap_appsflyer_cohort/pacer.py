"""One pacer for the whole tap: calls stay under the account's per-minute limit and budget.

AppsFlyer counts calls per account, not per stream, and singer-sdk has no throttle of its
own, so every request of every stream and app asks this object for a slot first. Slots
are spaced evenly (a 2 % margin under the limit) rather than granted in bursts: even
spacing keeps any 60-second window of the server under the limit even when answers
arrive out of order, so a normal run never sees a 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from tap_appsflyer_cohort.errors import BudgetExhaustedError, RunStoppedError

#: Slots 2 % further apart than the limit: 1.2 s of slack per 60 s window, whatever the
#: rate. The vendor says only "60 calls per minute per account"; the sandbox models the
#: strictest reading (any 60 s sliding window), where evenly spaced calls need slack only
#: for send jitter (a call sent late narrows its gap to the call a window later). Kept at
#: 2 % on evidence (`python scripts/bench.py pacing`, README "Performance"): the pace is
#: 98 % of the limit, and a loopback run already used 0.2 s of the 1.2 s; a real network
#: (a reconnect, TLS) can use several times that, and 1 % more pace is not worth a 429.
SAFETY_MARGIN = 1.02
#: Where the state keeps the calls made so far on the current UTC day (for the budget).
USAGE_KEY = "api_calls"


def save_usage(state: Any, usage: dict[str, object]) -> None:
    """Put the day's call count beside the bookmarks (the SDK keeps unknown keys)."""
    state[USAGE_KEY] = usage


class Pacer:
    """Hands out request slots at most ``requests_per_minute`` a minute, thread-safe."""

    def __init__(
        self,
        requests_per_minute: int,
        daily_budget: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.interval = 60.0 / requests_per_minute * SAFETY_MARGIN
        self.daily_budget = daily_budget
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._day = now().date()
        self.used_today = 0
        self.total_calls = 0
        #: Calls made before this run on the same UTC day (from state): part of used_today.
        self.used_before = 0
        self._stopped = False
        #: Calls promised to windows already sent ahead but not made yet.
        self._reserved = 0

    def resume_usage(self, usage: object) -> None:
        """Count the calls earlier runs made today (``usage()`` as saved in state).

        The budget is per UTC day, not per run: a rerun after a stop must not start
        from a full budget.
        """
        if not isinstance(usage, dict):
            return
        calls = usage.get("calls")
        if usage.get("day") == self._day.isoformat() and isinstance(calls, int) and calls > 0:
            with self._lock:
                self.used_before = calls
                self.used_today = max(self.used_today, calls)

    def usage(self) -> dict[str, object]:
        """Calls made on the current UTC day (this run and earlier ones), for state."""
        with self._lock:
            self._roll_day()
            return {"day": self._day.isoformat(), "calls": self.used_today}

    @property
    def remaining_today(self) -> int:
        """Calls this run may still make today."""
        return max(self.daily_budget - self.used_today, 0)

    def resume_at(self) -> datetime:
        """When the budget refills: the next UTC midnight."""
        midnight = datetime.combine(self._day + timedelta(days=1), datetime.min.time())
        return midnight.replace(tzinfo=timezone.utc)

    def reserve(self, calls: int) -> None:
        """Promise a window all its calls, or raise BudgetExhaustedError.

        A window asked in part is spent for nothing, so it is not started at all.
        """
        with self._lock:
            self._roll_day()
            if self.used_today + self._reserved + calls > self.daily_budget:
                raise BudgetExhaustedError(
                    self.used_today, self.daily_budget, self.resume_at(), needed=calls
                )
            self._reserved += calls

    def release(self, calls: int) -> None:
        """Give back calls promised to windows that will not be sent."""
        with self._lock:
            self._reserved = max(self._reserved - calls, 0)

    def _roll_day(self) -> None:
        today = self._now().date()
        if today != self._day:
            self._day, self.used_today, self.used_before = today, 0, 0

    def acquire(self, *, reserved: bool = False) -> None:
        """Block until a call may be sent; raise BudgetExhaustedError when none is left.

        ``reserved``: the call was promised by ``reserve`` (a window's first tries); other
        calls (retries) may not spend what is promised to other windows.
        """
        with self._lock:
            if self._stopped:
                raise RunStoppedError
            self._roll_day()
            if reserved and self._reserved > 0:
                self._reserved -= 1
            elif self.used_today + self._reserved >= self.daily_budget:
                raise BudgetExhaustedError(self.used_today, self.daily_budget, self.resume_at())
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
            self.used_today += 1
            self.total_calls += 1
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        if self._stopped:
            raise RunStoppedError

    def stop(self) -> None:
        """Refuse every later call: after a fatal error, workers must not keep spending."""
        with self._lock:
            self._stopped = True

    def hold_off(self, seconds: float) -> None:
        """Push every later slot back (after a 429): the server's window is full."""
        with self._lock:
            self._next_slot = max(self._next_slot, self._clock() + seconds)

    def minutes_for(self, calls: int) -> float:
        """How long ``calls`` take at this pace, for the plan log."""
        return calls * self.interval / 60.0
