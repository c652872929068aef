"""End to end: one multi-report tap output, two runs a day apart, into four real targets.

The same Singer output (``TARGET_REPORTS``: the default reports, wide, event KPIs with
spaces, two merged KPIs, 77-83 character event names, blank-able groupings, partial data,
hourly in UTC and in the app's time zone) is piped into pipelinewise-target-postgres,
target-duckdb, target-jsonl and MeltanoLabs target-postgres; each table is compared with
the sandbox's own answers. Every RECORD is validated against its SCHEMA with a strict
format checker. The README's "Warehouses" table says what each target needs and does;
these tests are its evidence.

Each target gets the long-event-name report in a load of its own, then everything else:
a target that refuses one table (pipelinewise did, before the tap capped names at 62
characters) must not hide what it does with the others.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tests.conftest import SANDBOX_TODAY
from tests.e2e_support import (
    DSN,
    LONG_EVENTS,
    TARGET_APP,
    TARGET_APP_TIMEZONE,
    TARGET_REPORTS,
    TARGETS,
    app_settings,
    canonical_key,
    echoed_states,
    emission_counts,
    executable,
    pipe_into_target,
    postgres_target_config,
    report_named,
    sandbox_truth,
    skip_or_fail,
    table_mismatches,
)
from tests.helpers import TapRun, run_tap, sandbox_config, utc_noon
from tests.singer_validation import message_errors
from tests.target_tables import (
    LoadedTable,
    csv_tables,
    duckdb_tables,
    jsonl_tables,
    postgres_tables,
)

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.e2e

#: The tap's default name for blank grouping values (pipelinewise-target-postgres and
#: target-duckdb load "" as NULL, which their key columns refuse).
BLANK = "(none)"
TAP_SETTINGS = {"blank_value": BLANK, **app_settings(TARGET_APP, TARGET_APP_TIMEZONE)}
LONG_NAMES = "long_event_names"
REPORT_NAMES = [r["name"] for r in TARGET_REPORTS]

PIPELINEWISE = "pipelinewise-target-postgres"
DUCKDB = "target-duckdb"
JSONL = "target-jsonl"
MELTANOLABS = "meltanolabs-target-postgres"
CSV = "meltanolabs-target-csv"


@dataclass(frozen=True)
class TargetSpec:
    """A target under test: where its executable is and whether it upserts on the key."""

    name: str
    env_var: str
    default: Path
    upserts: bool

    def command(self) -> Path:
        return executable(self.env_var, self.default)


SPECS = {
    spec.name: spec
    for spec in (
        TargetSpec(
            PIPELINEWISE,
            "TARGET_PIPELINEWISE_POSTGRES_EXECUTABLE",
            TARGETS / "pipelinewise-postgres/bin/target-postgres",
            upserts=True,
        ),
        TargetSpec(DUCKDB, "TARGET_DUCKDB_EXECUTABLE", TARGETS / "duckdb/bin/target-duckdb", True),
        TargetSpec(JSONL, "TARGET_JSONL_EXECUTABLE", TARGETS / "jsonl/bin/target-jsonl", False),
        TargetSpec(
            MELTANOLABS,
            "TARGET_POSTGRES_EXECUTABLE",
            TARGETS / "postgres/bin/target-postgres",
            upserts=True,
        ),
    )
}


class Warehouse:
    """Where one target writes in this test module, its config, and how to read it back."""

    def __init__(self, spec: TargetSpec, place: Path, postgres: Any) -> None:
        self.spec = spec
        self.place = place
        self.postgres = postgres
        self.schema = f"e2e_{uuid.uuid4().hex[:12]}"

    def config(self) -> dict[str, Any]:
        if self.spec.name == MELTANOLABS:
            return postgres_target_config(self.schema)
        if self.spec.name == PIPELINEWISE:
            config = postgres_target_config(self.schema)
            config["dbname"] = config.pop("database")
            # pipelinewise refuses an empty password, even where the server needs none.
            config["password"] = config["password"] or "unused-with-trust-auth"
            return config
        if self.spec.name == DUCKDB:
            return {"filepath": str(self.place / "warehouse.duckdb"), "default_target_schema": "c"}
        return {"destination_path": str(self.place / "files")}

    def tables(self, streams: list[str]) -> dict[str, LoadedTable]:
        if self.spec.name in {MELTANOLABS, PIPELINEWISE}:
            return postgres_tables(self.postgres(), self.schema)
        if self.spec.name == DUCKDB:
            database = self.place / "warehouse.duckdb"
            return duckdb_tables(self.spec.command(), database, "c") if database.exists() else {}
        return jsonl_tables(self.place / "files", streams)

    def drop(self) -> None:
        if self.spec.name in {MELTANOLABS, PIPELINEWISE} and self.postgres.opened:
            self.postgres().execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


class Postgres:
    """One connection for the module, opened on first use (skip/fail when unreachable)."""

    def __init__(self) -> None:
        self.connection: Any = None

    @property
    def opened(self) -> bool:
        return self.connection is not None

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def __call__(self) -> Any:
        if self.connection is None:
            try:
                self.connection = psycopg.connect(DSN, autocommit=True, connect_timeout=5)
            except psycopg.OperationalError as exc:
                skip_or_fail(f"no PostgreSQL at {DSN!r}: {str(exc).strip().splitlines()[0]}")
        return self.connection


@dataclass
class TapOutput:
    """Both runs of the tap over TARGET_REPORTS, and what the tables must hold after them."""

    runs: list[TapRun]
    lines: list[str]
    truth: dict[str, dict[tuple[Any, ...], dict[str, Any]]]

    def lines_of(self, run: int, streams: set[str] | None, *, exclude: bool = False) -> str:
        """One run's messages for some streams (STATE messages always)."""
        kept = []
        for message in self.runs[run].messages:
            stream = message.get("stream")
            if stream is None or streams is None or ((stream in streams) != exclude):
                kept.append(message)
        return "".join(_json_line(m) for m in kept)

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [r for run in self.runs for r in run.records.get(stream, [])]

    def schema(self, stream: str) -> dict[str, Any]:
        return next(
            m for m in self.runs[0].messages if m["type"] == "SCHEMA" and m["stream"] == stream
        )


