"""Per-token rate limits: a sliding 60-second window and a per-UTC-date budget."""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from datetime import date, datetime, timedelta

WINDOW_SECONDS = 60.0


class RateLimiter:
    """Counts accepted calls; rejected calls are never counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: defaultdict[str, deque[float]] = defaultdict(deque)
        self._daily: defaultdict[tuple[str, date], int] = defaultdict(int)

    def admit(
        self, token: str, per_minute: int, per_day: int, clock: float, now: datetime
    ) -> int | None:
        """Count the call and return None, or return the Retry-After seconds of a 429.

        ``clock`` is a monotonic reading (the minute window is real time); ``now`` is the
        server's simulated UTC time (the daily budget follows the simulated date).
        """
        with self._lock:
            recent = self._recent[token]
            while recent and recent[0] <= clock - WINDOW_SECONDS:
                recent.popleft()
            if len(recent) >= per_minute:
                oldest = recent[0] if recent else clock
                return max(1, math.ceil(oldest + WINDOW_SECONDS - clock))
            day_key = (token, now.date())
            if self._daily[day_key] >= per_day:
                midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
                seconds = (midnight.replace(tzinfo=now.tzinfo) - now).total_seconds()
                return max(1, math.ceil(seconds))
            recent.append(clock)
            self._daily[day_key] += 1
            return None
