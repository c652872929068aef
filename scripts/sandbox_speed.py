"""Measure the sandbox: small queries per second and the time of a 10,000-row CSV answer.

Run: .venv/bin/python scripts/sandbox_speed.py
"""

from __future__ import annotations

import statistics
import time
from datetime import date

import requests

from tap_appsflyer_cohort.contract import API_PATH
from tap_appsflyer_cohort.sandbox.testing import running_sandbox

SMALL_QUERIES = 500
BIG_REPEATS = 5
WIDE = ["date", "pid", "c", "af_adset", "af_ad", "geo"]


def main() -> None:
    with running_sandbox(
        today=date(2026, 6, 15),
        requests_per_minute=10**9,
        requests_per_day=10**9,
        row_cap=10**9,
    ) as server:
        url = server.base_url + API_PATH.format(app_id="id123456789")
        headers = {"Authorization": f"Bearer {server.token}"}
        with requests.Session() as session:
            small = {
                "cohort_type": "user_acquisition",
                "from": "2026-05-01",
                "to": "2026-05-01",
                "groupings": ["date", "pid"],
                "kpis": ["af_purchase"],
                "aggregation_type": "cumulative",
                "filters": {"period": [0, 1, 7]},
            }
            session.post(url, json=small, headers=headers).raise_for_status()  # warm up
            started = time.perf_counter()
            for i in range(SMALL_QUERIES):
                # Vary the body so every call is evaluated, not served from the cache.
                small["min_cohort_size"] = 1 + i
                session.post(url, json=small, headers=headers).raise_for_status()
            small_rate = SMALL_QUERIES / (time.perf_counter() - started)

            big = {
                "cohort_type": "user_acquisition",
                "from": "2026-03-01",
                "to": "2026-04-30",
                "groupings": WIDE,
                "kpis": ["af_purchase"],
                "aggregation_type": "cumulative",
                "filters": {"period": [*range(15), 30, 60, 90]},
            }
            timings, cold = [], []
            for repeat in range(BIG_REPEATS):
                for uncached in (True, False):
                    body = {**big, "min_cohort_size": 1 + repeat} if uncached else big
                    started = time.perf_counter()
                    response = session.post(url, json=body, headers=headers)
                    response.raise_for_status()
                    elapsed = time.perf_counter() - started
                    (cold if uncached else timings).append(elapsed)
            lines = response.text.splitlines()
            rows, columns = len(lines) - 1, len(lines[0].split(","))

    print(f"small queries: {small_rate:.0f}/s ({SMALL_QUERIES} calls, one keep-alive session)")
    print(
        f"big CSV answer: {rows} rows x {columns} columns, {len(response.content) / 1e6:.1f} MB; "
        f"median {statistics.median(timings) * 1000:.0f} ms repeated (answer cache), "
        f"{statistics.median(cold) * 1000:.0f} ms evaluated and rendered afresh"
    )


if __name__ == "__main__":
    main()
