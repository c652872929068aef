"""The tap's settings: one field table gives the config schema and the checks.

Everything is checked before any API call, and a bad value stops the tap with one line
naming the setting (or report and field) and what is expected.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Literal, get_args
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.parser import isoparse
from singer_sdk import typing as th

from tap_appsflyer_cohort.columns import ReportColumns
from tap_appsflyer_cohort.contract import (
    DEFAULT_API_URL,
    MAX_RANGE_DAYS,
    REQUESTS_PER_DAY,
    REQUESTS_PER_MINUTE,
    ROW_CAP,
)
from tap_appsflyer_cohort.errors import ConfigError
from tap_appsflyer_cohort.fields import Field, field_named
from tap_appsflyer_cohort.report import (
    DEFAULT_REPORTS,
    REPORT_FIELDS,
    Report,
    app_id_list,
    parse_report,
)

OnRowCap = Literal["fail", "warn"]
ResponseFormat = Literal["csv", "json"]
ON_ROW_CAP: tuple[OnRowCap, ...] = get_args(OnRowCap)
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = get_args(ResponseFormat)
#: A date, or a date-time whose date part is used (Meltano often passes start_date so).
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: ``oneOf`` (the kinds are disjoint): singer-sdk 0.54 adds a bare "null" to an
#: ``anyOf`` list, which is no schema, but a proper ``{"type": "null"}`` to a ``oneOf``.
_PER_APP = {
    "oneOf": [
        {"type": "string"},
        {"type": "object", "additionalProperties": {"type": "string"}},
    ]
}
_APP_SETTINGS = th.ArrayType(
    th.ObjectType(
        th.Property("app_id", th.StringType, required=True, description="The app's id."),
        th.Property("timezone", th.StringType, description="IANA time zone of the app."),
        th.Property("currency", th.StringType, description="3-letter currency of the app."),
        additional_properties=False,
    )
)
_REPORTS = th.ArrayType(
    th.ObjectType(*(f.to_property() for f in REPORT_FIELDS), additional_properties=False)
)

#: Every setting, once: the config schema and the checks come from here.
SETTINGS_FIELDS: tuple[Field, ...] = (
    Field(
        "api_token",
        "string",
        "AppsFlyer V2 API token (JWT, over 700 characters) of an account with Cohort API enabled.",
        required=True,
        secret=True,
    ),
    Field(
        "app_ids",
        "string_list",
        "App ids exactly as in the dashboard (iOS ids start with `id`). Each app is a "
        "partition of every stream. Required unless every report has its own app_ids.",
    ),
    Field(
        "start_date",
        "date",
        "First LTV (install) date to sync; the API keeps the last 730 days.",
        required=True,
    ),
    Field("end_date", "date", "Last LTV date to sync (default: yesterday)."),
    Field(
        "api_url",
        "string",
        "API root. https only, except loopback (the sandbox).",
        default=DEFAULT_API_URL,
    ),
    Field(
        "reports",
        "any",
        "Cohort reports, one stream each. Default: retention by media source and campaign, "
        "and revenue/ROAS by media source and country.",
        schema=_REPORTS.to_dict(),
    ),
    Field(
        "app_timezone",
        "any",
        "IANA time zone of every app (or, in a JSON config, an object app_id -> name); "
        "used for 'today' when a report has preferred_timezone. Per app: app_settings.",
        schema=_PER_APP,
    ),
    Field(
        "app_currency",
        "any",
        "Currency code of every app (or, in a JSON config, an object app_id -> code); "
        "written to the currency column when a report has preferred_currency. Per app: "
        "app_settings.",
        schema=_PER_APP,
    ),
    Field(
        "app_settings",
        "any",
        "Per-app time zone and currency: a list of {app_id, timezone, currency} (a list, "
        "so Android ids such as com.example.app survive Meltano's dotted keys).",
        schema=_APP_SETTINGS.to_dict(),
    ),
    Field(
        "max_window_days",
        "integer",
        "Largest date window per call (the API says 31 or 60); halved for the run if the "
        "API refuses a range.",
        default=MAX_RANGE_DAYS,
        minimum=1,
        maximum=366,
    ),
    Field(
        "requests_per_minute",
        "integer",
        "Calls per minute for the whole account (API limit: 60).",
        default=REQUESTS_PER_MINUTE,
        minimum=1,
        maximum=10**6,
    ),
    Field(
        "daily_request_budget",
        "integer",
        "Calls this tap may make per UTC day (API limit: 50,000); the run stops cleanly, "
        "state saved, when it is spent.",
        default=REQUESTS_PER_DAY,
        minimum=1,
        maximum=10**9,
    ),
    Field(
        "max_requests_in_flight",
        "integer",
        "Requests sent concurrently (within the per-minute pace).",
        default=8,
        minimum=1,
        maximum=64,
    ),
    Field(
        "request_timeout",
        "integer",
        "Seconds to wait for an answer.",
        default=300,
        minimum=1,
        maximum=3600,
    ),
    Field(
        "max_retries",
        "integer",
        "Retries per call on 429, 5xx, timeouts and cut answers (bounded to 5 min).",
        default=8,
        minimum=0,
        maximum=100,
    ),
    Field(
        "on_row_cap",
        "string",
        "When one day alone hits the row cap: fail the stream, or warn and skip that day.",
        default="fail",
        choices=ON_ROW_CAP,
    ),
    Field(
        "row_cap",
        "integer",
        "Rows per answer at which the API cuts (10,000); lower only for tests.",
        default=ROW_CAP,
        minimum=1,
        maximum=10**7,
    ),
    Field(
        "blank_value",
        "string",
        "Written for a blank grouping value (e.g. the campaign of organic installs); never "
        'null, since key columns are NOT NULL. Default "(none)": target-duckdb and '
        'pipelinewise-target-postgres load "" as NULL and their keys refuse it; set "" '
        "for targets that keep it (MeltanoLabs target-postgres, target-snowflake).",
        default="(none)",
    ),
    Field(
        "as_of",
        "string",
        "Demos and tests only: the moment (ISO 8601, UTC unless an offset is given) the tap "
        "takes for now, e.g. to run it 'a week ago' against a sandbox started with the same "
        "--today. Allowed only with a loopback api_url.",
    ),
    Field(
        "response_format",
        "string",
        "Transport: csv (default, best attested) or json (tolerant reader).",
        default="csv",
        choices=RESPONSE_FORMATS,
    ),
)

#: The tap's config JSON schema (``--about``, Meltano, the Hub).
CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    *(f.to_property() for f in SETTINGS_FIELDS)
).to_dict()


@dataclass(frozen=True)
class Settings:
    """Everything the tap reads from its config, checked (built by ``parse_settings``)."""

    api_token: str
    app_ids: tuple[str, ...]
    start_date: date | None
    end_date: date | None
    api_url: str
    reports: tuple[Report, ...]
    max_window_days: int
    requests_per_minute: int
    daily_request_budget: int
    request_timeout: float
    max_retries: int
    max_requests_in_flight: int
    response_format: ResponseFormat
    on_row_cap: OnRowCap
    row_cap: int
    blank_value: str
    app_timezones: Mapping[str, str]
    default_app_timezone: str | None
    app_currencies: Mapping[str, str]
    default_app_currency: str | None
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

    def currency_label(self, report: Report, app_id: str) -> str:
        """What a record says its money is in: the app's currency ("APP" when unknown) or USD."""
        if not report.preferred_currency:
            return "USD"
        return self.currency_of(app_id) or "APP"

    def timezone_label(self, report: Report, app_id: str) -> str:
        """What a record says its dates are in: the app's zone ("APP" when unknown) or UTC."""
        if not report.preferred_timezone:
            return "UTC"
        return self.timezone_of(app_id) or "APP"


