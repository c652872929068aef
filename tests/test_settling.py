"""Values that keep changing after a day is complete (cost) settle in the warehouse.

The vendor says campaign cost is pulled about every four hours, and networks restate cost
for days. The sandbox's ``settling_days`` serves a date's cost (and so ecpi and ROAS)
growing toward its final value; daily runs with the tap's default re-read policy must end
with the warehouse equal to the API's final answer for every date whose cost has settled.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tap_appsflyer_cohort.contract import COST_SETTLING_DAYS
from tap_appsflyer_cohort.sandbox.testing import running_sandbox
from tests.cohort_truth import days, emitted, truth
from tests.helpers import run_tap, sandbox_config, utc_noon
from tests.reliability_support import upserted

APP = "id123456789"
FIRST_DAY = date(2026, 3, 10)
RUNS = 16
#: A short report: its last period completes long before cost settles.
REPORT = {
    "name": "roas_by_source",
    "groupings": ["date", "pid"],
    "kpis": ["roas"],
    "aggregation_type": "cumulative",
    "filters": {"period": [0, 1, 3]},
}


def _daily_runs(report: dict[str, Any]) -> tuple[dict[Any, Any], Any, int]:
    """Run once a day for RUNS days, state carried; the upserted table, truth, calls."""
    with running_sandbox(today=FIRST_DAY, seed=7, settling_days=COST_SETTLING_DAYS) as server:
        state = None
        messages: list[list[dict[str, Any]]] = []
        for n in range(RUNS):
            today = FIRST_DAY + timedelta(days=n)
            server.set_today(today)
            config = sandbox_config(
                server, start_date=(FIRST_DAY - timedelta(days=5)).isoformat(), reports=[report]
            )
            run = run_tap(config, state=state, now=utc_noon(today), expect_exit=0)
            state = run.last_state
            messages.append(run.messages)
        last = FIRST_DAY + timedelta(days=RUNS - 1)
        settled = days(FIRST_DAY - timedelta(days=5), last - timedelta(COST_SETTLING_DAYS + 2))
        final = truth(server, APP, report, settled, as_of="final")
        calls = len(server.request_log)
    table = upserted(*messages)
    return table, (final, {d.isoformat() for d in settled}), calls


def test_daily_runs_end_with_the_settled_values() -> None:
    table, (final, settled), _ = _daily_runs(REPORT)
    loaded = emitted([r for r in table.values() if r["date"] in settled], REPORT)
    assert loaded == final


def test_without_re_reads_the_warehouse_keeps_unsettled_cost() -> None:
    """The control: with restatement_days 0 the same runs leave cost short of final."""
    table, (final, settled), _ = _daily_runs({**REPORT, "restatement_days": 0})
    loaded = emitted([r for r in table.values() if r["date"] in settled], REPORT)
    differing = [key for key in final if loaded.get(key) != final[key]]
    assert differing
    assert all(loaded[key]["cost"] < final[key]["cost"] for key in differing if final[key]["cost"])


@pytest.mark.parametrize(("periods", "restated"), [([0, 1, 3], 5), ([0, 7], 0), ([0, 30], 0)])
def test_default_restatement_reads_each_date_once_its_cost_settled(
    periods: list[int], restated: int
) -> None:
    from tap_appsflyer_cohort.report import parse_report

    report = parse_report({**REPORT, "filters": {"period": periods}}, 0)
    assert report.restated_days == restated
    assert max(report.max_period + 1, report.max_period + restated) >= COST_SETTLING_DAYS + 1
