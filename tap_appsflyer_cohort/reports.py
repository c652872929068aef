"""The tap's settings and report definitions, parsed and checked before any API call.

The JSON schema (``settings_schema.py``) catches types; this module catches what a schema
cannot say (8 groupings, ``partial_data`` with ``on_day``, two reports with one name, a
column-name collision...) and names the report and the field in one line.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from singer_sdk.exceptions import ConfigValidationError

from tap_appsflyer_cohort.contract import (
    AGGREGATION_TYPES,
    COHORT_TYPES,
    DEFAULT_API_URL,
    DEFAULT_PERIODS,
    DIMENSION_VALUES,
    FILTER_DIMENSIONS,
    FILTER_ONLY_DIMENSIONS,
    GRANULARITIES,
    GROUPING_DIMENSIONS,
    MAX_GROUPINGS,
    MAX_PERIOD,
    MAX_RANGE_DAYS,
    MIN_PERIOD,
    NOT_WITH_UNIFIED,
    REQUESTS_PER_DAY,
    REQUESTS_PER_MINUTE,
    ROW_CAP,
)
from tap_appsflyer_cohort.naming import kpi_functions, output_column, safe_name

LAYOUTS = ("long", "wide")
ON_ROW_CAP = ("fail", "warn")
RESPONSE_FORMATS = ("csv", "json")
_STREAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")  # used with fullmatch ($ allows "\n")
#: A date, or a date-time whose date part is used (Meltano often passes start_date so).
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class ReportConfigError(ConfigValidationError):
    """A setting or report that cannot work; the message names where and why."""

    def __init__(self, where: str, problem: str) -> None:
        message = f"{where}: {problem}"
        super().__init__(message, errors=[message])


@dataclass(frozen=True)
class Report:
    """One cohort report: one stream, one or more API queries per date window."""

    name: str
    groupings: tuple[str, ...]
    kpis: tuple[str, ...]
    cohort_type: str = "user_acquisition"
    aggregation_type: str = "cumulative"
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    periods: tuple[int, ...] = DEFAULT_PERIODS
    periods_given: bool = False
    per_user: bool = False
    min_cohort_size: int = 1
    preferred_currency: bool = False
    preferred_timezone: bool = False
    partial_data: bool = False
    granularity: str = "day"
    layout: str = "long"
    app_ids: tuple[str, ...] | None = None
    restatement_days: int = 0

    @property
    def dimension_groupings(self) -> tuple[str, ...]:
        """Groupings other than ``date`` (string key columns)."""
        return tuple(g for g in self.groupings if g != "date")

    @property
    def max_period(self) -> int:
        """The largest requested period: a cohort date is final once it is older."""
        return self.periods[-1]

    def functions(self, kpi: str) -> tuple[str, ...]:
        """The functions the API returns for ``kpi`` under this report's aggregation."""
        return kpi_functions(kpi, self.aggregation_type)

    def query_body(self, kpi: str, start: str, end: str, *, partial: bool) -> dict[str, Any]:
        """The JSON body of one API query (one KPI, one window)."""
        filters: dict[str, Any] = {key: list(values) for key, values in self.filters.items()}
        if self.periods_given:
            filters["period"] = list(self.periods)
        body: dict[str, Any] = {
            "cohort_type": self.cohort_type,
            "from": start,
            "to": end,
            "groupings": list(self.groupings),
            "kpis": [kpi],
            "aggregation_type": self.aggregation_type,
            "min_cohort_size": self.min_cohort_size,
            "per_user": self.per_user,
            "preferred_currency": self.preferred_currency,
            "preferred_timezone": self.preferred_timezone,
            "partial_data": partial,
        }
        if filters:
            body["filters"] = filters
        if self.granularity != "day":
            body["granularity"] = self.granularity
        return body

    def fingerprint(self) -> str:
        """A short hash of everything that decides what the loaded values mean.

        Stored in state: when it changes, what was loaded before no longer says what is
        complete, so the planner starts from scratch for that report.
        """
        defining = {
            "groupings": self.groupings,
            "kpis": self.kpis,
            "cohort_type": self.cohort_type,
            "aggregation_type": self.aggregation_type,
            "filters": {k: list(v) for k, v in sorted(self.filters.items())},
            "periods": self.periods,
            "per_user": self.per_user,
            "min_cohort_size": self.min_cohort_size,
            "preferred_currency": self.preferred_currency,
            "preferred_timezone": self.preferred_timezone,
            "granularity": self.granularity,
            "layout": self.layout,
            "partial_data": self.partial_data,
        }
        text = json.dumps(defining, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Settings:
    """Everything the tap reads from its config, checked."""

    api_token: str
    app_ids: tuple[str, ...]
    start_date: date | None
    end_date: date | None
    api_url: str
    reports: tuple[Report, ...]
    max_window_days: int = MAX_RANGE_DAYS
    requests_per_minute: int = REQUESTS_PER_MINUTE
    daily_request_budget: int = REQUESTS_PER_DAY
    request_timeout: float = 300.0
    max_retries: int = 8
    max_requests_in_flight: int = 8
    response_format: str = "csv"
    on_row_cap: str = "fail"
    row_cap: int = ROW_CAP
    blank_value: str = ""
    app_timezones: Mapping[str, str] = field(default_factory=dict)
    default_app_timezone: str | None = None
    app_currencies: Mapping[str, str] = field(default_factory=dict)
    default_app_currency: str | None = None
    #: The moment the tap takes for "now" (demos and tests against the sandbox only).
    as_of: datetime | None = None

    def apps_for(self, report: Report) -> tuple[str, ...]:
        """The apps a report syncs: its own list, else the tap's."""
        return report.app_ids if report.app_ids is not None else self.app_ids

    def timezone_of(self, app_id: str) -> str | None:
        """The app's IANA time zone, if the user told us."""
        return self.app_timezones.get(app_id, self.default_app_timezone)

    def currency_of(self, app_id: str) -> str | None:
        """The app's currency code, if the user told us."""
        return self.app_currencies.get(app_id, self.default_app_currency)


#: Reports used when the config names none: what a newcomer wants to see first.
DEFAULT_REPORTS: tuple[dict[str, Any], ...] = (
    {
        "name": "retention_by_media_source",
        "groupings": ["date", "pid", "c"],
        "kpis": ["sessions"],
        "aggregation_type": "on_day",
        "filters": {"period": [0, 1, 3, 7, 14, 30]},
    },
    {
        "name": "revenue_by_media_source_geo",
        "groupings": ["date", "pid", "geo"],
        "kpis": ["revenue", "roas"],
        "aggregation_type": "cumulative",
        "filters": {"period": [0, 1, 3, 7, 14, 30, 60, 90, 180]},
    },
)


def _parse_date(value: Any, where: str) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ReportConfigError(where, f"expected a date YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ReportConfigError(where, f"expected a date YYYY-MM-DD, got {value!r}") from None


def _parse_moment(value: Any, where: str) -> datetime:
    """An ISO 8601 date-time (UTC when no offset is given), or a date at this time of day."""
    moment: datetime | None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.now(timezone.utc).time())
    elif isinstance(value, str) and _DATE.fullmatch(value.strip()):
        text = value.strip()
        try:
            if len(text) == 10:
                moment = datetime.combine(
                    date.fromisoformat(text), datetime.now(timezone.utc).time()
                )
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            moment = None
    else:
        moment = None
    if moment is None:
        raise ReportConfigError(where, f"expected an ISO 8601 date-time, got {value!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _bool(raw: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ReportConfigError(f"{where} field '{key}'", f"expected true or false, got {value!r}")
    return value


def _int(raw: Mapping[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ReportConfigError(
            f"{where} field '{key}'", f"expected an integer from {low} to {high}, got {value!r}"
        )
    return value


def _choice(
    raw: Mapping[str, Any], key: str, where: str, default: str, allowed: Sequence[str]
) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise ReportConfigError(
            f"{where} field '{key}'", f"{value!r} is not one of: {', '.join(allowed)}"
        )
    return str(value)


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ReportConfigError(where, f"expected a non-empty list of strings, got {value!r}")
    return tuple(value)


def _app_ids(value: Any, where: str) -> tuple[str, ...]:
    apps = _string_list(value, where)
    if any(not app.strip() for app in apps):
        raise ReportConfigError(where, f"an app id is blank in {value!r}")
    return apps


def _parse_filters(
    raw: Any, where: str
) -> tuple[dict[str, tuple[str, ...]], tuple[int, ...] | None]:
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        raise ReportConfigError(f"{where} field 'filters'", f"expected an object, got {raw!r}")
    filters: dict[str, tuple[str, ...]] = {}
    periods: tuple[int, ...] | None = None
    for key, value in raw.items():
        field_where = f"{where} field 'filters.{key}'"
        if key == "period":
            values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
            if (
                not isinstance(values, list)
                or not values
                or not all(
                    isinstance(v, int) and not isinstance(v, bool) and MIN_PERIOD <= v <= MAX_PERIOD
                    for v in values
                )
            ):
                raise ReportConfigError(
                    field_where, f"expected days from {MIN_PERIOD} to {MAX_PERIOD}, got {value!r}"
                )
            periods = tuple(sorted(set(values)))
            continue
        if key not in FILTER_DIMENSIONS:
            raise ReportConfigError(
                field_where,
                f"unknown filter dimension; expected one of: {', '.join(FILTER_DIMENSIONS)}",
            )
        values = _string_list(value, field_where)
        allowed = DIMENSION_VALUES.get(key)
        if allowed is not None:
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ReportConfigError(
                    field_where, f"{unknown[0]!r} is not one of: {', '.join(allowed)}"
                )
        filters[key] = values
    return filters, periods


def parse_report(raw: Any, index: int) -> Report:
    """Check one report definition; raise ReportConfigError naming report and field."""
    if not isinstance(raw, dict):
        raise ReportConfigError(f"reports[{index}]", f"expected an object, got {raw!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not _STREAM_NAME.fullmatch(name):
        raise ReportConfigError(
            f"reports[{index}] field 'name'",
            f"expected lowercase letters, digits and _ (starting with a letter, at most 63), "
            f"got {name!r}",
        )
    where = f"report '{name}'"
    known = {
        "name", "groupings", "kpis", "cohort_type", "aggregation_type", "filters", "per_user",
        "min_cohort_size", "preferred_currency", "preferred_timezone", "partial_data",
        "granularity", "layout", "app_ids", "restatement_days",
    }  # fmt: skip
    extra = sorted(set(raw) - known)
    if extra:
        raise ReportConfigError(f"{where} field '{extra[0]}'", "unknown field")

    groupings_raw = raw.get("groupings", ["date"])
    if not isinstance(groupings_raw, list) or not all(isinstance(g, str) for g in groupings_raw):
        raise ReportConfigError(f"{where} field 'groupings'", "expected a list of dimension names")
    for dimension in groupings_raw:
        if dimension in FILTER_ONLY_DIMENSIONS:
            raise ReportConfigError(
                f"{where} field 'groupings'", f"'{dimension}' is a filter only, not a grouping"
            )
        if dimension not in GROUPING_DIMENSIONS:
            raise ReportConfigError(
                f"{where} field 'groupings'",
                f"unknown dimension '{dimension}'; "
                f"expected one of: {', '.join(GROUPING_DIMENSIONS)}",
            )
    if len(set(groupings_raw)) != len(groupings_raw):
        raise ReportConfigError(f"{where} field 'groupings'", "a dimension is listed twice")
    groupings = ("date", *[g for g in groupings_raw if g != "date"])
    if len(groupings) > MAX_GROUPINGS:
        raise ReportConfigError(
            f"{where} field 'groupings'",
            f"{len(groupings)} groupings (date included) but the API takes at most {MAX_GROUPINGS}",
        )

    kpis = _string_list(raw.get("kpis"), f"{where} field 'kpis'")
    if len(set(kpis)) != len(kpis):
        raise ReportConfigError(f"{where} field 'kpis'", "a KPI is listed twice")
    if any(not kpi.strip() for kpi in kpis):
        raise ReportConfigError(f"{where} field 'kpis'", "a KPI name is blank")

    cohort_type = _choice(raw, "cohort_type", where, "user_acquisition", COHORT_TYPES)
    aggregation_type = _choice(raw, "aggregation_type", where, "cumulative", AGGREGATION_TYPES)
    granularity = _choice(raw, "granularity", where, "day", GRANULARITIES)
    layout = _choice(raw, "layout", where, "long", LAYOUTS)
    partial_data = _bool(raw, "partial_data", where, default=False)
    if partial_data and aggregation_type == "on_day":
        raise ReportConfigError(
            f"{where} field 'partial_data'", "the API allows partial data only with cumulative"
        )
    if partial_data and layout == "wide":
        raise ReportConfigError(
            f"{where} field 'partial_data'",
            "incomplete values need the long layout, which marks each row is_complete",
        )
    if cohort_type == "unified":
        for kpi in kpis:
            if kpi in NOT_WITH_UNIFIED:
                raise ReportConfigError(
                    f"{where} field 'kpis'", f"'{kpi}' is not available with cohort_type unified"
                )
    filters, periods = _parse_filters(raw.get("filters"), where)
    app_ids = raw.get("app_ids")
    report = Report(
        name=name,
        groupings=groupings,
        kpis=kpis,
        cohort_type=cohort_type,
        aggregation_type=aggregation_type,
        filters=filters,
        periods=periods or DEFAULT_PERIODS,
        periods_given=periods is not None,
        per_user=_bool(raw, "per_user", where, default=False),
        min_cohort_size=_int(raw, "min_cohort_size", where, 1, 1, 10**9),
        preferred_currency=_bool(raw, "preferred_currency", where, default=False),
        preferred_timezone=_bool(raw, "preferred_timezone", where, default=False),
        partial_data=partial_data,
        granularity=granularity,
        layout=layout,
        app_ids=None if app_ids is None else _app_ids(app_ids, f"{where} field 'app_ids'"),
        restatement_days=_int(raw, "restatement_days", where, 0, 0, 730),
    )
    _check_columns(report, where)
    return report


def output_columns(report: Report) -> list[str]:
    """Every column the report's records carry, in schema order."""
    columns = ["app_id", "date", *report.dimension_groupings]
    if report.layout == "long":
        columns.append("period")
    columns += ["users", "ecpi", "cost"]
    for kpi in report.kpis:
        for function in report.functions(kpi):
            if report.layout == "long":
                columns.append(output_column(kpi, function))
            else:
                columns += [output_column(kpi, function, p) for p in report.periods]
    columns += [c for c in provenance_columns(report) if c not in columns]
    if report.layout == "long" and report.partial_data:
        columns.append("is_complete")
    return columns


def provenance_columns(report: Report) -> tuple[str, ...]:
    """Columns that stamp the units and meaning of every record."""
    return ("cohort_type", "aggregation_type", "per_user", "currency", "timezone")


def _check_columns(report: Report, where: str) -> None:
    seen: dict[str, str] = {}
    fixed = {"app_id", "date", "period", "users", "ecpi", "cost", "is_complete"}
    fixed |= set(provenance_columns(report)) | set(report.dimension_groupings)
    for kpi in report.kpis:
        column = safe_name(kpi)
        for function in report.functions(kpi):
            name = output_column(kpi, function)
            if name in fixed:
                raise ReportConfigError(
                    f"{where} field 'kpis'", f"KPI '{kpi}' gives column '{name}', a reserved name"
                )
        if column in seen:
            raise ReportConfigError(
                f"{where} field 'kpis'",
                f"KPIs '{seen[column]}' and '{kpi}' both map to column prefix '{column}'",
            )
        seen[column] = kpi


def _check_api_url(url: Any) -> str:
    if not isinstance(url, str):
        raise ReportConfigError("setting 'api_url'", f"expected a URL, got {url!r}")
    try:
        parsed = urlparse(url)
        host = (parsed.hostname or "").lower()
    except ValueError:
        host = ""
    if not host or any(c.isspace() for c in url):
        raise ReportConfigError("setting 'api_url'", f"expected https://host, got {url!r}")
    if parsed.scheme == "https" or (parsed.scheme == "http" and _is_loopback(host)):
        return url.rstrip("/")
    raise ReportConfigError(
        "setting 'api_url'", "must use https (plain http is allowed only on loopback)"
    )


def _is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, not for names that merely start so."""
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _per_app(value: Any, key: str, check: Any) -> tuple[dict[str, str], str | None]:
    if value is None:
        return {}, None
    if isinstance(value, str):
        return {}, check(value, f"setting '{key}'")
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return {app: check(v, f"setting '{key}.{app}'") for app, v in value.items()}, None
    raise ReportConfigError(f"setting '{key}'", "expected a string or an object app_id → value")


def _check_token_only_in_api_token(config: Mapping[str, Any], token: str) -> None:
    """Refuse a token pasted into another setting: errors and logs would show that one."""

    def holds(value: Any) -> bool:
        if isinstance(value, str):
            return token in value
        if isinstance(value, Mapping):
            return any(holds(k) or holds(v) for k, v in value.items())
        if isinstance(value, list):
            return any(holds(v) for v in value)
        return False

    for key, value in config.items():
        if key != "api_token" and (holds(key) or holds(value)):
            where = "a setting's name" if holds(key) else f"setting '{key}'"
            raise ReportConfigError(where, "holds the API token: keep it in api_token only")


def _blank_value(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 100:
        raise ReportConfigError(
            "setting 'blank_value'", "expected a string of at most 100 characters"
        )
    return value


def _timezone(value: str, where: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "America"
        raise ReportConfigError(where, f"unknown IANA time zone {value!r}") from None
    return value


def _currency(value: str, where: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ReportConfigError(where, f"expected a 3-letter currency code, got {value!r}")
    return value


def parse_settings(config: Mapping[str, Any], *, for_sync: bool) -> Settings:
    """Check the whole config; ``for_sync`` also requires the token, apps and start date."""
    token = config.get("api_token") or ""
    if for_sync and not (isinstance(token, str) and token.strip()):
        raise ReportConfigError("setting 'api_token'", "is required")
    if isinstance(token, str) and len(token.strip()) >= 8:
        _check_token_only_in_api_token(config, token.strip())
    app_ids_raw = config.get("app_ids")
    if isinstance(app_ids_raw, str):
        app_ids_raw = [a.strip() for a in app_ids_raw.split(",") if a.strip()]
    app_ids: tuple[str, ...] = ()
    if app_ids_raw:
        app_ids = _app_ids(app_ids_raw, "setting 'app_ids'")
    start_raw = config.get("start_date")
    if for_sync and start_raw is None:
        raise ReportConfigError("setting 'start_date'", "is required")
    start = None if start_raw is None else _parse_date(start_raw, "setting 'start_date'")
    end_raw = config.get("end_date")
    end = None if end_raw is None else _parse_date(end_raw, "setting 'end_date'")
    if start and end and end < start:
        raise ReportConfigError("setting 'end_date'", "is before start_date")

    raw_reports = config.get("reports") or list(DEFAULT_REPORTS)
    if not isinstance(raw_reports, list):
        raise ReportConfigError("setting 'reports'", "expected a list of report objects")
    reports = tuple(parse_report(raw, i) for i, raw in enumerate(raw_reports))
    names = [r.name for r in reports]
    for name in names:
        if names.count(name) > 1:
            raise ReportConfigError(f"report '{name}' field 'name'", "two reports share this name")
    for report in reports:
        apps = report.app_ids if report.app_ids is not None else app_ids
        if for_sync and not apps:
            raise ReportConfigError(
                f"report '{report.name}' field 'app_ids'",
                "no app to sync: set app_ids (tap or report)",
            )
    timezones, default_tz = _per_app(config.get("app_timezone"), "app_timezone", _timezone)
    currencies, default_currency = _per_app(config.get("app_currency"), "app_currency", _currency)
    where = "setting"
    api_url = _check_api_url(config.get("api_url", DEFAULT_API_URL))
    as_of = None
    if config.get("as_of") not in (None, ""):
        as_of = _parse_moment(config["as_of"], "setting 'as_of'")
        if not _is_loopback((urlparse(api_url).hostname or "").lower()):
            raise ReportConfigError(
                "setting 'as_of'",
                "is for demos and tests against the sandbox (a loopback api_url) only: "
                "the real API's today is the real one",
            )
    return Settings(
        api_token=token if isinstance(token, str) else "",
        app_ids=app_ids,
        start_date=start,
        end_date=end,
        api_url=api_url,
        reports=reports,
        max_window_days=_int(config, "max_window_days", where, MAX_RANGE_DAYS, 1, 366),
        requests_per_minute=_int(
            config, "requests_per_minute", where, REQUESTS_PER_MINUTE, 1, 10**6
        ),
        daily_request_budget=_int(
            config, "daily_request_budget", where, REQUESTS_PER_DAY, 1, 10**9
        ),
        request_timeout=float(_int(config, "request_timeout", where, 300, 1, 3600)),
        max_retries=_int(config, "max_retries", where, 8, 0, 100),
        max_requests_in_flight=_int(config, "max_requests_in_flight", where, 8, 1, 64),
        response_format=_choice(config, "response_format", where, "csv", RESPONSE_FORMATS),
        on_row_cap=_choice(config, "on_row_cap", where, "fail", ON_ROW_CAP),
        row_cap=_int(config, "row_cap", where, ROW_CAP, 1, 10**7),
        blank_value=_blank_value(config.get("blank_value", "")),
        app_timezones=timezones,
        default_app_timezone=default_tz,
        app_currencies=currencies,
        default_app_currency=default_currency,
        as_of=as_of,
    )