def _json_line(message: dict[str, Any]) -> str:
    return json.dumps(message) + "\n"


def report_start(report: dict[str, Any], start: date, first_today: date) -> date:
    """The first LTV date the tap loads for ``report`` (hourly: the last 72 hours only)."""
    if report.get("granularity") == "hour":
        return max(start, first_today - timedelta(days=2))
    return start


@pytest.fixture(scope="module")
def targets_sandbox() -> Iterator[SandboxServer]:
    """One sandbox for the module: every target loads the same two runs."""
    with running_sandbox(today=SANDBOX_TODAY, seed=42) as server:
        yield server


@pytest.fixture(scope="module")
def tap_output(targets_sandbox: SandboxServer) -> TapOutput:
    server = targets_sandbox
    first_today = server.today
    start = first_today - timedelta(days=9)
    config = sandbox_config(
        server,
        app_ids=[TARGET_APP],
        start_date=start.isoformat(),
        reports=list(TARGET_REPORTS),
        **TAP_SETTINGS,
    )
    first = run_tap(config, now=utc_noon(server.today), expect_exit=0)
    server.set_today(server.today + timedelta(days=1))
    # A copy: the SDK updates the state dict it is given, which would rewrite run 1's STATE.
    state = copy.deepcopy(first.last_state)
    second = run_tap(config, state=state, now=utc_noon(server.today), expect_exit=0)
    runs = [first, second]
    lines = ["".join(_json_line(m) for m in run.messages) for run in runs]
    assert not any(server.token in text for text in lines)
    truth = {
        report["name"]: sandbox_truth(
            server,
            TARGET_APP,
            report,
            report_start(report, start, first_today),
            wide=report.get("layout") == "wide",
            blank=BLANK,
        )
        for report in TARGET_REPORTS
    }
    return TapOutput(runs, lines, truth)


@dataclass
class Loaded:
    """What one target made of both runs."""

    tables: dict[str, LoadedTable]
    failures: dict[str, str] = field(default_factory=dict)
    states: list[Any] = field(default_factory=list)