def parse_date(value: Any, where: str) -> date:
    """A date, or the date part of a date-time (Meltano passes start_date so)."""
    if isinstance(value, date):
        return value
    return _iso_moment(value, where, "a date YYYY-MM-DD").date()


def _iso_moment(value: Any, where: str, expected: str) -> datetime:
    """An ISO 8601 date or date-time in the forms the settings take (``_DATE``)."""
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return isoparse(value.strip())
        except (ValueError, OverflowError):
            pass
    raise ConfigError(where, f"expected {expected}, got {value!r}")


def _parse_moment(value: Any, where: str) -> datetime:
    """An ISO 8601 date-time (UTC when no offset is given), or a date at this time of day."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.now(timezone.utc).time())
    else:
        moment = _iso_moment(value, where, "an ISO 8601 date-time")
        if len(value.strip()) == 10:  # a date alone: that day, at this time of day
            moment = datetime.combine(moment.date(), datetime.now(timezone.utc).time())
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, not for names that merely start so."""
    if host in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_api_url(url: Any) -> str:
    if not isinstance(url, str):
        raise ConfigError("setting 'api_url'", f"expected a URL, got {url!r}")
    try:
        parsed = urlparse(url)
        host = (parsed.hostname or "").lower()
    except ValueError:
        host = ""
    if not host or any(c.isspace() for c in url):
        raise ConfigError("setting 'api_url'", f"expected https://host, got {url!r}")
    if parsed.scheme == "https" or (parsed.scheme == "http" and is_loopback(host)):
        return url.rstrip("/")
    raise ConfigError(
        "setting 'api_url'", "must use https (plain http is allowed only on loopback)"
    )


