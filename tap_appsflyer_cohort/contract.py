"""The AppsFlyer Cohort API contract, as far as it is known, in one place.

Both the tap and the sandbox import these facts so they can never disagree. Sources are
the vendor page and the contract notes in ``shared/reference``; each constant says how
sure it is: [V] vendor, [C] two or more independent callers, [I] our inference.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

API_PATH: Final = "/api/cohorts/v1/data/app/{app_id}"
DEFAULT_API_URL: Final = "https://hq1.appsflyer.com"

#: [V] Dimensions that may appear in ``groupings`` (OpenAPI enum).
GROUPING_DIMENSIONS: Final[tuple[str, ...]] = (
    "af_ad",
    "af_ad_id",
    "af_adset",
    "af_adset_id",
    "af_c_id",
    "af_channel",
    "af_keywords",
    "af_prt",
    "af_sub1",
    "attributed_touch_type",
    "c",
    "cohort_type",
    "date",
    "geo",
    "pid",
    "site_id",
)
#: [V] Filter-only dimensions (not allowed in ``groupings``).
FILTER_ONLY_DIMENSIONS: Final[tuple[str, ...]] = ("revenue_type",)
#: [V] ``date`` is a grouping only; the spec comments it out of the filters.
FILTER_DIMENSIONS: Final[tuple[str, ...]] = (
    tuple(d for d in GROUPING_DIMENSIONS if d != "date") + FILTER_ONLY_DIMENSIONS
)

#: [V] Closed value sets of some dimensions.
DIMENSION_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "cohort_type": ("user_acquisition", "retargeting", "unified"),
    "revenue_type": ("regular", "ad_monetization"),
    "attributed_touch_type": ("click", "impression", "TV", "pre-installed"),
}

CohortType = Literal["user_acquisition", "retargeting", "unified"]
AggregationType = Literal["cumulative", "on_day"]
Granularity = Literal["day", "hour"]
COHORT_TYPES: Final[tuple[CohortType, ...]] = get_args(CohortType)
AGGREGATION_TYPES: Final[tuple[AggregationType, ...]] = get_args(AggregationType)
GRANULARITIES: Final[tuple[Granularity, ...]] = get_args(Granularity)

MIN_GROUPINGS: Final = 1
MAX_GROUPINGS: Final = 7  # [V]
MIN_PERIOD: Final = 0
MAX_PERIOD: Final = 180  # [V]
#: [V] Periods returned when no ``period`` filter is sent: 0-30, 60, 90, 180.
DEFAULT_PERIODS: Final[tuple[int, ...]] = (*range(31), 60, 90, 180)

#: [V] Always returned, whatever the KPI.
ALWAYS_COLUMNS: Final[tuple[str, ...]] = ("users", "ecpi", "cost")

#: Built-in KPIs and their functions. Any other KPI name is an in-app event name.
#: [C] event and revenue stems; [W] roas; [I] roi, sessions, uninstalls.
BUILTIN_KPI_FUNCTIONS: Final[dict[str, tuple[str, ...]]] = {
    "revenue": ("count", "sum"),
    "roas": ("rate",),
    "roi": ("rate",),
    "sessions": ("count", "rate", "unique_users"),
    "uninstalls": ("count", "rate"),
}
#: [C] Functions of an in-app event KPI (e.g. ``af_purchase``).
EVENT_FUNCTIONS: Final[tuple[str, ...]] = ("count", "sum", "unique_users", "conversion_rate")
#: [V] Functions whose values are percentages.
PERCENT_FUNCTIONS: Final[frozenset[str]] = frozenset({"rate", "conversion_rate"})
ALL_FUNCTIONS: Final[tuple[str, ...]] = (
    "count",
    "sum",
    "unique_users",
    "conversion_rate",
    "rate",
)
#: [V] ``uninstalls`` is not available with ``cohort_type=unified``.
NOT_WITH_UNIFIED: Final[frozenset[str]] = frozenset({"uninstalls"})

#: [V] Limits. The page says both 31 and 60 days per query; production callers pull 60.
MAX_RANGE_DAYS: Final = 60
#: [V] Earliest date: 730 days before today (facts table) or 720 (``from`` row).
HORIZON_DAYS: Final = 730
HORIZON_DAYS_STRICT: Final = 720
ROW_CAP: Final = 10_000  # [V] "Queries return up to 10,000 rows"
REQUESTS_PER_MINUTE: Final = 60  # [V]
REQUESTS_PER_DAY: Final = 50_000  # [V]
HOURLY_WINDOW_HOURS: Final = 72  # [V]
#: [I] Days after which a cohort date's cost stops changing. The vendor: campaign cost is
#: pulled about every four hours, and a day's data appears at 00:01 app time; networks
#: restate cost for days after. We assume a week; reports whose periods end sooner are
#: re-read until then by default (``restatement_days``).
COST_SETTLING_DAYS: Final = 7
#: [I] The most the API's complete days may lag this machine's date and be taken for a
#: normal delay (data appears at 00:01 app time; processing can run late). More than
#: that is a clock problem, stopped with a hint.
MAX_API_LAG_DAYS: Final = 2