@pytest.fixture(scope="module")
def loaded(
    tap_output: TapOutput, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], Loaded]]:
    """``loaded(target)``: load both runs into that target (once), read its tables."""
    postgres = Postgres()
    done: dict[str, Loaded] = {}
    warehouses: list[Warehouse] = []

    def load(name: str) -> Loaded:
        if name in done:
            return done[name]
        spec = SPECS[name]
        command = spec.command()
        place = tmp_path_factory.mktemp(name)
        warehouse = Warehouse(spec, place, postgres)
        if name in {MELTANOLABS, PIPELINEWISE}:
            postgres()  # skip or fail now if there is no database
        warehouses.append(warehouse)
        result = Loaded({})
        for run in range(len(tap_output.runs)):
            for group, exclude in (({LONG_NAMES}, False), ({LONG_NAMES}, True)):
                lines = tap_output.lines_of(run, group, exclude=exclude)
                process = pipe_into_target(command, warehouse.config(), lines, place)
                label = f"run {run + 1}, {'all but ' if exclude else ''}{LONG_NAMES}"
                if process.returncode != 0:
                    result.failures[label] = process.stderr[-1500:]
                else:
                    result.states += echoed_states(process.stdout)
        result.tables = warehouse.tables(REPORT_NAMES)
        done[name] = result
        return result

    yield load
    for warehouse in warehouses:
        warehouse.drop()
    postgres.close()


def _cases() -> list[Any]:
    return [
        pytest.param(
            target,
            report,
            id=f"{target}-{report}",
        )
        for target in SPECS
        for report in REPORT_NAMES
    ]


@pytest.mark.parametrize("stream", REPORT_NAMES)
def test_every_record_matches_its_schema(
    targets_sandbox: SandboxServer, tap_output: TapOutput, stream: str
) -> None:
    """Strict: Draft 7, `date` and RFC 3339 `date-time` formats checked, no stray property."""
    messages = [
        m for run in tap_output.runs for m in run.messages if m.get("stream") in {stream, None}
    ]
    assert any(m["type"] == "RECORD" for m in messages), f"no record for {stream}"
    assert message_errors(messages).get(stream, []) == []


@pytest.mark.parametrize(("target", "report"), _cases())
def test_target_loads_the_report_as_the_sandbox_answered(
    targets_sandbox: SandboxServer,
    tap_output: TapOutput,
    loaded: Callable[[str], Loaded],
    target: str,
    report: str,
) -> None:
    """Every cohort once (upsert) or once per emission (append), every value as the API's."""
    result = loaded(target)
    group = LONG_NAMES if report == LONG_NAMES else f"all but {LONG_NAMES}"
    failed = {label: err for label, err in result.failures.items() if label.endswith(group)}
    assert not failed, f"{target} failed: {failed}"
    assert report in result.tables, f"no table {report!r}; tables: {sorted(result.tables)}"
    table = result.tables[report]
    declared = set(tap_output.schema(report)["schema"]["properties"])
    renamed = sorted(declared - set(table.columns))
    assert not renamed, f"{target} lost or renamed columns {renamed[:4]}: has {table.columns}"
    definition = report_named(report)
    emitted = None
    if not SPECS[target].upserts:
        emitted = emission_counts(tap_output.records(report), definition)
    problems = table_mismatches(table.rows, definition, tap_output.truth[report], emitted=emitted)
    assert problems == []


@pytest.mark.parametrize("target", list(SPECS))
def test_target_echoes_the_tap_state_once_loaded(
    targets_sandbox: SandboxServer,
    tap_output: TapOutput,
    loaded: Callable[[str], Loaded],
    target: str,
) -> None:
    """The last STATE a target writes is the tap's last: a rerun resumes after run 2."""
    result = loaded(target)
    assert result.states, f"{target} echoed no state; failures: {sorted(result.failures)}"
    assert result.states[-1] == tap_output.runs[-1].last_state