def _per_app(value: Any, key: str, check: Any) -> tuple[dict[str, str], str | None]:
    if value is None:
        return {}, None
    if isinstance(value, str):
        return {}, check(value, f"setting '{key}'")
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return {app: check(v, f"setting '{key}.{app}'") for app, v in value.items()}, None
    raise ConfigError(f"setting '{key}'", "expected a string or an object app_id → value")


def _app_settings(
    value: Any, apps: set[str], timezones: dict[str, str], currencies: dict[str, str]
) -> None:
    """Merge ``app_settings`` entries into the per-app maps (they win over the maps)."""
    if value is None:
        return
    if not isinstance(value, list):
        raise ConfigError(
            "setting 'app_settings'", "expected a list of {app_id, timezone, currency}"
        )
    for index, entry in enumerate(value):
        where = f"setting 'app_settings[{index}]'"
        if not isinstance(entry, dict) or not isinstance(entry.get("app_id"), str):
            raise ConfigError(where, "expected an object with app_id, timezone, currency")
        unknown = sorted(set(entry) - {"app_id", "timezone", "currency"})
        if unknown:
            raise ConfigError(f"{where} field '{unknown[0]}'", "unknown field")
        app = entry["app_id"]
        if apps and app not in apps:
            raise ConfigError(where, f"app '{app}' is in no report's app_ids (a typo?)")
        if entry.get("timezone") is not None:
            timezones[app] = _timezone(entry["timezone"], f"{where} field 'timezone'")
        if entry.get("currency") is not None:
            currencies[app] = _currency(entry["currency"], f"{where} field 'currency'")


def _check_required(config: Mapping[str, Any]) -> None:
    """Name every missing required setting in one line (not one per run)."""

    def given(name: str) -> bool:
        value = config.get(name)
        return value not in (None, "", []) and not (isinstance(value, str) and not value.strip())

    missing = [name for name in ("api_token", "start_date") if not given(name)]
    reports = config.get("reports")
    every_report_has_apps = (
        isinstance(reports, list)
        and bool(reports)
        and all(isinstance(r, dict) and r.get("app_ids") for r in reports)
    )
    if not given("app_ids") and not every_report_has_apps:
        missing.insert(1, "app_ids")
    if missing:
        names = ", ".join(f"'{name}'" for name in missing)
        noun = "setting" if len(missing) == 1 else "settings"
        verb = "is" if len(missing) == 1 else "are"
        apps = " (or app_ids in every report)" if "app_ids" in missing else ""
        raise ConfigError(
            f"{noun} {names}",
            f"{verb} required{apps}; in Meltano: meltano config tap-appsflyer-cohort set "
            "<name> <value>, or TAP_APPSFLYER_COHORT_<NAME> in .env (the token always from "
            "the environment)",
        )


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
            raise ConfigError(where, "holds the API token: keep it in api_token only")


