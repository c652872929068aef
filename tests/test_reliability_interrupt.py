"""Interruptions: a tap killed with SIGKILL anywhere in a backfill loses nothing.

Each trial runs the real command against a sandbox on the real clock (answers take
20 ms, so a backfill of two reports x two apps x ten windows lasts about a second),
kills it at a random moment, and reruns it from the last STATE it wrote (a cut last
line is ignored, as a target would). The target table (records upserted by their key
properties) must equal a clean run's: no gap, no duplicate key, nothing sent twice
that the state already covered. The moments come from a seeded generator.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tests.e2e_support import (
    DSN,
    TARGETS,
    as_number,
    executable,
    postgres_target_config,
    run_target,
    skip_or_fail,
)
from tests.helpers import TapRun, run_tap_cli, sandbox_config
from tests.reliability_support import (
    KilledRun,
    Table,
    last_state,
    record_keys,
    run_and_kill,
    up_to_last_state,
    upserted,
)
from tests.tap_checks import assert_token_absent

TRIALS = 20
SEED = 20260615
REPORTS = [
    {
        "name": "a_retention",
        "groupings": ["date", "pid"],
        "kpis": ["roas", "sessions"],
        "filters": {"period": [0, 1, 3]},
        "restatement_days": 0,  # a resumed run re-reads nothing the state covers
    },
    {
        "name": "b_revenue_by_geo",
        "groupings": ["date", "geo"],
        "kpis": ["revenue"],
        "filters": {"period": [0, 7]},
        "restatement_days": 0,
    },
]


def _config(server: SandboxServer) -> dict[str, Any]:
    start = (server.today - timedelta(days=30)).isoformat()
    return sandbox_config(
        server,
        app_ids=["id123456789", "com.example.app"],
        start_date=start,
        reports=REPORTS,
        max_window_days=3,
        max_requests_in_flight=2,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """One sandbox for every trial: real clock, 20 ms answers, no per-minute limit."""
    with running_sandbox(seed=42, latency=0.02, requests_per_minute=10**6) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def clean(server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> KilledRun:
    """A run left to finish, timed from its first SCHEMA line like the killed ones."""
    run = run_and_kill(_config(server), tmp_path_factory.mktemp("clean"), delay=None)
    assert run.returncode == 0
    states = [m for m in run.messages if m["type"] == "STATE"]
    assert len(states) > 20, "a backfill of many windows, each saved"
    return run


@dataclass
class Trial:
    delay: float
    killed: KilledRun
    rerun: TapRun


@pytest.fixture(scope="module")
def trials(
    server: SandboxServer, clean: KilledRun, tmp_path_factory: pytest.TempPathFactory
) -> list[Trial]:
    """TRIALS killed runs, each followed by its rerun; two trials at a time."""
    rng = random.Random(SEED)
    delays = [rng.uniform(0.0, clean.seconds * 1.1) for _ in range(TRIALS)]
    folders = [tmp_path_factory.mktemp("trial") for _ in delays]
    config = _config(server)

    def trial(index: int) -> Trial:
        killed = run_and_kill(config, folders[index], delays[index])
        rerun = run_tap_cli(config, folders[index], state=last_state(killed.messages))
        return Trial(delays[index], killed, rerun)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(trial, range(TRIALS)))


@pytest.mark.parametrize("index", range(TRIALS))
def test_killed_run_resumes_to_the_clean_table(
    index: int, trials: list[Trial], clean: KilledRun, server: SandboxServer
) -> None:
    trial = trials[index]
    killed, rerun = trial.killed, trial.rerun
    assert rerun.exit_code == 0, rerun.stderr[-3000:]
    # No gap, no stale value: the target ends exactly as after a clean run.
    assert upserted(killed.messages, rerun.messages) == upserted(clean.messages)
    # No duplicate: what the state covered is not sent again, and the rerun sends each
    # key once (records after the last STATE were never committed: they come again).
    committed = record_keys(up_to_last_state(killed.messages))
    resent = record_keys(rerun.messages)
    assert not set(committed) & set(resent), "a record the state covered was sent again"
    counts = Counter(committed + resent)
    assert max(counts.values(), default=1) == 1, "a key was sent twice"
    assert_token_absent(server.token, rerun.stderr, str(killed.messages), str(rerun.messages))


def test_kills_land_across_the_run(trials: list[Trial], clean: KilledRun) -> None:
    """The trials are not all kills before the first window or after the last."""
    total = len([m for m in clean.messages if m["type"] == "STATE"])
    saved = [len([m for m in t.killed.messages if m["type"] == "STATE"]) for t in trials]
    midway = [n for n in saved if 0 < n < total]
    assert len(midway) >= TRIALS // 2, saved
    assert any(t.killed.returncode == -9 for t in trials)
    assert len(set(saved)) >= TRIALS // 4, "kills at many different points"
    # The clean run sends every key once.
    keys = record_keys(clean.messages)
    assert len(keys) == len(set(keys))


# ---- one trial through a real target ---------------------------------------------------


@pytest.mark.e2e
def test_killed_run_into_postgres_leaves_the_clean_table(
    server: SandboxServer, clean: KilledRun, tmp_path: Path
) -> None:
    """Killed output, then the rerun, through target-postgres: one row per key, clean values."""
    psycopg = pytest.importorskip("psycopg")
    target = executable("TARGET_POSTGRES_EXECUTABLE", TARGETS / "postgres/bin/target-postgres")
    try:
        connection = psycopg.connect(DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        skip_or_fail(f"no PostgreSQL at {DSN!r}: {str(exc).strip().splitlines()[0]}")
    schema = f"kill_{uuid.uuid4().hex[:12]}"
    target_config = postgres_target_config(schema)
    config = _config(server)
    try:
        killed = run_and_kill(config, tmp_path, clean.seconds / 2)
        assert last_state(killed.messages) is not None, "killed after the first window"
        rerun = run_tap_cli(config, tmp_path, state=last_state(killed.messages))
        assert rerun.exit_code == 0, rerun.stderr[-3000:]
        for messages in (killed.messages, rerun.messages):
            lines = "".join(_json_line(m) for m in messages)
            run_target(target, target_config, lines, tmp_path)
        loaded = _load(connection, schema, clean.messages)
    finally:
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.close()
    expected = upserted(clean.messages)
    assert set(loaded) == set(expected)
    for key, record in expected.items():
        row = loaded[key]
        for column, value in record.items():
            assert _same(row[column], value), (key, column, row[column], value)


def _json_line(message: dict[str, Any]) -> str:
    return json.dumps(message) + "\n"


def _load(connection: Any, schema: str, messages: list[dict[str, Any]]) -> Table:
    """Every row of every stream's table, by key; fails on a duplicate key."""
    keys = {m["stream"]: m["key_properties"] for m in messages if m["type"] == "SCHEMA"}
    loaded: Table = {}
    for stream, key_properties in keys.items():
        cursor = connection.execute(f'SELECT * FROM "{schema}"."{stream}"')
        columns = [d.name for d in cursor.description]
        for values in cursor.fetchall():
            row = {c: _plain(v) for c, v in zip(columns, values, strict=True)}
            key = (stream, *(row[k] for k in key_properties))
            assert key not in loaded, f"duplicate row for key {key}"
            loaded[key] = row
    return loaded


def _plain(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _same(loaded: Any, sent: Any) -> bool:
    if isinstance(sent, bool) or isinstance(loaded, bool):
        return loaded == sent
    if isinstance(sent, (int, float)) or isinstance(loaded, (int, float)):
        return as_number(loaded) == as_number(sent)
    return loaded == sent
