"""Shared parts of the end-to-end tests: real Singer targets, the sandbox's ground truth.

The targets live in their own virtualenvs (their dependency trees clash with the tap's and
with each other's); `.ci/run` creates them under `.venv-targets/`. Each test finds its
executable through an environment variable with that default.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort.columns import output_column
from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from tests.helpers import TapRun

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ROOT / ".venv-targets"
INSTALL_HINT = "`bash .ci/run` installs it (README, 'Development')"
DSN = os.environ.get("E2E_POSTGRES_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres")


def on_ci() -> bool:
    """CI sets CI=true: there a missing database or target is a failure, not a skip."""
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip with the reason on a workstation; fail on CI, where everything must run."""
    if on_ci():
        pytest.fail(f"{reason} (CI=true: end-to-end tests must run)", pytrace=False)
    pytest.skip(reason)


def executable(env_var: str, default: Path) -> Path:
    """The target's executable from ``env_var`` or its default venv; skip/fail if absent."""
    path = Path(os.environ.get(env_var) or default)
    if not path.is_file():
        skip_or_fail(f"{path} not found; set {env_var}, or {INSTALL_HINT}")
    return path


def singer_lines(*runs: TapRun) -> str:
    """The runs' Singer messages as the JSON lines the tap wrote."""
    return "".join(json.dumps(m) + "\n" for run in runs for m in run.messages)


def run_target(command: Path, config: Mapping[str, Any], lines: str, tmp_path: Path) -> list[Any]:
    """Pipe Singer messages into a target; return the STATE values it echoed back."""
    config_path = tmp_path / f"{command.name}-config.json"
    config_path.write_text(json.dumps(config))
    done = subprocess.run(
        [str(command), "--config", str(config_path)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert done.returncode == 0, f"{command.name} exited {done.returncode}:\n{done.stderr[-3000:]}"
    states = []
    for line in done.stdout.splitlines():
        if line.strip():
            message = json.loads(line)
            states.append(message.get("value", message))
    return states


def _days(start: date, end: date) -> Iterable[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def sandbox_truth(
    server: SandboxServer,
    app_id: str,
    report: Mapping[str, Any],
    start: date,
    *,
    wide: bool = False,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """What the warehouse must hold for ``report``: the sandbox's own answers, per LTV date.

    Asked one date at a time (a one-day window returns every period complete for that
    date) in-process, without limits. Keys are the tap's key properties in order: app_id,
    date, groupings (blank values as ""), and period unless ``wide``.
    """
    groupings = [g for g in report["groupings"] if g != "date"]
    periods = report["filters"]["period"]
    aggregation = report.get("aggregation_type", "cumulative")
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for day in _days(start, server.today - timedelta(days=1)):
        for kpi in report["kpis"]:
            body = {
                "cohort_type": "user_acquisition",
                "from": day.isoformat(),
                "to": day.isoformat(),
                "groupings": ["date", *groupings],
                "kpis": [kpi],
                "aggregation_type": aggregation,
                "filters": {"period": periods},
            }
            status, _headers, raw = server.answer(app_id, body, "json")
            assert status == 200, raw[:300]
            for result in json.loads(raw or b'{"results": []}').get("results", []):
                cohort = (app_id, result["date"], *(result.get(g) or "" for g in groupings))
                base = {k: result.get(k) for k in ("users", "ecpi", "cost")}
                for measure in result.get("measures", []):
                    period = measure["period"]
                    key = cohort if wide else (*cohort, period)
                    row = rows.setdefault(key, dict(base))
                    for name, value in measure.items():
                        if name == "period":
                            continue
                        kpi_name, function = _split_measure(name, kpi)
                        column = output_column(kpi_name, function, period if wide else None)
                        row[column] = value
    return rows


def _split_measure(name: str, kpi: str) -> tuple[str, str]:
    """``sessions_unique_users`` -> ("sessions", "unique_users") for a known ``kpi``."""
    assert name.startswith(f"{kpi}_"), (name, kpi)
    return kpi, name[len(kpi) + 1 :]


def as_number(value: Any) -> float | None:
    """Compare numbers from any driver (Decimal, int, float) as floats; keep None."""
    return None if value is None else float(value)


def table_rows(
    cursor_rows: Sequence[Sequence[Any]], columns: Sequence[str], key: Sequence[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Index fetched rows by key, asserting one row per key (upserts, no duplicates)."""
    indexed: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in cursor_rows:
        record = dict(zip(columns, row, strict=True))
        record_key = tuple(
            record[k].isoformat() if isinstance(record[k], date) else record[k] for k in key
        )
        assert record_key not in indexed, f"duplicate row for key {record_key}"
        indexed[record_key] = record
    return indexed


def assert_matches_truth(
    loaded: Mapping[tuple[Any, ...], Mapping[str, Any]],
    truth: Mapping[tuple[Any, ...], Mapping[str, Any]],
) -> None:
    """Same keys, and every value the sandbox gave equals the loaded one."""
    assert set(loaded) == set(truth), (
        f"missing {sorted(set(truth) - set(loaded))[:5]}, "
        f"unexpected {sorted(set(loaded) - set(truth))[:5]}"
    )
    for key, expected in truth.items():
        row = loaded[key]
        for column, value in expected.items():
            assert as_number(row[column]) == as_number(value), (key, column, row[column], value)


def postgres_target_config(schema: str) -> dict[str, Any]:
    """target-postgres settings for the test database (from DSN), loading into ``schema``."""
    params = dict(part.split("=", 1) for part in DSN.split())
    return {
        "host": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", "5432")),
        "user": params.get("user", "postgres"),
        "database": params.get("dbname", "test"),
        # The target insists on a password even where trust auth needs none.
        "password": params.get("password", ""),
        "default_target_schema": schema,
    }
