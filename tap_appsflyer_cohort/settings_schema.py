"""The tap's config JSON schema (types and descriptions; semantics live in ``reports``)."""

from __future__ import annotations

from singer_sdk import typing as th

from tap_appsflyer_cohort.contract import (
    DEFAULT_API_URL,
    MAX_RANGE_DAYS,
    REQUESTS_PER_DAY,
    REQUESTS_PER_MINUTE,
    ROW_CAP,
)

_PER_APP = th.CustomType(
    {
        "anyOf": [
            {"type": "string"},
            {"type": "object", "additionalProperties": {"type": "string"}},
        ]
    }
)

REPORT_SCHEMA = th.ObjectType(
    th.Property(
        "name",
        th.StringType,
        required=True,
        description="Stream (table) name: lowercase letters, digits and _, unique.",
    ),
    th.Property(
        "groupings",
        th.ArrayType(th.StringType),
        description="Dimensions to group by (1-7 with `date`, which is always added).",
    ),
    th.Property(
        "kpis",
        th.ArrayType(th.StringType),
        required=True,
        description="sessions, revenue, roas, roi, uninstalls or in-app event names "
        "(case-sensitive); one API call per KPI per window, merged into one record.",
    ),
    th.Property(
        "cohort_type",
        th.StringType,
        description="user_acquisition (default), retargeting or unified.",
    ),
    th.Property(
        "aggregation_type",
        th.StringType,
        description="cumulative (default: values up to the cohort day) or on_day.",
    ),
    th.Property(
        "filters",
        th.ObjectType(additional_properties=True),
        description="Dimension -> list of values (e.g. geo, pid, revenue_type); "
        "`period` -> list of cohort days 0-180 (default 0-30, 60, 90, 180).",
    ),
    th.Property("per_user", th.BooleanType, description="Divide KPI values by cohort users."),
    th.Property(
        "min_cohort_size", th.IntegerType, description="Drop cohorts with fewer users (>= 1)."
    ),
    th.Property(
        "preferred_currency",
        th.BooleanType,
        description="Money in the app's currency instead of USD.",
    ),
    th.Property(
        "preferred_timezone",
        th.BooleanType,
        description="LTV dates in the app's time zone instead of UTC (set app_timezone).",
    ),
    th.Property(
        "partial_data",
        th.BooleanType,
        description="Also emit incomplete cohort days, flagged is_complete=false "
        "(cumulative, long layout only).",
    ),
    th.Property(
        "granularity",
        th.StringType,
        description="day (default) or hour (last 72 hours only).",
    ),
    th.Property(
        "layout",
        th.StringType,
        description="long (default: a row per cohort and period) or wide (a column per period).",
    ),
    th.Property(
        "app_ids",
        th.ArrayType(th.StringType),
        description="Apps of this report (default: the tap's app_ids).",
    ),
    th.Property(
        "restatement_days",
        th.IntegerType,
        description="Also re-read this many days of final cohorts every run (late cost, "
        "fraud adjustments). Default 0.",
    ),
    additional_properties=False,
)

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "api_token",
        th.StringType,
        required=True,
        secret=True,
        description="AppsFlyer V2 API token (JWT, over 700 characters) of an account with "
        "Cohort API enabled.",
    ),
    th.Property(
        "app_ids",
        th.ArrayType(th.StringType),
        required=True,
        description="App ids exactly as in the dashboard (iOS ids start with `id`). Each app "
        "is a partition of every stream.",
    ),
    th.Property(
        "start_date",
        th.DateType,
        required=True,
        description="First LTV (install) date to sync; the API keeps the last 730 days.",
    ),
    th.Property("end_date", th.DateType, description="Last LTV date to sync (default: yesterday)."),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        description="API root. https only, except loopback (the sandbox).",
    ),
    th.Property(
        "reports",
        th.ArrayType(REPORT_SCHEMA),
        description="Cohort reports, one stream each. Default: retention by media source "
        "and campaign, and revenue/ROAS by media source and country.",
    ),
    th.Property(
        "app_timezone",
        _PER_APP,
        description="IANA time zone of the apps (one name, or app_id -> name); used for "
        "'today' when a report has preferred_timezone.",
    ),
    th.Property(
        "app_currency",
        _PER_APP,
        description="Currency code of the apps (one code, or app_id -> code); written to "
        "the currency column when a report has preferred_currency.",
    ),
    th.Property(
        "max_window_days",
        th.IntegerType,
        default=MAX_RANGE_DAYS,
        description="Largest date window per call (the API says 31 or 60); halved for the "
        "run if the API refuses a range.",
    ),
    th.Property(
        "requests_per_minute",
        th.IntegerType,
        default=REQUESTS_PER_MINUTE,
        description="Calls per minute for the whole account (API limit: 60).",
    ),
    th.Property(
        "daily_request_budget",
        th.IntegerType,
        default=REQUESTS_PER_DAY,
        description="Calls this tap may make per UTC day (API limit: 50,000); the run stops "
        "cleanly, state saved, when it is spent.",
    ),
    th.Property(
        "max_requests_in_flight",
        th.IntegerType,
        default=8,
        description="Requests sent concurrently (within the per-minute pace).",
    ),
    th.Property(
        "request_timeout", th.IntegerType, default=300, description="Seconds to wait for an answer."
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=8,
        description="Retries per call on 429, 5xx, timeouts and cut answers (bounded to 5 min).",
    ),
    th.Property(
        "on_row_cap",
        th.StringType(allowed_values=["fail", "warn"]),
        default="fail",
        description="When one day alone hits the row cap: fail the stream, or warn and skip "
        "that day.",
    ),
    th.Property(
        "row_cap",
        th.IntegerType,
        default=ROW_CAP,
        description="Rows per answer at which the API cuts (10,000); lower only for tests.",
    ),
    th.Property(
        "blank_value",
        th.StringType,
        default="",
        description='Written for a blank grouping value (default ""; never null, since key '
        'columns are NOT NULL). Set e.g. "(none)" for targets that load "" as NULL, such as '
        "target-duckdb.",
    ),
    th.Property(
        "as_of",
        th.StringType,
        description="Demos and tests only: the moment (ISO 8601, UTC unless an offset is "
        "given) the tap takes for now, e.g. to run it 'a week ago' against a sandbox started "
        "with the same --today. Allowed only with a loopback api_url.",
    ),
    th.Property(
        "response_format",
        th.StringType(allowed_values=["csv", "json"]),
        default="csv",
        description="Transport: csv (default, best attested) or json (tolerant reader).",
    ),
).to_dict()
