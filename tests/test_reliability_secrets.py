"""Secrets: the API token never shows in stdout, stderr, STATE, errors or logs.

Every test of the suite that runs a sandbox is also checked after it ends (the autouse
fixture in ``conftest.py``); these tests walk the paths where a token could slip out:
refusals (401, 422), retries and give-ups (500), debug logging, ``--about``, discovery,
the exceptions themselves, and a token pasted into the wrong setting. And the token only
travels encrypted: ``api_url`` must be https, except to this machine.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from singer_sdk.exceptions import ConfigValidationError

from tap_appsflyer_cohort.sandbox.server import SandboxServer, generate_token
from tap_appsflyer_cohort.tap import TapAppsFlyerCohort
from tests.conftest import SANDBOX_TODAY
from tests.helpers import TAP_COMMAND, run_tap, run_tap_cli, sandbox_config, utc_noon
from tests.tap_checks import assert_token_absent

NOW = utc_noon(SANDBOX_TODAY)
REPORT = {"name": "ltv", "groupings": ["date", "pid"], "kpis": ["sessions"]}


def _config(server: SandboxServer, **overrides: Any) -> dict[str, Any]:
    start = (server.today - timedelta(days=3)).isoformat()
    return sandbox_config(server, **{"start_date": start, "reports": [REPORT], **overrides})


def _all_logged(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter()
    return "\n".join(
        f"{r.getMessage()} {formatter.formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
    )


def _chain(error: BaseException | None) -> str:
    """str and repr of an exception and everything it was raised from or during."""
    texts = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        texts += [str(error), repr(error), repr(getattr(error, "args", ()))]
        error = error.__cause__ or error.__context__
    return "\n".join(texts)


def test_debug_logging_of_a_run_with_retries_shows_no_token(
    live_sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DEBUG: urllib3 and the SDK say the most they ever say.
    monkeypatch.setenv("LOGLEVEL", "DEBUG")
    live_sandbox.script("500")
    run = run_tap_cli(_config(live_sandbox, max_retries=1), tmp_path)
    assert run.exit_code == 0, run.stderr[-3000:]
    assert "DEBUG" in run.stderr, "the run really logged at DEBUG"
    assert "Retrying ltv" in run.stderr
    assert run.states
    assert run.records["ltv"]
    assert_token_absent(live_sandbox.token, run.stderr, json.dumps(run.messages))


def test_401_shows_neither_token(live_sandbox: SandboxServer, tmp_path: Path) -> None:
    wrong = generate_token()
    run = run_tap_cli(_config(live_sandbox, api_token=wrong), tmp_path)
    assert run.exit_code == 1
    assert "401" in run.stderr
    assert_token_absent(wrong, run.stderr, json.dumps(run.messages))
    assert_token_absent(live_sandbox.token, run.stderr, json.dumps(run.messages))


@pytest.mark.parametrize("status", ["401", "422", "500"])
def test_errors_and_what_they_were_raised_from_hold_no_token(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, status: str
) -> None:
    """The exception that stops a sync, and its whole chain, in-process.

    The stream is synced directly: the tap's own sync turns the error into one logged
    line and an exit code, which other tests check.
    """
    caplog.set_level(logging.DEBUG)
    config = _config(sandbox, max_retries=1)
    if status == "401":
        config["api_token"] = generate_token()
    elif status == "422":
        sandbox.options.horizon_days = 2  # the tap asks 3 days back: refused
    else:
        sandbox.script("500", "500")
    with time_machine.travel(NOW, tick=True):
        tap = TapAppsFlyerCohort(config=config)
        (stream,) = tap.streams.values()
        try:
            with pytest.raises(Exception) as caught:  # any error: its text is the point
                stream.sync()
        finally:
            tap.pacer.stop()
            tap.executor.shutdown(wait=True, cancel_futures=True)
    assert status in str(caught.value)
    for token in {sandbox.token, config["api_token"]}:
        assert_token_absent(token, _chain(caught.value), _all_logged(caplog))


def test_state_and_records_hold_no_token(sandbox: SandboxServer) -> None:
    run = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    assert run.states
    assert_token_absent(sandbox.token, json.dumps(run.messages))


def _command(config: dict[str, Any], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [*TAP_COMMAND, "--config", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.mark.parametrize(
    "args",
    [("--about", "--format", "json"), ("--about", "--format", "markdown"), ("--discover",)],
    ids=["about-json", "about-markdown", "discover"],
)
def test_about_and_discovery_show_no_token(
    live_sandbox: SandboxServer, tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = _command(_config(live_sandbox), tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
    assert_token_absent(live_sandbox.token, done.stdout, done.stderr)
    assert live_sandbox.request_log == [], "neither calls the API"


def _pasted(server: SandboxServer, where: str) -> dict[str, Any]:
    """A config with the token pasted into ``where`` as well."""
    token = server.token
    value = {
        "start_date": token,
        "app_ids": ["id123456789", token],
        "api_url": f"{server.base_url}?token={token}",
        "reports": [{**REPORT, "filters": {"pid": [token]}}],
    }[where]
    return _config(server, **{where: value})


@pytest.mark.parametrize("where", ["start_date", "app_ids", "api_url", "reports"])
def test_token_pasted_into_another_setting_is_refused_without_echo(
    sandbox: SandboxServer, where: str
) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        TapAppsFlyerCohort(config=_pasted(sandbox, where))
    assert f"setting '{where}': holds the API token" in str(caught.value)
    assert_token_absent(sandbox.token, _chain(caught.value))
    assert sandbox.request_log == []


def test_token_pasted_into_another_setting_stops_the_command_without_echo(
    live_sandbox: SandboxServer, tmp_path: Path
) -> None:
    run = run_tap_cli(_pasted(live_sandbox, "start_date"), tmp_path)
    assert run.exit_code != 0
    assert "Traceback" not in run.stderr
    [line] = [line for line in run.stderr.splitlines() if "holds the API token" in line]
    assert "'start_date'" in line
    assert_token_absent(live_sandbox.token, run.stderr, json.dumps(run.messages))
    assert live_sandbox.request_log == []


# ---- https only, except loopback --------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://hq1.appsflyer.com",
        "https://hq1.appsflyer.com/",
        "http://127.0.0.1:8080",
        "http://127.0.0.5",
        "http://localhost:9000",
        "http://[::1]:9000",
    ],
)
def test_https_or_loopback_is_accepted(sandbox: SandboxServer, url: str) -> None:
    tap = TapAppsFlyerCohort(config=_config(sandbox, api_url=url))
    assert tap.settings.api_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://hq1.appsflyer.com",
        "http://127.0.0.1.nip.io",  # a public name that merely starts like loopback
        "http://localhost.example.com",
        "http://10.0.0.1",
        "ftp://hq1.appsflyer.com",
        "hq1.appsflyer.com",
        "https://",
    ],
)
def test_plain_http_to_anything_else_is_refused(sandbox: SandboxServer, url: str) -> None:
    with pytest.raises(ConfigValidationError, match="api_url"):
        TapAppsFlyerCohort(config=_config(sandbox, api_url=url))
    assert sandbox.request_log == []


def test_loopback_by_name_really_syncs(sandbox: SandboxServer) -> None:
    # The control for the refusals: plain http to this machine works end to end.
    port = sandbox.base_url.rsplit(":", 1)[1]
    run = run_tap(_config(sandbox, api_url=f"http://localhost:{port}"), now=NOW, expect_exit=0)
    assert run.records["ltv"]
    assert sandbox.request_log
