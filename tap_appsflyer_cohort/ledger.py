"""What is loaded, per report and app: the ledger kept in each partition's state.

The SDK's bookmark (one date) cannot describe maturing data: a date loaded with days 0-6
must be asked again when day 7 completes. The ledger says, for every date, how many
complete days its loaded values cover, or that it is final. It is written after each
fully emitted window, so a killed run resumes from the last one.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

LEDGER_KEY = "cohort_ledger"

LEDGER_VERSION = 1
_EPOCH = date(1970, 1, 1)


class LedgerError(ValueError):
    """State that cannot be read as a ledger (hand-edited or from another version)."""


@dataclass(frozen=True)
class Ledger:
    """What is loaded for one report and app.

    ``final`` holds inclusive ranges of dates loaded with every requested period;
    ``elapsed`` maps each maturing date to the complete days its loaded values cover
    (its periods ``p < elapsed`` are loaded).
    """

    final: tuple[tuple[date, date], ...] = ()
    elapsed: Mapping[date, int] = field(default_factory=dict)

    def is_final(self, day: date) -> bool:
        """True when ``day`` is loaded with all its periods."""
        index = bisect.bisect_right(self.final, (day, date.max)) - 1
        return index >= 0 and self.final[index][0] <= day <= self.final[index][1]

    def loaded_days(self, day: date) -> int:
        """Complete days loaded for a date that is not final (0 = nothing loaded)."""
        return self.elapsed.get(day, 0)

    def high_water_mark(self) -> date | None:
        """The newest date loaded at all (the stream's bookmark)."""
        candidates = [r[1] for r in self.final[-1:]] + list(self.elapsed)
        return max(candidates) if candidates else None

    def record(
        self,
        served: Iterable[date],
        today: date,
        max_period: int,
        covered_days: int | None = None,
    ) -> Ledger:
        """The ledger after ``served`` dates were emitted with every period complete today.

        ``covered_days`` caps what the answers covered when the API's complete days lag
        today (periods below it came): such dates stay maturing, never final too early.
        """
        elapsed = dict(self.elapsed)
        finals = list(self.final)
        for day in served:
            days = (today - day).days
            if covered_days is not None:
                days = min(days, covered_days)
            if days > max_period:
                elapsed.pop(day, None)
                finals.append((day, day))
            else:
                elapsed[day] = max(days, elapsed.get(day, 0))
        return Ledger(final=_merge(finals), elapsed=elapsed)

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready form for the partition state."""
        return {
            "version": LEDGER_VERSION,
            "final": [[a.isoformat(), b.isoformat()] for a, b in self.final],
            "elapsed": {d.isoformat(): n for d, n in sorted(self.elapsed.items())},
        }

    @classmethod
    def from_state(cls, value: Any) -> Ledger:
        """Read a ledger back; raise LedgerError for anything malformed."""
        try:
            if not isinstance(value, dict) or value.get("version") != LEDGER_VERSION:
                msg = "unknown ledger version"
                raise LedgerError(msg)
            ranges = []
            for start, end in value.get("final", []):
                first, last = date.fromisoformat(start), date.fromisoformat(end)
                if last < first:
                    msg = "a final range ends before it starts"
                    raise LedgerError(msg)
                ranges.append((first, last))
            elapsed = {}
            for day, days in value.get("elapsed", {}).items():
                if isinstance(days, bool) or not isinstance(days, int) or days < 0:
                    msg = "elapsed days must be non-negative integers"
                    raise LedgerError(msg)
                elapsed[date.fromisoformat(day)] = days
        except LedgerError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise LedgerError(str(exc)) from exc
        return cls(final=_merge(ranges), elapsed=elapsed)

    @classmethod
    def from_bookmark(cls, bookmark: date, max_period: int) -> Ledger:
        """Trust a bare bookmark (older state, or one set by hand) as far as it can go.

        Dates old enough to have been final when the bookmark was written are taken as
        loaded; the maturity horizon before it is refreshed. Larger than needed, never wrong.
        """
        last_final = bookmark - timedelta(days=max_period + 1)
        if last_final < _EPOCH:
            return cls()
        return cls(final=((_EPOCH, last_final),))


def _merge(ranges: Iterable[tuple[date, date]]) -> tuple[tuple[date, date], ...]:
    merged: list[tuple[date, date]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + timedelta(days=1):
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def load_ledger(
    state: Mapping[str, Any],
    *,
    fingerprint: str,
    max_period: int,
    report_name: str,
    app_id: str,
    logger: logging.Logger,
) -> Ledger:
    """The ledger in a partition's state; a missing, stale or broken one gives a larger plan."""
    saved = state.get(LEDGER_KEY)
    if isinstance(saved, dict):
        if saved.get("fingerprint") != fingerprint:
            logger.warning(
                "Report '%s' changed since the last run for app '%s': reloading it from start_date",
                report_name,
                app_id,
            )
            return Ledger()
        try:
            return Ledger.from_state(saved.get("ledger"))
        except LedgerError as exc:
            logger.warning("Ignoring unreadable ledger in state (%s)", exc)
    bookmark = state.get("replication_key_value")
    if isinstance(bookmark, str):
        try:
            return Ledger.from_bookmark(date.fromisoformat(bookmark[:10]), max_period)
        except ValueError:
            logger.warning("Ignoring unreadable bookmark %r in state", bookmark)
    return Ledger()


def save_ledger(
    state: MutableMapping[str, Any], ledger: Ledger, *, fingerprint: str, replication_key: str
) -> None:
    """Write the ledger, and the bookmark it implies, into a partition's state."""
    state[LEDGER_KEY] = {"fingerprint": fingerprint, "ledger": ledger.to_state()}
    mark = ledger.high_water_mark()
    if mark is not None:
        state["replication_key"] = replication_key
        state["replication_key_value"] = mark.isoformat()