def test_column_names_are_short_and_readable(
    targets_sandbox: SandboxServer, tap_output: TapOutput
) -> None:
    """At most 62 characters (pipelinewise rewrites 63+), lowercase, and a long event's
    columns still end in their function, so eight columns do not read alike."""
    for report in REPORT_NAMES:
        names = list(tap_output.schema(report)["schema"]["properties"])
        too_long = [n for n in names if len(n) > 62 or not re.fullmatch(r"[a-z_][a-z0-9_]*", n)]
        assert not too_long, (report, too_long)
        assert len({n.upper() for n in names}) == len(names), report  # Snowflake upper-cases
    functions = ("count", "sum", "unique_users", "conversion_rate")
    event_columns = [
        n for n in tap_output.schema(LONG_NAMES)["schema"]["properties"] if n.startswith("comp")
    ]
    assert len(event_columns) == len(LONG_EVENTS) * len(functions)
    for function in functions:
        ending = [n for n in event_columns if n.endswith(f"_{function}")]
        assert len(ending) == len(LONG_EVENTS), (function, event_columns)


# -- Blank grouping values with the tap's default -------------------------------------------

BLANKS_REPORT = {
    "name": "sessions_by_campaign",
    "groupings": ["date", "pid", "c"],
    "kpis": ["sessions"],
    "filters": {"period": [0, 1]},
}


@pytest.mark.parametrize("target", list(SPECS))
def test_default_blank_values_lose_nothing(
    sandbox: SandboxServer, tmp_path: Path, target: str
) -> None:
    """With no blank_value set, every cohort with a blank campaign (organic) still loads."""
    spec = SPECS[target]
    command = spec.command()
    postgres = Postgres()
    warehouse = Warehouse(spec, tmp_path, postgres)
    start = sandbox.today - timedelta(days=3)
    config = sandbox_config(
        sandbox, app_ids=[TARGET_APP], start_date=start.isoformat(), reports=[BLANKS_REPORT]
    )
    del config["blank_value"]  # the tap's default
    run = run_tap(config, now=utc_noon(sandbox.today), expect_exit=0)
    records = run.records[BLANKS_REPORT["name"]]
    blanks = {r["c"] for r in records if r["pid"] == "Organic"}
    assert len(blanks) == 1, f"one spelling for a blank campaign, got {blanks}"
    (blank,) = blanks
    try:
        if target in {MELTANOLABS, PIPELINEWISE}:
            postgres()
        lines = "".join(_json_line(m) for m in run.messages)
        process = pipe_into_target(command, warehouse.config(), lines, tmp_path)
        assert process.returncode == 0, process.stderr[-1500:]
        table = warehouse.tables([BLANKS_REPORT["name"]])[BLANKS_REPORT["name"]]
    finally:
        warehouse.drop()
        postgres.close()
    truth = sandbox_truth(sandbox, TARGET_APP, BLANKS_REPORT, start, blank=blank)
    assert any(key[3] == blank for key in truth), "the sandbox has blank campaigns"
    emitted = None if spec.upserts else emission_counts(records, BLANKS_REPORT)
    assert table_mismatches(table.rows, BLANKS_REPORT, truth, emitted=emitted) == []


# -- meltanolabs-target-csv: append is not honoured -----------------------------------------


def target_csv() -> Path:
    return executable("TARGET_CSV_EXECUTABLE", TARGETS / "csv/bin/target-csv")


def test_target_csv_keeps_only_the_last_run_by_default(
    targets_sandbox: SandboxServer, tap_output: TapOutput, tmp_path: Path
) -> None:
    """meltanolabs-target-csv 0.5 rewrites `<stream>.csv` when a run starts (whatever
    overwrite_behavior says), so a second run leaves only its own rows: every cohort that
    run 2 did not re-read is gone from the file."""
    command = target_csv()
    config = {"output_path": str(tmp_path / "files"), "overwrite_behavior": "append_records"}
    for text in tap_output.lines:
        process = pipe_into_target(command, config, text, tmp_path)
        assert process.returncode == 0, process.stderr[-1500:]
    tables = csv_tables(tmp_path / "files", REPORT_NAMES)
    for name in REPORT_NAMES:
        report = report_named(name)
        second = emission_counts(tap_output.runs[1].records.get(name, []), report)
        first = emission_counts(tap_output.runs[0].records.get(name, []), report)
        held = emission_counts(tables[name].rows, report)
        assert held == second, name
        assert set(first) - set(second), f"{name}: run 2 should not re-read every cohort"


