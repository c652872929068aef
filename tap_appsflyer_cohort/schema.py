"""A report's record schema, from its config alone (no API call, never drifting with data)."""

from __future__ import annotations

from typing import Any

from singer_sdk import typing as th

from tap_appsflyer_cohort.contract import PERCENT_FUNCTIONS
from tap_appsflyer_cohort.naming import output_column
from tap_appsflyer_cohort.reports import Report

_FUNCTION_TEXT = {
    "count": "number of events (per user when per_user is true)",
    "sum": "revenue sum (per user when per_user is true)",
    "unique_users": "unique users (per user when per_user is true)",
    "conversion_rate": "percent of cohort users who converted (85.3 means 85.3 %)",
    "rate": "percent (the API's unit: 85.3 means 85.3 %)",
}


def key_properties(report: Report) -> list[str]:
    """The cohort key: app, LTV date, every grouping, and the period in the long layout."""
    keys = ["app_id", "date", *report.dimension_groupings]
    if report.layout == "long":
        keys.append("period")
    return keys


def _kpi_description(report: Report, kpi: str, function: str, period: int | None) -> str:
    when = "on cohort day" if report.aggregation_type == "on_day" else "up to cohort day"
    day = "`period`" if period is None else str(period)
    unit = "percent" if function in PERCENT_FUNCTIONS else "value"
    return f"{kpi!r} {function} {when} {day}: {_FUNCTION_TEXT[function]} ({unit})."


def build_schema(report: Report) -> dict[str, Any]:
    """The JSON schema of a report's records (long or wide layout)."""
    date_type: type[th.JSONTypeHelper] = (
        th.DateTimeType if report.granularity == "hour" else th.DateType
    )
    properties: list[th.Property] = [
        th.Property("app_id", th.StringType, required=True, description="AppsFlyer app id."),
        th.Property(
            "date",
            date_type,
            required=True,
            description="LTV date: install, re-attribution or re-engagement date of the cohort.",
        ),
    ]
    properties += [
        th.Property(
            grouping,
            th.StringType,
            required=True,
            description=f'Grouping dimension `{grouping}` (blank values are "", never null).',
        )
        for grouping in report.dimension_groupings
    ]
    if report.layout == "long":
        properties.append(
            th.Property(
                "period",
                th.IntegerType,
                required=True,
                description="Cohort day: days after the LTV date (0 = the LTV date itself).",
            )
        )
    properties += [
        th.Property("users", th.IntegerType, description="Users in the cohort."),
        th.Property(
            "ecpi", th.NumberType, description="Effective cost per install (null without cost)."
        ),
        th.Property("cost", th.NumberType, description="Cost of the cohort."),
    ]
    for kpi in report.kpis:
        for function in report.functions(kpi):
            periods: list[int | None] = [None] if report.layout == "long" else list(report.periods)
            properties += [
                th.Property(
                    output_column(kpi, function, period),
                    th.NumberType,
                    description=_kpi_description(report, kpi, function, period),
                )
                for period in periods
            ]
    grouped = set(report.dimension_groupings)
    provenance = [
        (
            "cohort_type",
            th.StringType,
            "Conversion type queried: user_acquisition, retargeting or unified.",
        ),
        ("aggregation_type", th.StringType, "cumulative (up to the cohort day) or on_day."),
        ("per_user", th.BooleanType, "True when KPI values are divided by the cohort's users."),
        (
            "currency",
            th.StringType,
            "Currency of cost and revenue: USD, the app's currency (app_currency), or APP "
            "when preferred_currency is on and app_currency is not set.",
        ),
        (
            "timezone",
            th.StringType,
            "Time zone of the LTV dates: UTC, the app's time zone (app_timezone), or APP "
            "when preferred_timezone is on and app_timezone is not set.",
        ),
    ]
    properties += [
        th.Property(name, kind, description=text)
        for name, kind, text in provenance
        if name not in grouped
    ]
    if report.layout == "long" and report.partial_data:
        properties.append(
            th.Property(
                "is_complete",
                th.BooleanType,
                description=(
                    "False while the cohort day is today (values still change); "
                    "days not begun are not emitted."
                ),
            )
        )
    return th.PropertiesList(*properties).to_dict()
