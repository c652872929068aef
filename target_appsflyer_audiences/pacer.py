"""Evenly spaced request slots: the run stays under ``requests_per_minute``.

The API's limit is per account and unpublished; spacing calls evenly (not in bursts) keeps
every 60-second window under the limit, so a normal run never sees a 429. After a 429 every
later slot is pushed back by the wait the answer asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Two per cent under the limit, against clock differences with the server.
SAFETY_MARGIN = 1.02


class Pacer:
    """Hands out one slot at a time (the target sends its batches one after another)."""

    def __init__(
        self,
        requests_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / requests_per_minute * SAFETY_MARGIN
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0
        self.calls = 0

    def acquire(self) -> None:
        """Wait until the next call may be sent."""
        now = self._clock()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self.interval
        self.calls += 1
        if slot > now:
            self._sleep(slot - now)

    def hold_off(self, seconds: float) -> None:
        """Push every later slot back (after a 429)."""
        self._next_slot = max(self._next_slot, self._clock() + seconds)
