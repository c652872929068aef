"""Read back what a Singer target wrote: PostgreSQL, DuckDB, JSON lines and CSV files.

Every reader returns the same shape (``LoadedTable``: column names, column types where the
store has them, rows as dicts in the order the store gives them), so one comparison serves
every target.

DuckDB files are read by the target's own Python (its venv's ``duckdb``), not the tap's:
a DuckDB file written by one version may be unreadable by another (1.5 cannot open 2.0's).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LoadedTable:
    """One table (or one stream's files) as the target left it."""

    columns: list[str]
    rows: list[dict[str, Any]]
    types: dict[str, str] = field(default_factory=dict)


def postgres_tables(connection: Any, schema: str) -> dict[str, LoadedTable]:
    """Every table of ``schema`` (psycopg 3 connection)."""
    names = connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    ).fetchall()
    tables = {}
    for (name,) in names:
        types = dict(
            connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (schema, name),
            ).fetchall()
        )
        cursor = connection.execute(f'SELECT * FROM "{schema}"."{name}"')
        columns = [d.name for d in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        tables[name] = LoadedTable(columns, rows, types)
    return tables


_DUCKDB_DUMP = r"""
import datetime, decimal, json, sys
import duckdb

path, schema = sys.argv[1], sys.argv[2]


def plain(value):
    if isinstance(value, (datetime.date, datetime.time)):
        return {"iso": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    return value


tables = {}
with duckdb.connect(path, read_only=True) as connection:
    names = connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]
    ).fetchall()
    for (name,) in names:
        types = dict(connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?", [schema, name]
        ).fetchall())
        cursor = connection.execute(f'SELECT * FROM "{schema}"."{name}"')
        columns = [d[0] for d in cursor.description]
        rows = [[plain(v) for v in row] for row in cursor.fetchall()]
        tables[name] = {"columns": columns, "types": types, "rows": rows}
json.dump(tables, sys.stdout)
"""


def _from_plain(value: Any) -> Any:
    if isinstance(value, dict):
        if "iso" in value:
            return value["iso"]
        return float(value["decimal"])
    return value


def duckdb_tables(target: Path, database: Path, schema: str) -> dict[str, LoadedTable]:
    """Every table of ``schema`` in ``database``, read with the DuckDB of ``target``'s venv.

    Dates and timestamps come back as ISO strings, decimals as floats. Falls back to this
    Python's duckdb when the target has no ``python`` beside it (an executable installed
    some other way).
    """
    python = target.parent / "python"
    command = [str(python if python.is_file() else sys.executable), "-c", _DUCKDB_DUMP]
    done = subprocess.run(
        [*command, str(database), schema],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"reading {database} failed:\n{done.stderr[-2000:]}"
    tables = {}
    for name, table in json.loads(done.stdout).items():
        columns = table["columns"]
        rows = [
            dict(zip(columns, [_from_plain(v) for v in row], strict=True)) for row in table["rows"]
        ]
        tables[name] = LoadedTable(columns, rows, table["types"])
    return tables


def jsonl_tables(folder: Path, streams: list[str]) -> dict[str, LoadedTable]:
    """target-jsonl's files (``<stream>[-<timestamp>].jsonl``), lines in the order written."""
    tables = {}
    for stream in streams:
        rows: list[dict[str, Any]] = []
        for path in sorted(_stream_files(folder, stream, ".jsonl")):
            rows += [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
        columns = sorted({name for row in rows for name in row})
        tables[stream] = LoadedTable(columns, rows)
    return tables


def csv_tables(folder: Path, streams: list[str]) -> dict[str, LoadedTable]:
    """target-csv's files (``<stream>[-<timestamp>].csv``); "" cells read as None."""
    tables = {}
    for stream in streams:
        rows: list[dict[str, Any]] = []
        columns: list[str] = []
        for path in sorted(_stream_files(folder, stream, ".csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                columns = list(reader.fieldnames or [])
                rows += [{k: (v if v != "" else None) for k, v in row.items()} for row in reader]
        tables[stream] = LoadedTable(columns, rows)
    return tables


def _stream_files(folder: Path, stream: str, suffix: str) -> list[Path]:
    """``<stream><suffix>`` and ``<stream>-<anything><suffix>`` (not another stream's)."""
    return [
        path
        for path in folder.glob(f"{stream}*{suffix}")
        if path.name == f"{stream}{suffix}" or path.name.startswith(f"{stream}-")
    ]