def test_target_csv_keeps_every_run_with_one_file_per_run(
    targets_sandbox: SandboxServer, tap_output: TapOutput, tmp_path: Path
) -> None:
    """The README's setting for target-csv: `{timestamp}` in file_naming_scheme, one file per
    run; the files together hold every emission, the latest of each cohort as the API's."""
    command = target_csv()
    config = {
        "output_path": str(tmp_path / "files"),
        "file_naming_scheme": "{stream_name}-{timestamp}.csv",
        "timestamp_format": "%Y%m%dT%H%M%S%f",
    }
    for text in tap_output.lines:
        process = pipe_into_target(command, config, text, tmp_path)
        assert process.returncode == 0, process.stderr[-1500:]
    tables = csv_tables(tmp_path / "files", REPORT_NAMES)
    for name in REPORT_NAMES:
        report = report_named(name)
        emitted = emission_counts(tap_output.records(name), report)
        truth = tap_output.truth[name]
        assert table_mismatches(tables[name].rows, report, truth, emitted=emitted) == [], name


# -- Hourly values: what each target does with an offset ------------------------------------

HOURLY = report_named("hourly_app_time_zone")
#: What each target made of hourly values carrying their real offset (America/Los_Angeles,
#: -07:00 in June), measured: see the README's "Warehouses" table.
OFFSET_OUTCOME = {
    PIPELINEWISE: "wall clock kept, offset dropped",
    DUCKDB: "first row of the batch lost",
    JSONL: "kept as sent, offset included",
    MELTANOLABS: "converted to UTC",
}


