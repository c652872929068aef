"""Request-body validation: turn a JSON body into a ``Query`` or a vendor-style 422.

The error text follows the one real message the vendor spec shows:
``Invalid value: days for key: granularity. Expected one of: hour, week, month, day``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tap_appsflyer_cohort.contract import (
    AGGREGATION_TYPES,
    COHORT_TYPES,
    DEFAULT_PERIODS,
    DIMENSION_VALUES,
    FILTER_DIMENSIONS,
    FILTER_ONLY_DIMENSIONS,
    GRANULARITIES,
    GROUPING_DIMENSIONS,
    HOURLY_WINDOW_HOURS,
    MAX_GROUPINGS,
    MAX_PERIOD,
    MIN_GROUPINGS,
    MIN_PERIOD,
    NOT_WITH_UNIFIED,
)

REQUIRED_FIELDS = ("cohort_type", "from", "to", "groupings", "kpis", "aggregation_type")
BOOLEAN_FIELDS = ("partial_data", "per_user", "preferred_currency", "preferred_timezone")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HOUR = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2})(?::(\d{2}))?$")


class QueryError(ValueError):
    """A request the API answers with 422; ``str()`` is the vendor-style message."""

    def __init__(self, value: object, key: str, expected: str) -> None:
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        super().__init__(f"Invalid value: {shown} for key: {key}. Expected one of: {expected}")
        self.key = key


@dataclass(frozen=True)
class Query:
    """A validated request body, with defaults filled in."""

    body: dict[str, Any]
    cohort_type: str
    start: datetime
    end: datetime
    granularity: str
    groupings: tuple[str, ...]
    kpi: str
    aggregation_type: str
    min_cohort_size: int
    partial_data: bool
    per_user: bool
    preferred_currency: bool
    preferred_timezone: bool
    #: Dimension filters (each a set of accepted values), without ``period``.
    filters: dict[str, frozenset[str]]
    periods: tuple[int, ...]
    #: The server's "now" in the query's time zone (UTC or the app's), naive.
    local_now: datetime

    @property
    def today(self) -> date:
        """T: today's date in the query's time zone; completeness counts up to it."""
        return self.local_now.date()

    @property
    def first_date(self) -> date:
        """The first LTV date of the window."""
        return self.start.date()

    @property
    def last_date(self) -> date:
        """The last LTV date of the window (completeness counts from it)."""
        return self.end.date()


@dataclass(frozen=True)
class Limits:
    """The server-side limits a body is checked against."""

    max_range_days: int
    horizon_days: int


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode the request body; anything but a JSON object is a 422."""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise QueryError(raw[:80].decode("utf-8", "replace"), "body", "a JSON object") from None
    if not isinstance(body, dict):
        raise QueryError(body, "body", "a JSON object")
    return body


def validate(body: dict[str, Any], limits: Limits, now: datetime, app_timezone: str) -> Query:
    """Check every field of ``body``; ``now`` is the server's aware UTC time."""
    for key in REQUIRED_FIELDS:
        if key not in body:
            raise QueryError(None, key, "a value (required field)")
    cohort_type = _enum(body, "cohort_type", COHORT_TYPES)
    aggregation_type = _enum(body, "aggregation_type", AGGREGATION_TYPES)
    granularity = _enum(body, "granularity", GRANULARITIES, default="day")
    flags = {key: _boolean(body, key) for key in BOOLEAN_FIELDS}
    zone = ZoneInfo(app_timezone if flags["preferred_timezone"] else "UTC")
    local_now = now.astimezone(zone).replace(tzinfo=None)
    start = _moment(body, "from", granularity)
    end = _moment(body, "to", granularity)
    _check_window(start, end, granularity, limits, local_now)
    groupings = _groupings(body.get("groupings"))
    kpi = _kpi(body.get("kpis"))
    min_cohort_size = body.get("min_cohort_size", 1)
    if type(min_cohort_size) is not int or min_cohort_size < 1:
        raise QueryError(min_cohort_size, "min_cohort_size", "an integer >= 1")
    if flags["partial_data"] and aggregation_type == "on_day":
        raise QueryError(True, "partial_data", "false (partial data needs cumulative)")
    if kpi in NOT_WITH_UNIFIED and cohort_type == "unified":
        raise QueryError(kpi, "kpis", "a KPI available with cohort_type unified")
    filters, periods = _filters(body.get("filters", {}))
    return Query(
        body=body,
        cohort_type=cohort_type,
        start=start,
        end=end,
        granularity=granularity,
        groupings=groupings,
        kpi=kpi,
        aggregation_type=aggregation_type,
        min_cohort_size=min_cohort_size,
        filters=filters,
        periods=periods,
        local_now=local_now,
        **flags,
    )


