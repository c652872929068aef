"""A bad config stops the tap at start-up: one line naming report and field, no API call.

Every case runs the real command (exit code, stderr) against a sandbox whose request log
must stay empty. The commands start together (each is mostly interpreter start-up), and
each case is still its own test.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tap_appsflyer_cohort.tap import TapAppsFlyerCohort
from tests.conftest import SANDBOX_TODAY
from tests.helpers import TapRun, run_tap_cli, sandbox_config
from tests.tap_checks import assert_token_absent

EIGHT = ["date", "pid", "c", "geo", "af_adset", "af_ad", "af_prt", "site_id"]
GOOD = {"name": "r1", "groupings": ["date", "pid"], "kpis": ["sessions"]}


def _report(**fields: Any) -> dict[str, Any]:
    return {**GOOD, **fields}


#: case -> (config overrides, None to drop a key; words the error line must hold: the
#: report (or setting) and the field, and the value at fault where there is one)
CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "unknown dimension": (
        {"reports": [_report(groupings=["date", "campaign_name"])]},
        ("report 'r1'", "'groupings'", "campaign_name"),
    ),
    "eight groupings": (
        {"reports": [_report(groupings=EIGHT)]},
        ("report 'r1'", "'groupings'", "at most 7"),
    ),
    "revenue_type as grouping": (
        {"reports": [_report(groupings=["date", "revenue_type"])]},
        ("report 'r1'", "'groupings'", "revenue_type"),
    ),
    "partial_data with on_day": (
        {"reports": [_report(aggregation_type="on_day", partial_data=True)]},
        ("report 'r1'", "'partial_data'", "cumulative"),
    ),
    "uninstalls with unified": (
        {"reports": [_report(kpis=["uninstalls"], cohort_type="unified")]},
        ("report 'r1'", "'kpis'", "uninstalls", "unified"),
    ),
    "malformed start_date": (
        {"start_date": "2026-13-01"},
        ("'start_date'", "2026-13-01"),
    ),
    "two reports with one name": (
        {"reports": [_report(), _report(kpis=["revenue"])]},
        ("report 'r1'", "'name'", "two reports"),
    ),
    "no app": (
        {"app_ids": None},
        ("setting 'app_ids'", "is required", "or app_ids in every report"),
    ),
    "column collision": (
        {"reports": [_report(kpis=["Start Trial Auth", "start_trial_auth"])]},
        ("report 'r1'", "'kpis'", "Start Trial Auth", "start_trial_auth"),
    ),
    "plain http to a remote host": (
        {"api_url": "http://hq1.appsflyer.com"},
        ("'api_url'", "https"),
    ),
    "unknown report field": (
        {"reports": [_report(colour="red")]},
        ("report 'r1'", "'colour'"),
    ),
}

#: More cases of the same rules, checked in-process (the command path is the same).
MORE_CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "seven without date is eight": (
        {"reports": [_report(groupings=EIGHT[1:])]},
        ("report 'r1'", "'groupings'", "at most 7"),
    ),
    "malformed end_date": (
        {"end_date": "15/06/2026"},
        ("'end_date'", "15/06/2026"),
    ),
    "empty app list": (
        {"app_ids": []},
        ("setting 'app_ids'", "is required", "or app_ids in every report"),
    ),
    "period out of range": (
        {"reports": [_report(filters={"period": [0, 181]})]},
        ("report 'r1'", "'filters.period'", "181"),
    ),
    "unknown filter dimension": (
        {"reports": [_report(filters={"country": ["US"]})]},
        ("report 'r1'", "'filters.country'"),
    ),
    "bad report name": (
        {"reports": [_report(name="Retention Report")]},
        ("reports[0]", "'name'", "Retention Report"),
    ),
}


@pytest.fixture(scope="module")
def sandbox_for_errors() -> Iterator[SandboxServer]:
    with running_sandbox(today=SANDBOX_TODAY, seed=42) as server:
        yield server


@pytest.fixture(scope="module")
def runs(
    sandbox_for_errors: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, TapRun]:
    """Every case run as a command, concurrently."""

    def run(case: str) -> TapRun:
        overrides, _ = CASES[case]
        config = sandbox_config(sandbox_for_errors, **{"reports": [GOOD], **overrides})
        config = {key: value for key, value in config.items() if value is not None}
        return run_tap_cli(config, tmp_path_factory.mktemp("case"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_stops_before_any_call(
    case: str, runs: dict[str, TapRun], sandbox_for_errors: SandboxServer
) -> None:
    run = runs[case]
    _, words = CASES[case]
    assert run.exit_code != 0
    assert "Traceback" not in run.stderr
    assert not run.messages, "nothing may reach stdout"
    naming = [line for line in _error_lines(run.stderr) if all(w in line for w in words)]
    assert len(naming) == 1, f"no single line holds {words}:\n{run.stderr}"
    assert_token_absent(sandbox_for_errors.token, run.stderr)
    assert sandbox_for_errors.request_log == []


def test_good_config_passes_the_same_checks(live_sandbox: SandboxServer, tmp_path: Path) -> None:
    # The control: the same config without a fault passes start-up and calls the API.
    start = (live_sandbox.today - timedelta(days=3)).isoformat()
    config = sandbox_config(live_sandbox, reports=[GOOD], start_date=start)
    run = run_tap_cli(config, tmp_path)
    assert run.exit_code == 0, run.stderr
    assert _error_lines(run.stderr) == []
    assert run.records["r1"]
    assert live_sandbox.request_log


@pytest.mark.parametrize("case", list(MORE_CASES))
def test_more_bad_configs_name_report_and_field(
    case: str, sandbox_for_errors: SandboxServer
) -> None:
    overrides, words = MORE_CASES[case]
    config = sandbox_config(sandbox_for_errors, **{"reports": [GOOD], **overrides})
    with pytest.raises(ConfigValidationError) as caught:
        TapAppsFlyerCohort(config=config)
    assert [e for e in caught.value.errors if all(w in e for w in words)], caught.value.errors
    assert sandbox_for_errors.request_log == []