def hourly_messages(
    truth: dict[tuple[Any, ...], dict[str, Any]], rendering: str
) -> list[dict[str, Any]]:
    """Singer messages of the hourly truth, hours rendered with their offset or as date + hour."""
    zone = ZoneInfo(TARGET_APP_TIMEZONE)
    number = {"type": ["number", "null"]}
    properties: dict[str, Any] = {
        "app_id": {"type": "string"},
        "date": {"type": "string", "format": "date-time"},
        "pid": {"type": "string"},
        "period": {"type": "integer"},
        "users": {"type": ["integer", "null"]},
        "ecpi": number,
        "cost": number,
        "sessions_count": number,
        "sessions_rate": number,
    }
    keys = ["app_id", "date", "pid", "period"]
    if rendering == "date and hour":
        properties["date"] = {"type": "string", "format": "date"}
        properties["hour"] = {"type": "integer"}
        keys.insert(2, "hour")
    stream = f"hours_{rendering.replace(' ', '_')}"
    schema = {"type": "object", "properties": properties, "required": keys}
    messages: list[dict[str, Any]] = [
        {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": keys}
    ]
    for (app_id, label, pid, period), values in sorted(truth.items()):
        local = datetime.fromisoformat(label).replace(tzinfo=zone)
        record = {"app_id": app_id, "pid": pid, "period": period, **values}
        if rendering == "date and hour":
            record.update(date=local.date().isoformat(), hour=local.hour)
        else:
            record["date"] = local.isoformat()
        messages.append({"type": "RECORD", "stream": stream, "record": record})
    messages.append({"type": "STATE", "value": {"rendering": rendering}})
    return messages


def offset_outcome(rows: list[dict[str, Any]], truth: dict[tuple[Any, ...], Any]) -> str:
    """Name what a target did to hours sent with their offset."""
    zone = ZoneInfo(TARGET_APP_TIMEZONE)
    keys = {canonical_key(row, HOURLY) for row in rows}
    as_utc = {
        (
            app,
            datetime.fromisoformat(label)
            .replace(tzinfo=zone)
            .astimezone(ZoneInfo("UTC"))
            .strftime("%Y-%m-%d %H:%M:%S"),
            pid,
            period,
        )
        for app, label, pid, period in truth
    }
    if keys == set(truth):
        if all(re.search(r"[+-]\d\d:\d\d$", str(row["date"])) for row in rows):
            return "kept as sent, offset included"
        return "wall clock kept, offset dropped"
    if keys == as_utc:
        return "converted to UTC"
    first = min(truth)
    if keys == set(truth) - {first}:
        return "first row of the batch lost"
    return f"something else: {len(keys)} of {len(truth)} keys"


@pytest.mark.parametrize("target", list(SPECS))
@pytest.mark.parametrize("rendering", ["offset", "date and hour"])
def test_hourly_rendering_in_each_target(
    targets_sandbox: SandboxServer,
    tap_output: TapOutput,
    tmp_path: Path,
    target: str,
    rendering: str,
) -> None:
    """Hours with their real offset mean something different in each target (and lose a row
    in target-duckdb); hours as `date` + `hour` load exactly in all of them."""
    spec = SPECS[target]
    command = spec.command()
    postgres = Postgres()
    warehouse = Warehouse(spec, tmp_path, postgres)
    truth = tap_output.truth[HOURLY["name"]]
    messages = hourly_messages(truth, rendering)
    stream = messages[0]["stream"]
    try:
        if target in {MELTANOLABS, PIPELINEWISE}:
            postgres()
        lines = "".join(_json_line(m) for m in messages)
        process = pipe_into_target(command, warehouse.config(), lines, tmp_path)
        assert process.returncode == 0, process.stderr[-1500:]
        rows = warehouse.tables([stream])[stream].rows
    finally:
        warehouse.drop()
        postgres.close()
    if rendering == "offset":
        assert offset_outcome(rows, truth) == OFFSET_OUTCOME[target]
    else:
        assert table_mismatches(rows, HOURLY, truth) == []


# -- The checks themselves can fail ----------------------------------------------------------


def test_table_comparison_catches_what_a_target_can_get_wrong() -> None:
    """A changed value, a duplicate, a missing key, a wrong append count each show."""
    report = {"groupings": ["date", "pid"], "filters": {"period": [0]}}
    truth = {
        ("a", "2026-06-01", "x", 0): {"users": 3, "is_complete": True},
        ("a", "2026-06-02", "x", 0): {"users": 4, "is_complete": False},
    }
    rows = [
        {"app_id": "a", "date": date(2026, 6, 1), "pid": "x", "period": "0", "users": 3.0,
         "is_complete": "t"},
        {"app_id": "a", "date": "2026-06-02", "pid": "x", "period": 0.0, "users": "4",
         "is_complete": False},
    ]  # fmt: skip
    assert table_mismatches(rows, report, truth) == []
    changed = [rows[0], {**rows[1], "users": 5}]
    assert "users" in " ".join(table_mismatches(changed, report, truth))
    assert "wrong row count" in " ".join(table_mismatches([*rows, rows[1]], report, truth))
    assert "missing" in " ".join(table_mismatches(rows[:1], report, truth))
    counts = {key: 2 for key in truth}
    assert "wrong row count" in " ".join(table_mismatches(rows, report, truth, emitted=counts))
    assert table_mismatches([*rows, *rows], report, truth, emitted=counts) == []


def test_strict_validation_rejects_what_lenient_targets_accept() -> None:
    """An offset-less date-time, a non-ISO date, a stray property, a record before its schema."""
    schema = {
        "type": "SCHEMA",
        "stream": "s",
        "key_properties": ["d"],
        "schema": {
            "type": "object",
            "properties": {
                "d": {"type": "string", "format": "date"},
                "t": {"type": "string", "format": "date-time"},
            },
        },
    }
    record = {"d": "2026-06-01", "t": "2026-06-01T05:00:00-07:00"}
    good = {"type": "RECORD", "stream": "s", "record": record}
    assert message_errors([schema, good]) == {}
    bad = [
        {"d": "2026-06-01", "t": "2026-06-01T05:00:00"},
        {"d": "20260601", "t": "2026-06-01T05:00:00Z"},
        {"d": "2026-06-01", "extra": 1},
    ]
    problems = message_errors(
        [schema, *({"type": "RECORD", "stream": "s", "record": r} for r in bad)]
    )
    assert len(problems["s"]) == 3, problems
    assert message_errors([good])["s"] == ["RECORD before its SCHEMA"]
