"""Measure the sandbox: small queries per second, a 10,000-row CSV answer, and the CPU of
the 60-day queries of the pacing benchmark (``scripts/bench.py pacing``).

Run: .venv/bin/python scripts/sandbox_speed.py
"""

from __future__ import annotations

import statistics
import time
from datetime import date, timedelta
from typing import Any

import requests

from tap_appsflyer_cohort.contract import API_PATH
from tap_appsflyer_cohort.sandbox.options import SandboxOptions
from tap_appsflyer_cohort.sandbox.server import SandboxServer
from tap_appsflyer_cohort.sandbox.testing import running_sandbox

TODAY = date(2026, 6, 15)
IOS = "id123456789"
SMALL_QUERIES = 500
BIG_REPEATS = 5
WIDE = ["date", "pid", "c", "af_adset", "af_ad", "geo"]
#: The pacing benchmark's reports: (KPI, period filter or None for the default periods).
PACING_QUERIES: list[tuple[str, list[int] | None]] = [
    ("sessions", None),
    ("uninstalls", None),
    ("af_purchase", None),
    ("revenue", None),
    ("revenue", [0, 1, 3, 7, 14, 30]),
    ("roas", [0, 1, 3, 7, 14, 30]),
]
PACING_REPEATS = 3


def http_figures() -> None:
    """Small queries per second and the time of a 10,000-row CSV answer, over HTTP."""
    with running_sandbox(
        today=TODAY, requests_per_minute=10**9, requests_per_day=10**9, row_cap=10**9
    ) as server:
        url = server.base_url + API_PATH.format(app_id=IOS)
        headers = {"Authorization": f"Bearer {server.token}"}
        with requests.Session() as session:
            small: dict[str, Any] = {
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
            timings: list[float] = []
            cold: list[float] = []
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


def _cpu_ms(server: SandboxServer, body: dict[str, Any]) -> float:
    """CPU milliseconds of one in-process answer."""
    started = time.thread_time()
    server.answer(IOS, body)
    return (time.thread_time() - started) * 1000


def pacing_figures() -> None:
    """CPU of one 60-day query of the pacing benchmark's shape, in process, per KPI.

    ``cold``: a fresh server (cells drawn, sums computed); ``cells drawn``: another KPI
    of the window already drew the day's cells; ``sums kept``: the same days and groups
    asked again (another period set or minimum cohort size). Best of a few runs.
    """
    last = TODAY - timedelta(days=300)
    body: dict[str, Any] = {
        "cohort_type": "user_acquisition",
        "from": (last - timedelta(days=59)).isoformat(),
        "to": last.isoformat(),
        "groupings": ["date", "pid"],
        "aggregation_type": "on_day",
    }
    days = [last - timedelta(days=n) for n in range(60)]
    print("60-day on_day query by date and pid, 300 days ago (CPU ms, best of 3):")
    for kpi, periods in PACING_QUERIES:
        query = {**body, "kpis": [kpi], **({"filters": {"period": periods}} if periods else {})}
        best: dict[str, float] = {}
        for _ in range(PACING_REPEATS):
            server = SandboxServer(SandboxOptions(today=TODAY))
            cold = _cpu_ms(server, query)
            server = SandboxServer(SandboxOptions(today=TODAY))
            for day in days:
                server.account.day_cells(IOS, day)
            drawn = _cpu_ms(server, query)
            kept = _cpu_ms(server, {**query, "min_cohort_size": 2})
            for name, value in (("cold", cold), ("drawn", drawn), ("kept", kept)):
                best[name] = min(best.get(name, value), value)
        shown = f"{kpi} ({len(periods) if periods else 'default'} periods)"
        print(
            f"  {shown:30s} cold {best['cold']:4.0f}, cells drawn {best['drawn']:4.0f}, "
            f"sums kept {best['kept']:3.0f}"
        )


def main() -> None:
    http_figures()
    pacing_figures()


if __name__ == "__main__":
    main()
