"""The API token never shows in the target's stderr, stdout, errors or logs.

Every test using the ``sandbox`` fixture is checked after it ends by conftest's autouse
fixture (log records, and the ``*.log`` files ``run_target_cli`` writes); these walk the
paths where a token could slip out: DEBUG logging of a run with retries and a 400, a 403
with a wrong token, and ``--about``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tap_appsflyer_cohort.sandbox.server import generate_token
from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from tests.audiences_support import (
    TARGET_COMMAND,
    idfv,
    members_input,
    run_target_cli,
    target_config,
)
from tests.tap_checks import assert_token_absent


def test_debug_run_with_retries_and_a_refusal_shows_no_token(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.audiences.script("500", "429", "ok", "reset")
    sandbox.audiences.max_devices = 2
    config = target_config(sandbox, max_devices_per_request=4, max_retries=3)
    run = run_target_cli(
        config, members_input([idfv(n) for n in range(6)]), tmp_path, env={"LOGLEVEL": "DEBUG"}
    )
    assert run.exit_code == 0, run.log[-3000:]
    assert "DEBUG" in run.log, "the run really logged at DEBUG"
    assert "Retrying" in run.log
    assert "sending at most 2 per request" in run.log
    assert_token_absent(sandbox.token, run.log)


def test_wrong_token_403_shows_neither_token(sandbox: SandboxServer, tmp_path: Path) -> None:
    wrong = generate_token()
    run = run_target_cli(
        target_config(sandbox, api_token=wrong), members_input([idfv(1)]), tmp_path
    )
    assert run.exit_code == 1
    assert "403 Forbidden" in run.error
    assert_token_absent(wrong, run.log)
    assert_token_absent(sandbox.token, run.log)


def test_about_has_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    token = generate_token()
    monkeypatch.setenv("TARGET_APPSFLYER_AUDIENCES_API_TOKEN", token)
    done = subprocess.run(
        [*TARGET_COMMAND, "--about", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "api_token" in done.stdout
    assert_token_absent(token, done.stdout, done.stderr)
