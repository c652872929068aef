"""End to end: tap -> target-duckdb -> a DuckDB file, two runs a day apart.

The tap runs in-process with its clock set to the sandbox's; its Singer messages are piped
into the real `target-duckdb` executable (from `.venv-targets/duckdb`, or
TARGET_DUCKDB_EXECUTABLE). target-duckdb (jwills, pipelinewise-style) has two known quirks
the README documents: `format: date` columns become VARCHAR, and "" becomes NULL, which a
key column refuses, so blank grouping values need a name: the `blank_value` setting or a
stream map (both tested below). The DuckDB file is read back with the target venv's own
duckdb (``target_tables.duckdb_tables``): files of one DuckDB version may not open in
another.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort.columns import output_column
from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from tests.e2e_support import (
    TARGETS,
    assert_matches_truth,
    executable,
    run_target,
    sandbox_truth,
    singer_lines,
    table_rows,
)
from tests.helpers import run_tap, sandbox_config, utc_noon
from tests.target_tables import LoadedTable, duckdb_tables

pytestmark = pytest.mark.e2e

APP = "id123456789"
SCHEMA = "cohorts"
PERIODS = [0, 1, 3, 7]
LONG = {
    "name": "retention_by_source",
    "groupings": ["date", "pid"],
    "kpis": ["sessions"],
    "aggregation_type": "on_day",
    "filters": {"period": PERIODS},
}
WIDE = {
    "name": "revenue_by_source_wide",
    "groupings": ["date", "pid"],
    "kpis": ["revenue"],
    "layout": "wide",
    "filters": {"period": PERIODS},
}
NUMERIC_TYPES = {"DOUBLE", "DECIMAL", "BIGINT", "HUGEINT", "INTEGER"}
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def target_duckdb() -> Path:
    return executable("TARGET_DUCKDB_EXECUTABLE", TARGETS / "duckdb/bin/target-duckdb")


def fetch(table: LoadedTable, key: list[str]) -> dict[tuple[Any, ...], Any]:
    rows = [[row[c] for c in table.columns] for row in table.rows]
    return table_rows(rows, table.columns, key)


def assert_date_column(table: LoadedTable) -> None:
    """A DATE column, or (target-duckdb's mapping of `format: date`) ISO date strings."""
    if table.types["date"] == "DATE":
        return
    assert table.types["date"] == "VARCHAR", table.types["date"]
    values = [row["date"] for row in table.rows]
    assert values
    assert all(ISO_DATE.match(v) and date.fromisoformat(v) for v in values)


def test_two_runs_a_day_apart_upsert_into_duckdb(sandbox: SandboxServer, tmp_path: Path) -> None:
    target = target_duckdb()
    database = tmp_path / "warehouse.duckdb"
    target_config = {"filepath": str(database), "default_target_schema": SCHEMA}
    start = sandbox.today - timedelta(days=9)
    config = sandbox_config(
        sandbox, app_ids=[APP], start_date=start.isoformat(), reports=[LONG, WIDE]
    )

    first = run_tap(config, now=utc_noon(sandbox.today), expect_exit=0)
    states = run_target(target, target_config, singer_lines(first), tmp_path)
    assert states[-1] == first.last_state

    sandbox.set_today(sandbox.today + timedelta(days=1))
    second = run_tap(config, state=first.last_state, now=utc_noon(sandbox.today), expect_exit=0)
    assert second.records[WIDE["name"]], "run 2 should refresh maturing cohorts"
    run_target(target, target_config, singer_lines(second), tmp_path)

    tables = duckdb_tables(target, database, SCHEMA)
    long_table = tables[LONG["name"]]
    assert_date_column(long_table)
    for column in ("users", "cost", "sessions_count", "sessions_rate"):
        assert long_table.types[column] in NUMERIC_TYPES, (column, long_table.types[column])
    long_rows = fetch(long_table, ["app_id", "date", "pid", "period"])
    assert_matches_truth(long_rows, sandbox_truth(sandbox, APP, LONG, start))

    wide_table = tables[WIDE["name"]]
    assert_date_column(wide_table)
    for period in PERIODS:
        column = output_column("revenue", "sum", period)
        assert wide_table.types[column] in NUMERIC_TYPES, (column, wide_table.types[column])
    wide_rows = fetch(wide_table, ["app_id", "date", "pid"])
    truth = sandbox_truth(sandbox, APP, WIDE, start, wide=True)
    assert_matches_truth(wide_rows, truth)
    for key, row in wide_rows.items():
        for period in PERIODS:
            column = output_column("revenue", "sum", period)
            if column not in truth[key]:
                assert row[column] is None, (key, column)


@pytest.mark.parametrize(
    "naming",
    [
        {"stream_maps": {"sessions_by_campaign": {"c": "c or '(none)'"}}},
        {"blank_value": "(none)"},
    ],
    ids=["stream map", "blank_value setting"],
)
def test_blank_grouping_values_load_when_named(
    sandbox: SandboxServer, tmp_path: Path, naming: dict[str, Any]
) -> None:
    """target-duckdb turns "" into NULL, so name the blanks (a stream map, or the setting)."""
    target = target_duckdb()
    database = tmp_path / "warehouse.duckdb"
    report = {
        "name": "sessions_by_campaign",
        "groupings": ["date", "pid", "c"],
        "kpis": ["sessions"],
        "filters": {"period": [0, 1]},
    }
    start = sandbox.today - timedelta(days=3)
    config = sandbox_config(
        sandbox,
        app_ids=[APP],
        start_date=start.isoformat(),
        reports=[report],
        **naming,
    )
    run = run_tap(config, now=utc_noon(sandbox.today), expect_exit=0)
    run_target(
        target,
        {"filepath": str(database), "default_target_schema": SCHEMA},
        singer_lines(run),
        tmp_path,
    )

    truth = {
        (*key[:3], key[3] or "(none)", key[4]): values
        for key, values in sandbox_truth(sandbox, APP, report, start).items()
    }
    assert any(key[3] == "(none)" for key in truth), "the sandbox has blank campaigns"
    table = duckdb_tables(target, database, SCHEMA)[report["name"]]
    assert_matches_truth(fetch(table, ["app_id", "date", "pid", "c", "period"]), truth)
