"""Shared parts of the reliability tests: the target table, stop lines, killed runs.

"The target table" is what an upserting target holds after the runs: every RECORD,
indexed by its stream and the SCHEMA message's key properties, the last one winning.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers import TAP_COMMAND

Table = dict[tuple[Any, ...], dict[str, Any]]


def upserted(*runs: Sequence[dict[str, Any]]) -> Table:
    """Upsert the records of ``runs`` (lists of Singer messages, in order) by key."""
    table: Table = {}
    for messages in runs:
        keys: dict[str, list[str]] = {}
        for message in messages:
            if message["type"] == "SCHEMA":
                keys[message["stream"]] = message["key_properties"]
            elif message["type"] == "RECORD":
                record = message["record"]
                key = (message["stream"], *(record[k] for k in keys[message["stream"]]))
                table[key] = record
    return table


def record_keys(messages: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The key of every RECORD, in order (duplicates kept)."""
    keys: dict[str, list[str]] = {}
    found = []
    for message in messages:
        if message["type"] == "SCHEMA":
            keys[message["stream"]] = message["key_properties"]
        elif message["type"] == "RECORD":
            record = message["record"]
            found.append((message["stream"], *(record[k] for k in keys[message["stream"]])))
    return found


def up_to_last_state(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages a target has committed once it has seen the last STATE."""
    ends = [i for i, m in enumerate(messages) if m["type"] == "STATE"]
    return list(messages[: ends[-1] + 1]) if ends else []


def last_state(messages: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The value of the last STATE message, the state a rerun starts from."""
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return states[-1] if states else None


def log_lines(stderr: str, level: str) -> list[str]:
    """Log lines of one level (``ERROR``, ``WARNING``...) of the tap's stderr."""
    return [line for line in stderr.splitlines() if f"| {level}" in line]


def stop_line(stderr: str) -> str:
    """The one ``Sync stopped`` line of a run (fails unless there is exactly one)."""
    lines = [line for line in stderr.splitlines() if "Sync stopped" in line]
    assert len(lines) == 1, f"expected one 'Sync stopped' line, got:\n{stderr[-3000:]}"
    return lines[0]


@dataclass
class KilledRun:
    """What a tap killed with SIGKILL had written: whole lines only (a cut one is dropped)."""

    messages: list[dict[str, Any]]
    returncode: int
    cut_line: bool
    #: Seconds from the first SCHEMA line to the kill (or to the end of the run).
    seconds: float


def run_and_kill(config: dict[str, Any], workdir: Path, delay: float | None) -> KilledRun:
    """Start the tap as a command, SIGKILL it ``delay`` s after its first SCHEMA line.

    ``delay=None`` lets it finish (a clean run, timed the same way).
    """
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [*TAP_COMMAND, "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert process.stdout is not None
    stdout = process.stdout
    started = threading.Event()
    chunks: list[bytes] = []

    def read() -> None:
        while chunk := stdout.read1(1 << 16):
            chunks.append(chunk)
            if b'"SCHEMA"' in chunk:
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        started.wait(60)
        schema_seen = time.monotonic()
        if delay is None:
            process.wait(120)
        else:
            time.sleep(delay)
            process.kill()
            process.wait(30)
        seconds = time.monotonic() - schema_seen
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(30)
        stdout.close()
    *whole, rest = b"".join(chunks).split(b"\n")
    messages = [json.loads(line) for line in whole if line.strip()]
    return KilledRun(messages, process.returncode, cut_line=bool(rest), seconds=seconds)
