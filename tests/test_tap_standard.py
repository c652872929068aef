"""The SDK's standard tap tests, run against a sandbox on the real clock.

The SDK discovers streams at collection time, so the config (sandbox address and token)
must exist before any fixture runs: the port and token are chosen at import, and the
sandbox itself starts for this module only.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_appsflyer_cohort.sandbox.server import generate_token
from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tap_appsflyer_cohort.tap import TapAppsFlyerCohort
from tests.tap_checks import assert_token_absent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PORT = _free_port()
TOKEN = generate_token()
START = (datetime.now(timezone.utc).date() - timedelta(days=4)).isoformat()
CONFIG = {
    "api_token": TOKEN,
    "app_ids": ["id123456789", "com.example.app"],
    "start_date": START,
    "api_url": f"http://127.0.0.1:{PORT}",
    "requests_per_minute": 100_000,
    "max_retries": 1,
    "reports": [
        {
            "name": "retention",
            "groupings": ["date", "pid", "c"],
            "kpis": ["sessions"],
            "aggregation_type": "on_day",
            "filters": {"period": [0, 1, 2]},
        },
        {
            "name": "revenue_wide",
            "groupings": ["date", "geo"],
            "kpis": ["revenue", "Start Trial Auth"],
            "layout": "wide",
            "filters": {"period": [0, 1, 3]},
        },
        {
            "name": "hourly",
            "groupings": ["date", "pid"],
            "kpis": ["sessions"],
            "granularity": "hour",
            "filters": {"period": [0]},
        },
    ],
}


@pytest.fixture(scope="module", autouse=True)
def sandbox_for_module() -> Iterator[SandboxServer]:
    with running_sandbox(seed=42, token=TOKEN, port=PORT) as server:
        yield server


StandardTests = get_tap_test_class(
    TapAppsFlyerCohort,
    config=CONFIG,
    suite_config=SuiteConfig(max_records_limit=50),
)


class TestTapAppsFlyerCohort(StandardTests):  # type: ignore[misc,valid-type]
    """The generated suite, plus a check that its records really came over HTTP."""

    def test_records_came_from_the_sandbox(self, runner, sandbox_for_module) -> None:
        # The suite's record limit stops each stream early, so not every app is asked.
        calls = sandbox_for_module.request_log
        assert calls
        assert {c.app_id for c in calls} <= set(CONFIG["app_ids"])
        assert all(c.status == 200 for c in calls)
        assert runner.records["retention"]
        assert runner.records["revenue_wide"]
        assert runner.records["hourly"]
        assert_token_absent(TOKEN, json.dumps(runner.raw_messages))
