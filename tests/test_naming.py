"""Column names safe in PostgreSQL and Snowflake; keys; blank dimensions as ""."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_appsflyer_cohort.columns import ReportColumns, output_column
from tap_appsflyer_cohort.contract import ALL_FUNCTIONS, BUILTIN_KPI_FUNCTIONS, EVENT_FUNCTIONS
from tap_appsflyer_cohort.errors import ConfigError
from tap_appsflyer_cohort.naming import KpiHeader, api_column, parse_kpi_header, safe_name
from tap_appsflyer_cohort.settings import parse_settings
from tests.cohort_truth import days, emitted, truth
from tests.conftest import SANDBOX_TODAY
from tests.helpers import run_tap, sandbox_config, utc_noon

SAFE = re.compile(r"^[a-z_][a-z0-9_]{0,61}$")
NOW = utc_noon(SANDBOX_TODAY)
YESTERDAY = SANDBOX_TODAY - timedelta(days=1)
LONG_EVENT = "Completed Onboarding Tutorial Step With Reward Bonus Multiplier Activated (v2)"


def _settings(reports: list[dict]) -> object:
    return parse_settings(
        {"api_token": "t", "app_ids": ["a"], "start_date": "2026-01-01", "reports": reports},
        for_sync=True,
    )


@given(st.text(max_size=120))
def test_safe_name_is_safe_and_deterministic(text: str) -> None:
    name = safe_name(text)
    assert SAFE.match(name), name
    assert safe_name(text) == name


@given(st.text(min_size=1, max_size=120), st.sampled_from(ALL_FUNCTIONS), st.integers(0, 180))
def test_output_columns_are_safe_for_any_event_name(kpi: str, function: str, period: int) -> None:
    for column in (output_column(kpi, function), output_column(kpi, function, period)):
        assert SAFE.match(column), column


@pytest.mark.parametrize(
    ("event", "column"),
    [
        ("Start Trial Auth", "start_trial_auth_count"),
        ("af_purchase", "af_purchase_count"),
        ("Level-Up!", "level_up_count"),
        ("2x Boost", "n_2x_boost_count"),
        ("Über Kauf", "uber_kauf_count"),
        # No ASCII letter left: a stable hash of the name, never an empty or shared name.
        ("購入", "k_234283a4_count"),
        ("課金", "k_" + hashlib.sha1("課金".encode()).hexdigest()[:8] + "_count"),
    ],
)
def test_event_names_map_deterministically(event: str, column: str) -> None:
    assert output_column(event, "count") == column


def test_long_event_names_are_cut_and_kept_apart() -> None:
    columns = {output_column(LONG_EVENT, f, p) for f in EVENT_FUNCTIONS for p in range(181)}
    assert len(columns) == len(EVENT_FUNCTIONS) * 181
    assert all(len(c) <= 63 and SAFE.match(c) for c in columns)
    other = LONG_EVENT.replace("(v2)", "(v3)")
    assert output_column(other, "count") != output_column(LONG_EVENT, "count")


def test_every_column_of_a_report_is_safe() -> None:
    report = {
        "name": "everything",
        "groupings": ["date", "pid", "af_c_id", "af_sub1"],
        "kpis": [*BUILTIN_KPI_FUNCTIONS, "Start Trial Auth", LONG_EVENT],
        "aggregation_type": "on_day",
        "layout": "wide",
    }
    (parsed,) = _settings([report]).reports  # type: ignore[attr-defined]
    columns = _expected_columns(parsed)
    assert len(columns) == len(set(columns))
    assert all(SAFE.match(c) for c in columns)
    assert list(ReportColumns(parsed).schema()["properties"]) == columns


@pytest.mark.parametrize(
    "kpis",
    [
        ["Start Trial Auth", "start_trial_auth"],
        ["Start Trial Auth", "start trial auth"],
        ["af-purchase", "af_purchase"],
    ],
)
def test_column_collision_is_a_config_error(kpis: list[str]) -> None:
    with pytest.raises(ConfigError, match=r"report 'r' field 'kpis'"):
        _settings([{"name": "r", "kpis": kpis}])


@pytest.mark.parametrize(
    ("header", "kpi", "parsed"),
    [
        ("Start Trial Auth_count_day_3", "Start Trial Auth", KpiHeader("count", 3)),
        ("start_trial_auth_count_day_3", "Start Trial Auth", KpiHeader("count", 3)),
        ("start trial auth_unique_users_day_0", "Start Trial Auth", KpiHeader("unique_users", 0)),
        ("af_purchase_conversion_rate_day_7", "af_purchase", KpiHeader("conversion_rate", 7)),
        ("sessions_rate_day_180", "sessions", KpiHeader("rate", 180)),
        ("revenue_sum_day_30", "revenue", KpiHeader("sum", 30)),
        ("revenue_sum_day_30", "roas", None),
        ("af_purchase_count_day_1", "af_purchase_extra", None),
        ("users", "sessions", None),
        ("sessions_median_day_1", "sessions", None),
    ],
)
def test_parse_kpi_header(header: str, kpi: str, parsed: KpiHeader | None) -> None:
    assert parse_kpi_header(header, kpi) == parsed


@given(st.sampled_from(["Start Trial Auth", "af_purchase", "sessions", LONG_EVENT]))
def test_parse_kpi_header_reads_what_api_column_writes(kpi: str) -> None:
    for function in ALL_FUNCTIONS:
        assert parse_kpi_header(api_column(kpi, function, 5), kpi) == KpiHeader(function, 5)


def _expected_columns(report) -> list[str]:
    """Every column a report's records carry, in schema order (an independent oracle)."""
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
    provenance = ["cohort_type", "aggregation_type", "per_user", "currency", "timezone"]
    columns += [c for c in provenance if c not in columns]
    if report.layout == "long" and report.partial_data:
        columns.append("is_complete")
    return columns


