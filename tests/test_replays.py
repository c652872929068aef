"""Recorded answers, replayed to the tap: a real answer that broke the tap becomes a test.

Each folder of ``tests/replays/`` is a scenario::

    tests/replays/<name>/
      scenario.json   {"note": "...", "today": "YYYY-MM-DD", "config": {...tap settings},
                       "expect": {"exit_code": 0 | 1,
                                  "records": {"<stream>": ">0" | <count>},
                                  "stop_line": ["words", ...]}}
      cases/          the recorded answers, as the sandbox's replay reads them
                      (python -m tap_appsflyer_cohort.sandbox.record writes one)

The tap runs against a sandbox serving those answers (calls no case matches are
simulated), with the sandbox's and the tap's clocks at ``today``. Whatever the answer, the
run must end without a traceback, exit as expected, keep the token out of its output, and
a rerun from its last state must not fail worse.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.testing import running_sandbox
from tests.helpers import run_tap, sandbox_config, utc_noon
from tests.tap_checks import assert_token_absent

REPLAYS = Path(__file__).resolve().parent / "replays"
SCENARIOS = sorted(p.name for p in REPLAYS.iterdir() if (p / "scenario.json").is_file())


def _scenario(name: str) -> dict[str, Any]:
    return json.loads((REPLAYS / name / "scenario.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", SCENARIOS)
def test_recorded_answers_end_as_expected(name: str, caplog: pytest.LogCaptureFixture) -> None:
    scenario = _scenario(name)
    expect = scenario["expect"]
    today = date.fromisoformat(scenario["today"])
    with running_sandbox(today=today, seed=42, replay_dir=REPLAYS / name / "cases") as server:
        config = sandbox_config(server, **scenario["config"])
        run = run_tap(config, now=utc_noon(today), expect_exit=expect["exit_code"])
        assert any(call.replayed for call in server.request_log), "no recorded answer was used"
        logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not any(r.exc_info for r in logged), "a traceback was logged"
        stops = [r.getMessage() for r in logged if r.getMessage().startswith("Sync stopped")]
        for words in expect.get("stop_line", []):
            assert len(stops) == 1, stops
            assert words in stops[0]
        for stream, count in expect.get("records", {}).items():
            got = len(run.records.get(stream, []))
            assert got > 0 if count == ">0" else got == count, (stream, got)
        assert_token_absent(server.token, json.dumps(run.messages))
        rerun = run_tap(config, state=run.last_state, now=utc_noon(today))
        assert rerun.exit_code <= run.exit_code


def test_every_scenario_is_documented() -> None:
    for name in SCENARIOS:
        scenario = _scenario(name)
        assert scenario.get("note"), name
        assert (REPLAYS / name / "cases").is_dir(), name
