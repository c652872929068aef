"""End to end: tap -> MeltanoLabs target-postgres -> a real PostgreSQL, two runs a day apart.

The tap runs in-process with its clock set to the sandbox's, and its Singer messages are
piped into the real `target-postgres` executable (from `.venv-targets/postgres`, or
TARGET_POSTGRES_EXECUTABLE). PostgreSQL: 127.0.0.1:5432, database `test`, user `postgres`
(override with E2E_POSTGRES_DSN). Each test writes into a schema of its own, dropped after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort.columns import output_column
from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from tests.e2e_support import (
    DSN,
    TARGETS,
    assert_matches_truth,
    executable,
    postgres_target_config,
    run_target,
    sandbox_truth,
    singer_lines,
    skip_or_fail,
    table_rows,
)
from tests.helpers import run_tap, sandbox_config, utc_noon

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.e2e

APP = "id123456789"
PERIODS = [0, 1, 3, 7]
#: Campaign `c` is blank for organic installs: the key column must hold "" (never NULL).
LONG = {
    "name": "sessions_by_campaign",
    "groupings": ["date", "pid", "c"],
    "kpis": ["sessions"],
    "aggregation_type": "on_day",
    "filters": {"period": PERIODS},
}
#: Wide: a maturing cohort's row gains period columns, so run 2 must update run 1's rows.
WIDE = {
    "name": "revenue_by_source_wide",
    "groupings": ["date", "pid"],
    "kpis": ["revenue"],
    "layout": "wide",
    "filters": {"period": PERIODS},
}
NUMERIC_TYPES = {"numeric", "double precision", "bigint", "integer", "smallint", "real"}


@pytest.fixture
def pg_schema() -> Iterator[tuple[Any, str]]:
    """A connection and a fresh schema name; the schema is dropped afterwards."""
    try:
        connection = psycopg.connect(DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        skip_or_fail(f"no PostgreSQL at {DSN!r}: {str(exc).strip().splitlines()[0]}")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    try:
        yield connection, schema
    finally:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.close()


def columns_of(connection: Any, schema: str, table: str) -> dict[str, tuple[str, str]]:
    rows = connection.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    ).fetchall()
    return {name: (data_type, nullable) for name, data_type, nullable in rows}


def primary_key_of(connection: Any, schema: str, table: str) -> set[str]:
    rows = connection.execute(
        "SELECT k.column_name FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k "
        "ON k.constraint_name = c.constraint_name AND k.table_schema = c.table_schema "
        "WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = %s AND c.table_name = %s",
        (schema, table),
    ).fetchall()
    return {name for (name,) in rows}


def fetch(connection: Any, schema: str, table: str, key: list[str]) -> dict[tuple[Any, ...], Any]:
    cursor = connection.execute(f'SELECT * FROM "{schema}"."{table}"')
    columns = [d.name for d in cursor.description]
    return table_rows(cursor.fetchall(), columns, key)


def test_two_runs_a_day_apart_upsert_into_postgres(
    sandbox: SandboxServer, pg_schema: tuple[Any, str], tmp_path: Path
) -> None:
    connection, schema = pg_schema
    target = executable("TARGET_POSTGRES_EXECUTABLE", TARGETS / "postgres/bin/target-postgres")
    start = sandbox.today - timedelta(days=9)
    config = sandbox_config(
        sandbox, app_ids=[APP], start_date=start.isoformat(), reports=[LONG, WIDE]
    )

    first = run_tap(config, now=utc_noon(sandbox.today), expect_exit=0)
    states = run_target(target, postgres_target_config(schema), singer_lines(first), tmp_path)
    assert states[-1] == first.last_state  # state is echoed only once its rows are loaded

    sandbox.set_today(sandbox.today + timedelta(days=1))
    second = run_tap(config, state=first.last_state, now=utc_noon(sandbox.today), expect_exit=0)
    reread = {(r["app_id"], r["date"], r["pid"]) for r in first.records[WIDE["name"]]} & {
        (r["app_id"], r["date"], r["pid"]) for r in second.records[WIDE["name"]]
    }
    assert reread, "run 2 should refresh maturing cohorts already loaded by run 1"
    run_target(target, postgres_target_config(schema), singer_lines(second), tmp_path)

    long_columns = columns_of(connection, schema, LONG["name"])
    assert long_columns["date"][0] == "date"
    for column in ("users", "cost", "sessions_count", "sessions_rate", "sessions_unique_users"):
        assert long_columns[column][0] in NUMERIC_TYPES, (column, long_columns[column])
    long_key = ["app_id", "date", "pid", "c", "period"]
    assert primary_key_of(connection, schema, LONG["name"]) == set(long_key)
    assert all(long_columns[k][1] == "NO" for k in long_key)

    long_rows = fetch(connection, schema, LONG["name"], long_key)
    assert_matches_truth(long_rows, sandbox_truth(sandbox, APP, LONG, start))
    assert any(key[3] == "" for key in long_rows), "blank campaigns load as '' in the key"

    wide_columns = columns_of(connection, schema, WIDE["name"])
    assert wide_columns["date"][0] == "date"
    for period in PERIODS:
        column = output_column("revenue", "sum", period)
        assert wide_columns[column][0] in NUMERIC_TYPES, (column, wide_columns[column])
    wide_key = ["app_id", "date", "pid"]
    wide_rows = fetch(connection, schema, WIDE["name"], wide_key)
    truth = sandbox_truth(sandbox, APP, WIDE, start, wide=True)
    assert_matches_truth(wide_rows, truth)
    for key, row in wide_rows.items():  # a period not complete yet stays NULL
        for period in PERIODS:
            column = output_column("revenue", "sum", period)
            if column not in truth[key]:
                assert row[column] is None, (key, column)