def key_properties(report) -> list[str]:
    return ReportColumns(report).key_properties


def build_schema(report) -> dict:
    return ReportColumns(report).schema()


def test_key_properties_and_replication_key() -> None:
    long, wide, hourly = _settings(  # type: ignore[attr-defined]
        [
            {"name": "l", "groupings": ["pid", "date", "geo"], "kpis": ["sessions"]},
            {"name": "w", "groupings": ["geo"], "kpis": ["sessions"], "layout": "wide"},
            {"name": "h", "kpis": ["sessions"], "granularity": "hour"},
        ]
    ).reports
    assert key_properties(long) == ["app_id", "date", "pid", "geo", "period"]
    assert key_properties(wide) == ["app_id", "date", "geo"]
    assert key_properties(hourly) == ["app_id", "date", "hour", "period"]
    assert build_schema(long)["properties"]["date"]["format"] == "date"
    # Hours as a date and an integer hour: no date-time, whose offsets targets disagree on.
    assert build_schema(hourly)["properties"]["date"]["format"] == "date"
    assert build_schema(hourly)["properties"]["hour"]["type"] == ["integer"]
    assert set(key_properties(long)) <= set(build_schema(long)["required"])


def test_event_kpi_with_spaces_over_http(sandbox) -> None:
    report = {
        "name": "trials",
        "groupings": ["date", "pid"],
        "kpis": ["Start Trial Auth"],
        "filters": {"period": [0, 1]},
    }
    config = sandbox_config(sandbox, start_date="2026-06-10", reports=[report])
    run = run_tap(config, now=NOW, expect_exit=0)
    records = run.records["trials"]
    assert any(r["start_trial_auth_count"] for r in records)
    expected = truth(sandbox, "id123456789", report, days(date(2026, 6, 10), YESTERDAY))
    assert emitted(records, report) == expected


def test_normalised_header_prefix_over_http(sandbox) -> None:
    # A server that writes the event name normalised in the header is still understood.
    report = {
        "name": "trials",
        "groupings": ["date", "pid"],
        "kpis": ["Start Trial Auth"],
        "filters": {"period": [0]},
    }
    config = sandbox_config(sandbox, start_date="2026-06-12", reports=[report])
    plain = run_tap(config, now=NOW, expect_exit=0)
    sandbox.script(
        "rename-column:Start Trial Auth_count_day_0=start_trial_auth_count_day_0",
    )
    renamed = run_tap(config, now=NOW, expect_exit=0)
    assert sandbox.request_log[-1].fault is not None
    assert renamed.records == plain.records


def test_blank_dimension_is_named_never_null(sandbox) -> None:
    report = {
        "name": "campaigns",
        "groupings": ["date", "pid", "c", "af_prt", "af_sub1"],
        "kpis": ["sessions"],
        "filters": {"period": [0]},
    }
    config = sandbox_config(sandbox, start_date="2026-06-13", reports=[report])
    kept = run_tap(config, now=NOW, expect_exit=0).records["campaigns"]
    del config["blank_value"]  # the default
    run = run_tap(config, now=NOW, expect_exit=0)
    records = run.records["campaigns"]
    assert {r["c"] for r in kept if r["pid"] == "Organic"} == {""}  # blank_value "" keeps ""
    organic = [r for r in records if r["pid"] == "Organic"]
    assert organic
    assert all(r["c"] == r["af_prt"] == r["af_sub1"] == "(none)" for r in organic)
    for record in records:
        assert all(
            record[k] is not None for k in ["app_id", "date", "pid", "c", "af_prt", "period"]
        )
        assert all(SAFE.match(column) for column in record)
