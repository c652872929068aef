"""Run the tap in-process or as a command and collect what it wrote."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import time_machine

from tap_appsflyer_cohort.tap import TapAppsFlyerCohort

TAP_COMMAND = [sys.executable, "-m", "tap_appsflyer_cohort"]


@dataclass
class TapRun:
    """Singer messages of one run, split by kind."""

    messages: list[dict[str, Any]]
    exit_code: int = 0
    stderr: str = ""
    tap: TapAppsFlyerCohort | None = None
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records.setdefault(message["stream"], []).append(message["record"])

    @property
    def states(self) -> list[dict[str, Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, Any] | None:
        """The state a rerun starts from."""
        states = self.states
        return states[-1] if states else None


def sandbox_config(server: Any, **overrides: Any) -> dict[str, Any]:
    """A tap config pointed at a running sandbox (fast pace: loopback has no real limit)."""
    config: dict[str, Any] = {
        "api_token": server.token,
        "app_ids": ["id123456789"],
        "start_date": "2026-05-01",
        "api_url": server.base_url,
        "requests_per_minute": 100_000,
        "max_retries": 3,
        # Blanks as the API writes them, so tables compare with the sandbox's own answers
        # (the default, "(none)", has tests of its own).
        "blank_value": "",
    }
    config.update(overrides)
    return config


def utc_noon(day: date) -> datetime:
    """Noon UTC of ``day``: the tap's clock in tests (the sandbox's default time of day)."""
    return datetime.combine(day, time(12, 0), tzinfo=timezone.utc)


def run_tap(
    config: dict[str, Any],
    *,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    now: datetime | None = None,
    expect_exit: int | None = None,
) -> TapRun:
    """Sync in this process (the tap's clock set to ``now``) and parse its stdout."""
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)
    exit_code = 0
    travel = time_machine.travel(now, tick=True) if now else contextlib.nullcontext()
    with travel, contextlib.redirect_stdout(text):
        tap = TapAppsFlyerCohort(config=config, state=state, catalog=catalog)
        try:
            tap.sync_all()
        except SystemExit as exc:
            exit_code = int(exc.code or 0)
    text.flush()
    if expect_exit is not None:
        assert exit_code == expect_exit, f"exit code {exit_code}, expected {expect_exit}"
    # Split on "\n" only, as targets read their input (JSON strings may hold U+2028).
    lines = raw.getvalue().decode("utf-8").split("\n")
    return TapRun([json.loads(line) for line in lines if line.strip()], exit_code, tap=tap)


def run_tap_cli(
    config: dict[str, Any],
    tmp_path: Path,
    *args: str,
    state: dict[str, Any] | None = None,
    timeout: float = 120,
) -> TapRun:
    """Run the console entry point in a subprocess (real CLI, real exit code, stderr)."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    command = [*TAP_COMMAND, "--config", str(config_path), *args]
    if state is not None:
        state_path = tmp_path / "state.json"
        state_path.write_text(json.dumps(state))
        command += ["--state", str(state_path)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    messages = []
    for line in done.stdout.split("\n"):
        with contextlib.suppress(ValueError):
            messages.append(json.loads(line))
    return TapRun(messages, done.returncode, done.stderr)