def _blank_value(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 100:
        raise ConfigError("setting 'blank_value'", "expected a string of at most 100 characters")
    return value


def _timezone(value: str, where: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "America"
        raise ConfigError(where, f"unknown IANA time zone {value!r}") from None
    return value


def _currency(value: str, where: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ConfigError(where, f"expected a 3-letter currency code, got {value!r}")
    return value


def _reports(config: Mapping[str, Any]) -> tuple[Report, ...]:
    raw_reports = config.get("reports") or list(DEFAULT_REPORTS)
    if not isinstance(raw_reports, list):
        raise ConfigError("setting 'reports'", "expected a list of report objects")
    reports = tuple(parse_report(raw, i) for i, raw in enumerate(raw_reports))
    names = [r.name for r in reports]
    for report in reports:
        if names.count(report.name) > 1:
            raise ConfigError(f"report '{report.name}' field 'name'", "two reports share this name")
        ReportColumns(report).check(f"report '{report.name}'")
    return reports


def parse_settings(config: Mapping[str, Any], *, for_sync: bool) -> Settings:
    """Check the whole config; ``for_sync`` also requires the token, apps and start date."""
    token = config.get("api_token") or ""
    if for_sync:
        _check_required(config)
    if isinstance(token, str) and len(token.strip()) >= 8:
        _check_token_only_in_api_token(config, token.strip())
    app_ids_raw = config.get("app_ids")
    if isinstance(app_ids_raw, str):
        app_ids_raw = [a.strip() for a in app_ids_raw.split(",") if a.strip()]
    app_ids: tuple[str, ...] = ()
    if app_ids_raw:
        app_ids = app_id_list(app_ids_raw, "setting 'app_ids'")
    start_raw = config.get("start_date")
    start = None if start_raw is None else parse_date(start_raw, "setting 'start_date'")
    end_raw = config.get("end_date")
    end = None if end_raw is None else parse_date(end_raw, "setting 'end_date'")
    if start and end and end < start:
        raise ConfigError("setting 'end_date'", "is before start_date")

    reports = _reports(config)
    for report in reports:
        apps = report.app_ids if report.app_ids is not None else app_ids
        if for_sync and not apps:
            raise ConfigError(
                f"report '{report.name}' field 'app_ids'",
                "no app to sync: set app_ids (tap or report)",
            )
    timezones, default_tz = _per_app(config.get("app_timezone"), "app_timezone", _timezone)
    currencies, default_currency = _per_app(config.get("app_currency"), "app_currency", _currency)
    every_app = {app for report in reports for app in (report.app_ids or app_ids)}
    _app_settings(config.get("app_settings"), every_app, timezones, currencies)
    api_url = _check_api_url(config.get("api_url", DEFAULT_API_URL))
    as_of = None
    if config.get("as_of") not in (None, ""):
        as_of = _parse_moment(config["as_of"], "setting 'as_of'")
        if not is_loopback((urlparse(api_url).hostname or "").lower()):
            raise ConfigError(
                "setting 'as_of'",
                "is for demos and tests against the sandbox (a loopback api_url) only: "
                "the real API's today is the real one",
            )

    def read(name: str) -> Any:
        return field_named(SETTINGS_FIELDS, name).read(config, "")

    return Settings(
        api_token=token if isinstance(token, str) else "",
        app_ids=app_ids,
        start_date=start,
        end_date=end,
        api_url=api_url,
        reports=reports,
        max_window_days=read("max_window_days"),
        requests_per_minute=read("requests_per_minute"),
        daily_request_budget=read("daily_request_budget"),
        request_timeout=float(read("request_timeout")),
        max_retries=read("max_retries"),
        max_requests_in_flight=read("max_requests_in_flight"),
        response_format=read("response_format"),
        on_row_cap=read("on_row_cap"),
        row_cap=read("row_cap"),
        blank_value=_blank_value(
            config.get("blank_value", field_named(SETTINGS_FIELDS, "blank_value").default)
        ),
        app_timezones=timezones,
        default_app_timezone=default_tz,
        app_currencies=currencies,
        default_app_currency=default_currency,
        as_of=as_of,
    )


def report_fields_markdown() -> str:
    """The fields of a report definition, as a Markdown table (``--about``, README)."""
    lines = [
        "## Report fields",
        "",
        "Each entry of `reports` is one stream (table).",
        "",
        "| Field | Required | Default | Description |",
        "|:------|:--------:|:-------:|:------------|",
    ]
    for entry in REPORT_FIELDS:
        default = "" if entry.default is None else json_text(entry.default)
        lines.append(f"| {entry.name} | {entry.required} | {default} | {entry.description} |")
    return "\n".join(lines)


def json_text(value: Any) -> str:
    """A default as the user would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
