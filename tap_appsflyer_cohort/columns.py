"""A report's warehouse columns, declared once: schema, keys, record templates, checks.

Every column a report's records carry is one ``Column`` here, in schema order; the JSON
schema, the key properties, the null templates the record builder starts from and the
name-collision check are all read from that one list.

Warehouse names are lowercase ``[a-z0-9_]``, at most 62 characters (PostgreSQL keeps 63;
pipelinewise-target-postgres rewrites 63 and more into initials; Snowflake upper-cases
unquoted names, which keeps lowercase ones unique). A KPI name that is too long is cut
and given a short hash of the original, so the mapping is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from singer_sdk import typing as th

from tap_appsflyer_cohort.contract import PERCENT_FUNCTIONS
from tap_appsflyer_cohort.errors import ConfigError
from tap_appsflyer_cohort.naming import MAX_IDENTIFIER_LENGTH, clean_name, name_digest, safe_name
from tap_appsflyer_cohort.report import Report

Role = Literal["key", "measure", "kpi", "provenance", "flag"]

_FUNCTION_TEXT = {
    "count": "number of events (per user when per_user is true)",
    "sum": "revenue sum (per user when per_user is true)",
    "unique_users": "unique users (per user when per_user is true)",
    "conversion_rate": "percent of cohort users who converted (85.3 means 85.3 %)",
    "rate": "percent (the API's unit: 85.3 means 85.3 %)",
}

#: Columns that stamp the units and meaning of every record (skipped when a grouping).
PROVENANCE: tuple[tuple[str, type[th.JSONTypeHelper[Any]], str], ...] = (
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
)


#: [I] Functions whose values are counts of events or users: integers, unless the report
#: divides them per user.
INTEGER_FUNCTIONS: frozenset[str] = frozenset({"count", "unique_users"})


def output_column(kpi: str, function: str, period: int | None = None) -> str:
    """The warehouse column of a KPI function (long layout) or of one period (wide).

    At most ``MAX_IDENTIFIER_LENGTH`` characters. A long KPI (event) name is cut and
    given a hash of its original, before the suffix, so every column of one event keeps
    a readable ``_<function>[_day_N]`` end: ``completed_onboarding_..._3f9a1c2e_count``.
    """
    suffix = f"_{function}" if period is None else f"_{function}_day_{period}"
    base = clean_name(kpi)
    if len(base) + len(suffix) <= MAX_IDENTIFIER_LENGTH:
        return base + suffix
    digest = name_digest(kpi)
    keep = MAX_IDENTIFIER_LENGTH - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('_')}_{digest}{suffix}"


@dataclass(frozen=True)
class Column:
    """One warehouse column of a report."""

    name: str
    role: Role
    kind: type[th.JSONTypeHelper[Any]]
    description: str
    required: bool = False
    #: For KPI columns: which KPI function (and, in the wide layout, period) feeds it.
    kpi: str | None = None
    function: str | None = None
    period: int | None = None


def _kpi_description(report: Report, kpi: str, function: str, period: int | None) -> str:
    when = "on cohort day" if report.aggregation_type == "on_day" else "up to cohort day"
    day = "`period`" if period is None else str(period)
    unit = "percent" if function in PERCENT_FUNCTIONS else "value"
    return f"{kpi!r} {function} {when} {day}: {_FUNCTION_TEXT[function]} ({unit})."


def _key_columns(report: Report, blank_value: str) -> list[Column]:
    columns = [
        Column("app_id", "key", th.StringType, "AppsFlyer app id.", required=True),
        Column(
            "date",
            "key",
            th.DateType,
            "LTV date: install, re-attribution or re-engagement date of the cohort.",
            required=True,
        ),
    ]
    if report.granularity == "hour":
        columns.append(
            Column(
                "hour",
                "key",
                th.IntegerType,
                "Hour of the LTV date (0-23) in the time zone the `timezone` column names.",
                required=True,
            )
        )
    blank = f'"{blank_value}"' if blank_value else '""'

    columns += [
        Column(
            grouping,
            "key",
            th.StringType,
            f"Grouping dimension `{grouping}` (blank values are {blank}, never null).",
            required=True,
        )
        for grouping in report.dimension_groupings
    ]
    if report.layout == "long":
        columns.append(
            Column(
                "period",
                "key",
                th.IntegerType,
                "Cohort day: days after the LTV date (0 = the LTV date itself).",
                required=True,
            )
        )
    return columns


def _kpi_columns(report: Report) -> list[Column]:
    periods: list[int | None] = [None] if report.layout == "long" else list(report.periods)
    return [
        Column(
            output_column(kpi, function, period),
            "kpi",
            th.IntegerType
            if function in INTEGER_FUNCTIONS and not report.per_user
            else th.NumberType,
            _kpi_description(report, kpi, function, period),
            kpi=kpi,
            function=function,
            period=period,
        )
        for kpi in report.kpis
        for function in report.functions(kpi)
        for period in periods
    ]


class ReportColumns:
    """Every column of one report's records, in schema order."""

    def __init__(self, report: Report, blank_value: str = "") -> None:
        self.report = report
        grouped = set(report.dimension_groupings)
        columns = _key_columns(report, blank_value)
        columns += [
            Column("users", "measure", th.IntegerType, "Users in the cohort."),
            Column(
                "ecpi",
                "measure",
                th.NumberType,
                "Effective cost per install (null without cost).",
            ),
            Column("cost", "measure", th.NumberType, "Cost of the cohort."),
        ]
        columns += _kpi_columns(report)
        columns += [
            Column(name, "provenance", kind, text)
            for name, kind, text in PROVENANCE
            if name not in grouped
        ]
        if report.layout == "long" and report.partial_data:
            columns.append(
                Column(
                    "is_complete",
                    "flag",
                    th.BooleanType,
                    "False while the cohort day is today (values still change); days not "
                    "begun are not emitted.",
                )
            )
        self.columns: tuple[Column, ...] = tuple(columns)

    @property
    def names(self) -> list[str]:
        """Column names in schema order."""
        return [column.name for column in self.columns]

    @property
    def key_properties(self) -> list[str]:
        """The cohort key: app, LTV date, every grouping, and the period in the long layout."""
        return [column.name for column in self.columns if column.role == "key"]

    @property
    def provenance_names(self) -> tuple[str, ...]:
        """The provenance columns this report carries (those not also groupings)."""
        return tuple(column.name for column in self.columns if column.role == "provenance")

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the report's records."""
        return th.PropertiesList(
            *(
                th.Property(
                    column.name,
                    column.kind,
                    required=column.required,
                    description=column.description,
                )
                for column in self.columns
            )
        ).to_dict()

    def null_kpis(self) -> dict[str, None]:
        """Every KPI column set to null: the template a record's KPI values fill in."""
        return {column.name: None for column in self.columns if column.role == "kpi"}

    def provenance(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The provenance values this report's records carry, from all known values."""
        return {name: values[name] for name in self.provenance_names}

    def check(self, where: str) -> None:
        """Refuse a report whose KPI columns collide with another column or each other."""
        prefixes: dict[str, str] = {}
        for kpi in self.report.kpis:
            seen = prefixes.setdefault(safe_name(kpi), kpi)
            if seen != kpi:
                raise ConfigError(
                    f"{where} field 'kpis'",
                    f"KPIs '{seen}' and '{kpi}' both map to column prefix '{safe_name(kpi)}'",
                )
        owner: dict[str, Column] = {}
        for column in self.columns:
            # Targets may fold case (Snowflake upper-cases): compare names folded.
            other = owner.setdefault(column.name.lower(), column)
            if other is column:
                continue
            named = column.kpi if column.kpi is not None else other.kpi
            if other.kpi is None or column.kpi is None:
                raise ConfigError(
                    f"{where} field 'kpis'",
                    f"KPI '{named}' gives column '{column.name}', a reserved name",
                )
            raise ConfigError(
                f"{where} field 'kpis'",
                f"KPIs '{other.kpi}' and '{column.kpi}' both map to column '{column.name}'",
            )
