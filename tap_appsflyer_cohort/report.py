"""A cohort report as the user defines it: one stream, one API query per KPI and window.

The JSON schema catches types; this module also catches what a schema cannot say (8
groupings, ``partial_data`` with ``on_day``, a filter-only dimension used as a grouping)
and names the report and the field in one line.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from tap_appsflyer_cohort.contract import (
    AGGREGATION_TYPES,
    COHORT_TYPES,
    COST_SETTLING_DAYS,
    DEFAULT_PERIODS,
    DIMENSION_VALUES,
    FILTER_DIMENSIONS,
    FILTER_ONLY_DIMENSIONS,
    GRANULARITIES,
    GROUPING_DIMENSIONS,
    MAX_GROUPINGS,
    MAX_PERIOD,
    MIN_PERIOD,
    NOT_WITH_UNIFIED,
    AggregationType,
    CohortType,
    Granularity,
)
from tap_appsflyer_cohort.errors import ConfigError
from tap_appsflyer_cohort.fields import Field, field_named
from tap_appsflyer_cohort.naming import kpi_functions

Layout = Literal["long", "wide"]
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
_STREAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,61}")  # used with fullmatch ($ allows "\n")

#: Every field of a report definition, once: schema and checks come from here.
REPORT_FIELDS: tuple[Field, ...] = (
    Field(
        "name",
        "string",
        "Stream (table) name: lowercase letters, digits and _, unique.",
        required=True,
    ),
    Field(
        "groupings",
        "string_list",
        "Dimensions to group by (1-7 with `date`, which is always added).",
        default=["date"],
    ),
    Field(
        "kpis",
        "string_list",
        "sessions, revenue, roas, roi, uninstalls or in-app event names (case-sensitive); "
        "one API call per KPI per window, merged into one record.",
        required=True,
    ),
    Field(
        "cohort_type",
        "string",
        "user_acquisition (default), retargeting or unified.",
        default="user_acquisition",
        choices=COHORT_TYPES,
    ),
    Field(
        "aggregation_type",
        "string",
        "cumulative (default: values up to the cohort day) or on_day.",
        default="cumulative",
        choices=AGGREGATION_TYPES,
    ),
    Field(
        "filters",
        "object",
        "Dimension -> list of values (e.g. geo, pid, revenue_type); `period` -> list of "
        "cohort days 0-180 (default 0-30, 60, 90, 180).",
    ),
    Field("per_user", "boolean", "Divide KPI values by cohort users.", default=False),
    Field(
        "min_cohort_size",
        "integer",
        "Drop cohorts with fewer users (>= 1).",
        default=1,
        minimum=1,
        maximum=10**9,
    ),
    Field(
        "preferred_currency",
        "boolean",
        "Money in the app's currency instead of USD.",
        default=False,
    ),
    Field(
        "preferred_timezone",
        "boolean",
        "LTV dates in the app's time zone instead of UTC (set app_timezone).",
        default=False,
    ),
    Field(
        "partial_data",
        "boolean",
        "Also emit incomplete cohort days, flagged is_complete=false (cumulative, long "
        "layout only).",
        default=False,
    ),
    Field(
        "granularity",
        "string",
        "day (default) or hour (last 72 hours only).",
        default="day",
        choices=GRANULARITIES,
    ),
    Field(
        "layout",
        "string",
        "long (default: a row per cohort and period) or wide (a column per period).",
        default="long",
        choices=LAYOUTS,
    ),
    Field("app_ids", "string_list", "Apps of this report (default: the tap's app_ids)."),
    Field(
        "restatement_days",
        "integer",
        "Also re-read this many days of final cohorts every run (late cost, fraud "
        "adjustments). Default: enough that every date is read again once its cost has "
        "settled (a week after the date; 0 when the last period is 7 or more).",
        minimum=0,
        maximum=730,
    ),
)
_KNOWN_FIELDS = frozenset(f.name for f in REPORT_FIELDS)


@dataclass(frozen=True)
class Report:
    """One cohort report: one stream, one or more API queries per date window."""

    name: str
    groupings: tuple[str, ...]
    kpis: tuple[str, ...]
    cohort_type: CohortType = "user_acquisition"
    aggregation_type: AggregationType = "cumulative"
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    periods: tuple[int, ...] = DEFAULT_PERIODS
    periods_given: bool = False
    per_user: bool = False
    min_cohort_size: int = 1
    preferred_currency: bool = False
    preferred_timezone: bool = False
    partial_data: bool = False
    granularity: Granularity = "day"
    layout: Layout = "long"
    app_ids: tuple[str, ...] | None = None
    #: None: the default, ``settling_restatement_days``.
    restatement_days: int | None = None

    @property
    def dimension_groupings(self) -> tuple[str, ...]:
        """Groupings other than ``date`` (string key columns)."""
        return tuple(g for g in self.groupings if g != "date")

    @property
    def max_period(self) -> int:
        """The largest requested period: a cohort date is final once it is older."""
        return self.periods[-1]

    @property
    def restated_days(self) -> int:
        """Final days re-read every run: as set, else until cost has settled.

        Without them a date is read last when its last period completes, ``max_period + 1``
        days after it; with them, ``max_period + restatement_days`` days after. Its cost
        is final ``COST_SETTLING_DAYS + 1`` days after it.
        """
        if self.restatement_days is not None:
            return self.restatement_days
        if self.max_period >= COST_SETTLING_DAYS:
            return 0
        return COST_SETTLING_DAYS + 1 - self.max_period

    @property
    def uses_partial_fetch(self) -> bool:
        """Cumulative reports read incomplete days too and keep the complete ones."""
        return self.aggregation_type == "cumulative"

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


def string_list(value: Any, where: str) -> tuple[str, ...]:
    """A non-empty list of strings (a lone string counts as a list of one)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(where, f"expected a non-empty list of strings, got {value!r}")
    return tuple(value)


