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
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort.columns import output_column
from tap_appsflyer_cohort.report import DEFAULT_REPORTS
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


def pipe_into_target(
    command: Path, config: Mapping[str, Any], lines: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Pipe Singer messages into a target; return the finished process (any exit code)."""
    config_path = tmp_path / f"{command.parent.parent.name}-{command.name}-config.json"
    config_path.write_text(json.dumps(config))
    return subprocess.run(
        [str(command), "--config", str(config_path)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def echoed_states(stdout: str) -> list[Any]:
    """The STATE values a target wrote to stdout (bare values or STATE messages)."""
    states = []
    for line in stdout.splitlines():
        if line.strip():
            message = json.loads(line)
            states.append(message.get("value", message))
    return states


def run_target(command: Path, config: Mapping[str, Any], lines: str, tmp_path: Path) -> list[Any]:
    """Pipe Singer messages into a target; return the STATE values it echoed back."""
    done = pipe_into_target(command, config, lines, tmp_path)
    assert done.returncode == 0, f"{command.name} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return echoed_states(done.stdout)


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
    blank: str = "",
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """What the warehouse must hold for ``report``: the sandbox's own answers, per LTV date.

    Asked one date at a time (a one-day window returns every period complete for that
    date, and with ``partial_data`` today's period too) in-process, without limits. Keys
    are the tap's key properties in order: app_id, date (``YYYY-MM-DD``, or
    ``YYYY-MM-DD HH:MM:SS`` in the report's time zone for hourly reports), groupings
    (blank values as ``blank``), and period unless ``wide``. Hourly dates are asked on
    the day after them, since the API serves hours of the last 72 only (their values are
    final by then for period 0, the only one an hourly report can have complete).
    """
    groupings = [g for g in report["groupings"] if g != "date"]
    hourly = report.get("granularity") == "hour"
    partial = bool(report.get("partial_data"))
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    today = server.today
    for day in _days(start, today - timedelta(days=1)):
        asked_on = min(today, day + timedelta(days=1)) if hourly else today
        body = _truth_body(report, day, groupings)
        for kpi in report["kpis"]:
            server.set_today(asked_on)
            try:
                status, _headers, raw = server.answer(app_id, {**body, "kpis": [kpi]}, "json")
            finally:
                server.set_today(today)
            assert status == 200, raw[:300]
            elapsed = (asked_on - day).days
            for result in json.loads(raw or b'{"results": []}').get("results", []):
                values = (result.get(g) or blank for g in groupings)
                cohort = (app_id, result["date"], *values)
                base = {k: result.get(k) for k in ("users", "ecpi", "cost")}
                for measure in result.get("measures", []):
                    period = measure["period"]
                    key = cohort if wide else (*cohort, period)
                    row = rows.setdefault(key, dict(base))
                    if partial:
                        row["is_complete"] = period < elapsed
                    for name, value in measure.items():
                        if name == "period":
                            continue
                        kpi_name, function = _split_measure(name, kpi)
                        column = output_column(kpi_name, function, period if wide else None)
                        row[column] = value
    return rows


def _truth_body(report: Mapping[str, Any], day: date, groupings: list[str]) -> dict[str, Any]:
    """The one-date query that mirrors ``report`` (everything that changes the values)."""
    body: dict[str, Any] = {
        "cohort_type": report.get("cohort_type", "user_acquisition"),
        "from": day.isoformat(),
        "to": day.isoformat(),
        "groupings": ["date", *groupings],
        "aggregation_type": report.get("aggregation_type", "cumulative"),
        "filters": report["filters"],
    }
    for flag in ("per_user", "preferred_currency", "preferred_timezone", "partial_data"):
        if report.get(flag):
            body[flag] = True
    if "min_cohort_size" in report:
        body["min_cohort_size"] = report["min_cohort_size"]
    if report.get("granularity") == "hour":
        body.update(granularity="hour", to=f"{day} 23:59:59", **{"from": f"{day} 00:00:00"})
    return body


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


# -- The multi-report output every target loads (README, "Warehouses") ----------------------

#: 77, 80, 80 and 83 characters; all share a 72-character prefix. Before the tap capped
#: names at 62 characters, the 80-character pair made pipelinewise-target-postgres fail
#: with "Duplicate column name produced in schema: cotstact043".
LONG_EVENT_PREFIX = "completed_onboarding_tutorial_step_three_and_claimed_the_welcome_bonus_"
LONG_EVENTS = tuple(
    LONG_EVENT_PREFIX + ending for ending in ("on_ios", "web_promo", "app_level", "desktop_gems")
)
#: Every kind of report a target must load: the tap's defaults (campaign `c` can be blank;
#: revenue and ROAS merged), a wide layout, event KPIs with spaces merged in one report
#: grouped by a blank-able `af_adset`, long event names, partial data, hourly in UTC and
#: hourly in the app's time zone.
TARGET_REPORTS: tuple[dict[str, Any], ...] = (
    *DEFAULT_REPORTS,
    {
        "name": "revenue_wide",
        "groupings": ["date", "pid"],
        "kpis": ["revenue"],
        "layout": "wide",
        "filters": {"period": [0, 1, 3, 7]},
    },
    {
        "name": "trials_by_adset",
        "groupings": ["date", "pid", "af_adset"],
        "kpis": ["Start Trial Auth", "af_purchase"],
        "filters": {"period": [0, 1, 3]},
    },
    {
        "name": "long_event_names",
        "groupings": ["date", "pid"],
        "kpis": list(LONG_EVENTS),
        "filters": {"period": [0, 1, 30]},
    },
    {
        "name": "partial_revenue",
        "groupings": ["date", "pid", "c"],
        "kpis": ["revenue"],
        "partial_data": True,
        "filters": {"period": [0, 1, 3]},
    },
    {
        "name": "hourly_utc",
        "groupings": ["date", "pid"],
        "kpis": ["sessions"],
        "granularity": "hour",
        "filters": {"period": [0]},
    },
    {
        "name": "hourly_app_time_zone",
        "groupings": ["date", "pid"],
        "kpis": ["sessions"],
        "granularity": "hour",
        "preferred_timezone": True,
        "filters": {"period": [0]},
    },
)
TARGET_APP = "id123456789"
#: The sandbox's time zone of TARGET_APP (its LTV hours with preferred_timezone).
TARGET_APP_TIMEZONE = "America/Los_Angeles"


def app_settings(app_id: str, timezone: str) -> dict[str, Any]:
    """The tap settings that give ``app_id`` its time zone (the form that survives Meltano)."""
    return {"app_settings": [{"app_id": app_id, "timezone": timezone}]}


def report_named(name: str) -> dict[str, Any]:
    """One of TARGET_REPORTS."""
    return next(r for r in TARGET_REPORTS if r["name"] == name)


# -- Comparing a loaded table with the truth ------------------------------------------------


def canonical_key(row: Mapping[str, Any], report: Mapping[str, Any]) -> tuple[Any, ...]:
    """The cohort key of a loaded row or an emitted record, in sandbox_truth's form.

    Whatever the store made of it: dates (strings or date objects) as ``YYYY-MM-DD``;
    hourly values (a date-time string with or without offset, a timestamp, or a date plus
    an ``hour`` column) as the wall-clock ``YYYY-MM-DD HH:MM:SS`` they carry; the period
    as an int (CSV and JSON give strings or floats).
    """
    groupings = [g for g in report["groupings"] if g != "date"]
    key: list[Any] = [row["app_id"], _date_label(row, hourly=report.get("granularity") == "hour")]
    key += [row[g] for g in groupings]
    if report.get("layout", "long") == "long":
        key.append(int(float(row["period"])))
    return tuple(key)


def _date_label(row: Mapping[str, Any], *, hourly: bool) -> str:
    value = row["date"]
    text = value.isoformat() if isinstance(value, date) else str(value)
    if not hourly:
        return text[:10]
    if "hour" in row:  # a date column plus an hour column
        return f"{text[:10]} {int(float(row['hour'])):02d}:00:00"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")


def _same(loaded: Any, expected: Any) -> bool:
    """Equal as numbers, or as booleans however the store spells them (True, 't', 'true')."""
    if isinstance(expected, bool):
        return str(loaded).lower() in ({"true", "t", "1"} if expected else {"false", "f", "0"})
    return as_number(loaded) == as_number(expected)


def table_mismatches(
    rows: Sequence[Mapping[str, Any]],
    report: Mapping[str, Any],
    truth: Mapping[tuple[Any, ...], Mapping[str, Any]],
    *,
    emitted: Mapping[tuple[Any, ...], int] | None = None,
) -> list[str]:
    """Why a loaded table differs from the truth (empty when it does not).

    Upsert targets (``emitted`` None) must hold one row per key. Append-only targets keep a
    row per emission: give ``emitted`` (how many times the tap emitted each key) and each
    key must have exactly that many rows, the last of them equal to the truth.
    """
    problems: list[str] = []
    by_key: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(canonical_key(row, report), []).append(row)
    missing = sorted(set(truth) - set(by_key), key=str)
    unexpected = sorted(set(by_key) - set(truth), key=str)
    if missing:
        problems.append(f"{len(missing)} key(s) missing, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
    counts = {key: len(found) for key, found in by_key.items()}
    wrong_counts = {
        key: (count, 1 if emitted is None else emitted.get(key, 0))
        for key, count in counts.items()
        if count != (1 if emitted is None else emitted.get(key, 0))
    }
    if wrong_counts:
        example = next(iter(wrong_counts.items()))
        problems.append(f"{len(wrong_counts)} key(s) with a wrong row count, e.g. {example}")
    columns = {name for row in rows[:1] for name in row}
    for key, expected in truth.items():
        if key not in by_key:
            continue
        row = by_key[key][-1]
        for column, value in expected.items():
            if column not in columns:
                problems.append(f"column {column!r} missing (has {sorted(columns)})")
                return problems
            if not _same(row[column], value):
                problems.append(f"{key} {column}: loaded {row[column]!r}, expected {value!r}")
                if len(problems) > 5:
                    return problems
    return problems


def emission_counts(
    records: Iterable[Mapping[str, Any]], report: Mapping[str, Any]
) -> dict[tuple[Any, ...], int]:
    """How many times each cohort key was emitted (append-only targets keep each one)."""
    counts: dict[tuple[Any, ...], int] = {}
    for record in records:
        key = canonical_key(record, report)
        counts[key] = counts.get(key, 0) + 1
    return counts