def _enum(body: dict[str, Any], key: str, allowed: tuple[str, ...], default: str = "") -> str:
    value = body.get(key, default)
    if value not in allowed:
        raise QueryError(value, key, ", ".join(allowed))
    return str(value)


def _boolean(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise QueryError(value, key, "true, false")
    return value


def _moment(body: dict[str, Any], key: str, granularity: str) -> datetime:
    """Parse ``from``/``to``: a date for day granularity, a date and time for hour."""
    value = body[key]
    text = value if isinstance(value, str) else ""
    try:
        if granularity == "day" and _DAY.match(text):
            return datetime.fromisoformat(text)
        match = _HOUR.match(text)
        if granularity == "hour" and match:
            day, hour, minute, second = match.groups()
            return datetime.fromisoformat(day).replace(
                hour=int(hour), minute=int(minute), second=int(second or 0)
            )
    except ValueError:
        raise QueryError(value, key, "a real calendar date") from None
    shape = "yyyy-mm-dd" if granularity == "day" else "yyyy-mm-dd hh:mm[:ss]"
    raise QueryError(value, key, f"a date formatted {shape}")


def _check_window(
    start: datetime, end: datetime, granularity: str, limits: Limits, local_now: datetime
) -> None:
    """Apply the order, range, horizon and hourly-window rules."""
    if start > end:
        raise QueryError(start.isoformat(" "), "from", "a date not after 'to'")
    if (end.date() - start.date()).days > limits.max_range_days:
        raise QueryError(
            end.date().isoformat(), "to", f"a date at most {limits.max_range_days} days after from"
        )
    earliest = local_now.date() - timedelta(days=limits.horizon_days)
    if start.date() < earliest:
        raise QueryError(start.date().isoformat(), "from", f"a date on or after {earliest}")
    if granularity == "hour":
        window_start = local_now - timedelta(hours=HOURLY_WINDOW_HOURS)
        if start < window_start:
            raise QueryError(
                start.isoformat(" "),
                "from",
                f"a time within the last {HOURLY_WINDOW_HOURS} hours (hour granularity)",
            )


def _groupings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not MIN_GROUPINGS <= len(value) <= MAX_GROUPINGS:
        raise QueryError(
            value, "groupings", f"a list of {MIN_GROUPINGS}-{MAX_GROUPINGS} dimensions"
        )
    for item in value:
        if item in FILTER_ONLY_DIMENSIONS or item not in GROUPING_DIMENSIONS:
            raise QueryError(item, "groupings", ", ".join(GROUPING_DIMENSIONS))
    if len(set(value)) != len(value):
        raise QueryError(value, "groupings", "distinct dimensions")
    return tuple(value)


def _kpi(value: object) -> str:
    if (
        not isinstance(value, list)
        or len(value) != 1
        or not isinstance(value[0], str)
        or not value[0]
    ):
        raise QueryError(value, "kpis", "a list of exactly one KPI or event name")
    return value[0]


def _filters(value: object) -> tuple[dict[str, frozenset[str]], tuple[int, ...]]:
    """Validate ``filters``; lists or the older single-value form are both accepted."""
    if not isinstance(value, dict):
        raise QueryError(value, "filters", "an object of dimension: [values]")
    dimensions: dict[str, frozenset[str]] = {}
    periods = DEFAULT_PERIODS
    for key, raw in value.items():
        if key == "period":
            periods = _periods(raw) or DEFAULT_PERIODS
            continue
        if key not in FILTER_DIMENSIONS:
            raise QueryError(key, "filters", ", ".join((*FILTER_DIMENSIONS, "period")))
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise QueryError(raw, key, "a list of strings")
        allowed = DIMENSION_VALUES.get(key)
        for item in items:
            if allowed is not None and item not in allowed:
                raise QueryError(item, key, ", ".join(allowed))
        if items:
            dimensions[key] = frozenset(items)
    return dimensions, periods


def _periods(raw: object) -> tuple[int, ...]:
    items = [raw] if type(raw) is int else raw
    if not isinstance(items, list):
        raise QueryError(raw, "period", f"a list of integers {MIN_PERIOD}-{MAX_PERIOD}")
    for item in items:
        if type(item) is not int or not MIN_PERIOD <= item <= MAX_PERIOD:
            raise QueryError(item, "period", f"integers {MIN_PERIOD}-{MAX_PERIOD}")
    return tuple(sorted(set(items)))
