"""Shared parts of the target-appsflyer-audiences tests: configs, Singer input, runs.

Tests use conftest's ``sandbox`` fixture: its Audiences Import API starts empty. Runs go
through the real target, in-process (``run_target``: fast, for the many-run and property
tests) or as the real command (``run_target_cli``: exit codes, stderr lines), always
against a sandbox on loopback. The command's stderr is also written to a ``*.log`` file
under the test's ``tmp_path``, where the autouse token check of ``conftest.py`` reads it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from target_appsflyer_audiences.errors import AudienceSyncError
from target_appsflyer_audiences.target import TargetAppsFlyerAudiences

TARGET_COMMAND = [sys.executable, "-m", "target_appsflyer_audiences"]
IOS_APP = "id123456789"
ANDROID_APP = "com.example.app"
STREAM = "users"
IMPORT_KEY = "EKFH2UMC5PPCU8J7M5QQCBPKIH89E6NCOB7XQFWMC"

USERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": "integer"},
        "idfv": {"type": ["string", "null"]},
        "idfa": {"type": ["string", "null"]},
        "gaid": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "phone": {"type": ["string", "null"]},
    },
}


def idfv(number: int, salt: str = "u") -> str:
    """A deterministic IDFV (lower-case: the canonical spelling the target sends)."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{salt}-{number}"))


def audience(**overrides: Any) -> dict[str, Any]:
    """One ``audiences`` entry: the users stream, iOS, mapped by default."""
    entry: dict[str, Any] = {
        "stream": STREAM,
        "import_key": IMPORT_KEY,
        "platform": "ios",
        "app_id": IOS_APP,
    }
    entry.update(overrides)
    return entry


def target_config(server: SandboxServer, *audiences: dict[str, Any], **overrides: Any) -> dict:
    """A target config pointed at ``server`` (no pacing: loopback has no real limit)."""
    config: dict[str, Any] = {
        "api_token": server.token,
        "api_url": server.base_url,
        "requests_per_minute": 100_000,
        "max_retries": 2,
        "audiences": list(audiences) or [audience()],
    }
    config.update(overrides)
    return config


def singer_input(
    records: Iterable[Mapping[str, Any]],
    *,
    stream: str = STREAM,
    schema: Mapping[str, Any] | None = None,
    extra: Sequence[Mapping[str, Any]] = (),
) -> str:
    """A SCHEMA, the RECORDs, a STATE, and any ``extra`` messages, as JSON lines."""
    messages: list[Mapping[str, Any]] = [
        {"type": "SCHEMA", "stream": stream, "schema": schema or USERS_SCHEMA,
         "key_properties": ["user_id"]},
    ]  # fmt: skip
    messages += [{"type": "RECORD", "stream": stream, "record": dict(r)} for r in records]
    messages.append({"type": "STATE", "value": {"bookmarks": {stream: {"done": True}}}})
    messages += list(extra)
    return "".join(json.dumps(m) + "\n" for m in messages)


def members_input(ids: Iterable[str], **kwargs: Any) -> str:
    """Singer input whose records carry these IDFVs (user_id numbered)."""
    return singer_input(({"user_id": n, "idfv": v} for n, v in enumerate(ids)), **kwargs)


@dataclass
class TargetRun:
    """The outcome of one run: exit code, the error (if any), the summary lines."""

    exit_code: int
    error: str
    log: str

    @property
    def summaries(self) -> list[dict[str, str]]:
        """Each ``Audience summary:`` line as a dict of its key=value fields."""
        found = []
        for line in self.log.splitlines():
            if "Audience summary: " in line:
                text = line.split("Audience summary: ", 1)[1]
                found.append(dict(part.split("=", 1) for part in text.split() if "=" in part))
        return found

    @property
    def summary(self) -> dict[str, str]:
        """The one summary line of a one-audience run."""
        (only,) = self.summaries
        return only


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


def run_target(config: Mapping[str, Any], lines: str) -> TargetRun:
    """Run the target in this process on ``lines``; never raises for an audience failure."""
    handler = _Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)  # the target's loggers log INFO through the root logger
    exit_code, error = 0, ""
    target = TargetAppsFlyerAudiences(config=dict(config), validate_config=True)
    try:
        target.listen(io.StringIO(lines))
    except AudienceSyncError as failure:
        exit_code, error = 1, str(failure)
    finally:
        target.close_scratch()
        root.removeHandler(handler)
        root.setLevel(level)
    return TargetRun(exit_code, error, "\n".join(handler.lines))


def run_target_cli(
    config: Mapping[str, Any],
    lines: str,
    tmp_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> TargetRun:
    """Run the real command with ``config`` on stdin ``lines``; stderr is the log."""
    config_path = tmp_path / "target-config.json"
    config_path.write_text(json.dumps(config))
    done = subprocess.run(
        [*TARGET_COMMAND, "--config", str(config_path)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
    )
    number = len(list(tmp_path.glob("target-run-*.log")))
    (tmp_path / f"target-run-{number}.log").write_text(done.stderr + done.stdout)
    error_lines = [line for line in done.stderr.splitlines() if "ERROR" in line]
    return TargetRun(done.returncode, "\n".join(error_lines), done.stderr)


def device(app_id: str = IOS_APP, **identifiers: str) -> frozenset[tuple[str, str]]:
    """A device as the sandbox's ground truth spells it."""
    return frozenset({"app_id": app_id, **identifiers}.items())


def idfv_devices(ids: Iterable[str], app_id: str = IOS_APP) -> set[frozenset[tuple[str, str]]]:
    """The ground truth of an audience of these IDFVs."""
    return {device(app_id, idfv=v) for v in ids}