def app_id_list(value: Any, where: str) -> tuple[str, ...]:
    """App ids: a non-empty list of non-blank strings."""
    apps = string_list(value, where)
    if any(not app.strip() for app in apps):
        raise ConfigError(where, f"an app id is blank in {value!r}")
    return apps


def _parse_periods(value: Any, where: str) -> tuple[int, ...]:
    values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(values, list)
        or not values
        or not all(
            isinstance(v, int) and not isinstance(v, bool) and MIN_PERIOD <= v <= MAX_PERIOD
            for v in values
        )
    ):
        raise ConfigError(where, f"expected days from {MIN_PERIOD} to {MAX_PERIOD}, got {value!r}")
    return tuple(sorted(set(values)))


def _parse_filters(
    raw: Any, where: str
) -> tuple[dict[str, tuple[str, ...]], tuple[int, ...] | None]:
    if raw is None:
        return {}, None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} field 'filters'", f"expected an object, got {raw!r}")
    filters: dict[str, tuple[str, ...]] = {}
    periods: tuple[int, ...] | None = None
    for key, value in raw.items():
        field_where = f"{where} field 'filters.{key}'"
        if key == "period":
            periods = _parse_periods(value, field_where)
            continue
        if key not in FILTER_DIMENSIONS:
            raise ConfigError(
                field_where,
                f"unknown filter dimension; expected one of: {', '.join(FILTER_DIMENSIONS)}",
            )
        values = string_list(value, field_where)
        allowed = DIMENSION_VALUES.get(key)
        if allowed is not None:
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ConfigError(
                    field_where, f"{unknown[0]!r} is not one of: {', '.join(allowed)}"
                )
        filters[key] = values
    return filters, periods


def _parse_groupings(raw: Any, where: str) -> tuple[str, ...]:
    here = f"{where} field 'groupings'"
    if not isinstance(raw, list) or not all(isinstance(g, str) for g in raw):
        raise ConfigError(here, "expected a list of dimension names")
    for dimension in raw:
        if dimension in FILTER_ONLY_DIMENSIONS:
            raise ConfigError(here, f"'{dimension}' is a filter only, not a grouping")
        if dimension not in GROUPING_DIMENSIONS:
            raise ConfigError(
                here,
                f"unknown dimension '{dimension}'; "
                f"expected one of: {', '.join(GROUPING_DIMENSIONS)}",
            )
    if len(set(raw)) != len(raw):
        raise ConfigError(here, "a dimension is listed twice")
    groupings = ("date", *[g for g in raw if g != "date"])
    if len(groupings) > MAX_GROUPINGS:
        raise ConfigError(
            here,
            f"{len(groupings)} groupings (date included) but the API takes at most {MAX_GROUPINGS}",
        )
    return groupings


def _parse_kpis(raw: Any, where: str) -> tuple[str, ...]:
    here = f"{where} field 'kpis'"
    kpis = string_list(raw, here)
    if len(set(kpis)) != len(kpis):
        raise ConfigError(here, "a KPI is listed twice")
    if any(not kpi.strip() for kpi in kpis):
        raise ConfigError(here, "a KPI name is blank")
    return kpis


def _name(raw: Mapping[str, Any], index: int) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not _STREAM_NAME.fullmatch(name):
        raise ConfigError(
            f"reports[{index}] field 'name'",
            f"expected lowercase letters, digits and _ (starting with a letter, at most 62), "
            f"got {name!r}",
        )
    return name


def _check_combinations(report: Report, where: str) -> None:
    if report.partial_data and report.aggregation_type == "on_day":
        raise ConfigError(
            f"{where} field 'partial_data'", "the API allows partial data only with cumulative"
        )
    if report.partial_data and report.layout == "wide":
        raise ConfigError(
            f"{where} field 'partial_data'",
            "incomplete values need the long layout, which marks each row is_complete",
        )
    if report.cohort_type == "unified":
        for kpi in report.kpis:
            if kpi in NOT_WITH_UNIFIED:
                raise ConfigError(
                    f"{where} field 'kpis'", f"'{kpi}' is not available with cohort_type unified"
                )


def parse_report(raw: Any, index: int) -> Report:
    """Check one report definition; raise ConfigError naming report and field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"reports[{index}]", f"expected an object, got {raw!r}")
    name = _name(raw, index)
    where = f"report '{name}'"
    extra = sorted(set(raw) - _KNOWN_FIELDS)
    if extra:
        raise ConfigError(f"{where} field '{extra[0]}'", "unknown field")

    def read(field_name: str) -> Any:
        return field_named(REPORT_FIELDS, field_name).read(raw, where)

    filters, periods = _parse_filters(raw.get("filters"), where)
    app_ids = raw.get("app_ids")
    report = Report(
        name=name,
        groupings=_parse_groupings(read("groupings"), where),
        kpis=_parse_kpis(raw.get("kpis"), where),
        cohort_type=read("cohort_type"),
        aggregation_type=read("aggregation_type"),
        filters=filters,
        periods=periods or DEFAULT_PERIODS,
        periods_given=periods is not None,
        per_user=read("per_user"),
        min_cohort_size=read("min_cohort_size"),
        preferred_currency=read("preferred_currency"),
        preferred_timezone=read("preferred_timezone"),
        partial_data=read("partial_data"),
        granularity=read("granularity"),
        layout=read("layout"),
        app_ids=None if app_ids is None else app_id_list(app_ids, f"{where} field 'app_ids'"),
        restatement_days=read("restatement_days"),
    )
    _check_combinations(report, where)
    return report
