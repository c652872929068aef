"""Shared fixtures: a sandbox API on a free loopback port, started and stopped per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox

SANDBOX_TODAY = date(2026, 6, 15)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A fresh sandbox whose clock reads SANDBOX_TODAY (tests may change it)."""
    with running_sandbox(today=SANDBOX_TODAY, seed=42) as server:
        yield server


@pytest.fixture
def live_sandbox() -> Iterator[SandboxServer]:
    """A sandbox on the real clock, for the tap run as a command (its clock cannot be set)."""
    with running_sandbox(seed=42) as server:
        yield server


@pytest.fixture(autouse=True)
def _token_never_in_output(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """After every test that ran a sandbox: its token is in nothing the test captured.

    Looks in log records (and their tracebacks), in the tap's own output (stdout and
    STATE, stderr of commands) of every run made through ``tests.helpers``, in what pytest
    captured from stdout/stderr, and in ``*.log`` files under the test's folders.
    """
    import json
    import logging
    from pathlib import Path

    from tests.helpers import TapRun

    runs: list[TapRun] = []
    keep_post_init = TapRun.__post_init__

    def recorded(run: TapRun) -> None:
        keep_post_init(run)
        runs.append(run)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TapRun, "__post_init__", recorded)
        yield
    values = request.node.funcargs.values() if hasattr(request.node, "funcargs") else ()
    tokens = {v.token for v in values if isinstance(v, SandboxServer)}
    if not tokens:
        return
    formatter = logging.Formatter()
    texts = [
        (f"log record {r.name}", r.getMessage())
        for phase in ("setup", "call")
        for r in caplog.get_records(phase)
    ]
    texts += [
        (f"traceback logged by {r.name}", formatter.formatException(r.exc_info))
        for phase in ("setup", "call")
        for r in caplog.get_records(phase)
        if r.exc_info
    ]
    texts += [(f"run #{i} stderr", run.stderr) for i, run in enumerate(runs)]
    texts += [(f"run #{i} messages", json.dumps(run.messages)) for i, run in enumerate(runs)]
    # What pytest captured from stdout/stderr in setup and call (kept for the report).
    texts += [
        (f"captured {key} ({when})", content)
        for when, key, content in getattr(request.node, "_report_sections", [])
    ]
    folders = [v for v in values if isinstance(v, Path) and v.is_dir()]
    texts += [
        (str(log), log.read_text(errors="replace")) for f in folders for log in f.rglob("*.log")
    ]
    for label, text in texts:
        if any(token in text for token in tokens):
            # Never echo the token: pytest would print it with the failure.
            pytest.fail(f"the sandbox's API token appears in {label}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _temp_root_made_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Make pytest's temporary root before any test: module fixtures that call ``mktemp``
    from several threads at once (the config-error commands) would race to make it."""
    tmp_path_factory.getbasetemp()
