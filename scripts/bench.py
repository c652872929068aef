"""Benchmarks of tap-appsflyer-cohort against the sandbox, printed as ratios from one run.

    python scripts/bench.py                  # everything (several minutes: the pacing part
                                             # waits on a 2-second-latency sandbox)
    python scripts/bench.py throughput       # only the CPU part (seconds)
    python scripts/bench.py pacing memory    # pick parts

Machines are noisy, so each figure is a ratio of two measurements taken in the same run:
1. throughput: the tap turning one 10,000-row, ~75-column sandbox CSV answer into RECORD
   messages on stdout, against a bare loop (csv module + msgspec) over the same bytes.
2. pacing: a 730-day backfill (3 reports x 2 apps) against a sandbox answering in 2 s with a
   limit of 600 calls/min: calls/min achieved, 429s seen, order of emission; then the same
   tap with one request in flight (the ratio is the speed-up).
3. memory: peak RSS of that backfill at two sizes (it must stay flat in the window count).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from typing import Any

import msgspec
import requests

from tap_appsflyer_cohort.columns import output_column
from tap_appsflyer_cohort.naming import parse_kpi_header
from tap_appsflyer_cohort.report import parse_report
from tap_appsflyer_cohort.sandbox.testing import running_sandbox
from tap_appsflyer_cohort.tap import TapAppsFlyerCohort

TODAY = date(2026, 6, 15)
NOW = datetime.combine(TODAY, dtime(12, 0), tzinfo=timezone.utc)
ROWS = 10_000
BENCH_PERIODS = [0, 1, 2, 3, 4, 5, 6, 7, 14, 21, 30, 45, 60, 90, 120, 180]
GROUPINGS = ["date", "pid", "c", "af_adset", "af_ad", "geo"]
APPS = ["id123456789", "com.example.app"]


def _report(layout: str) -> dict[str, Any]:
    return {
        "name": f"bench_{layout}",
        "groupings": GROUPINGS,
        "kpis": ["af_purchase"],
        "aggregation_type": "cumulative",
        "filters": {"period": BENCH_PERIODS},
        "layout": layout,
    }


@contextlib.contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    with open(os.devnull, "wb") as sink:
        text = io.TextIOWrapper(sink, encoding="utf-8", write_through=True)
        with contextlib.redirect_stdout(text):
            yield
        text.flush()


# ---------------------------------------------------------------------------- throughput


def _fetch_answer(server: Any, layout: str, start: date, end: date) -> bytes:
    report = parse_report(_report(layout), 0)
    body = report.query_body("af_purchase", start.isoformat(), end.isoformat(), partial=False)
    response = requests.post(
        f"{server.base_url}/api/cohorts/v1/data/app/{APPS[0]}",
        params={"format": "csv"},
        json=body,
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=60,
    )
    response.raise_for_status()
    return response.content


def _floor(payload: bytes, layout: str, out: Any) -> int:
    """The least work: read the CSV, type the numbers, encode RECORD messages."""
    encoder = msgspec.json.Encoder()
    reader = csv.reader(io.StringIO(payload.decode("utf-8")))
    header = next(reader)
    group_idx = [header.index(g) for g in GROUPINGS]
    names = [g for g in GROUPINGS]
    kpi_cols = []
    for i, name in enumerate(header):
        parsed = parse_kpi_header(name, "af_purchase")
        if parsed:
            kpi_cols.append((i, parsed.function, parsed.period))
    users_i, ecpi_i, cost_i = header.index("users"), header.index("ecpi"), header.index("cost")
    count = 0
    write = out.write

    def num(text: str) -> float | None:
        return float(text) if text else None

    if layout == "wide":
        wide_names = [(i, output_column("af_purchase", f, p)) for i, f, p in kpi_cols]
        for row in reader:
            record = {"app_id": APPS[0]}
            record.update(zip(names, [row[i] for i in group_idx], strict=True))
            record["users"] = int(row[users_i])
            record["ecpi"] = num(row[ecpi_i])
            record["cost"] = num(row[cost_i])
            for i, name in wide_names:
                record[name] = num(row[i])
            write(encoder.encode({"type": "RECORD", "stream": "bench", "record": record}))
            write(b"\n")
            count += 1
        return count
    by_period: dict[int, list[tuple[int, str]]] = {}
    for i, function, period in kpi_cols:
        by_period.setdefault(period, []).append((i, output_column("af_purchase", function)))
    for row in reader:
        head = {"app_id": APPS[0]}
        head.update(zip(names, [row[i] for i in group_idx], strict=True))
        head["users"] = int(row[users_i])
        head["ecpi"] = num(row[ecpi_i])
        head["cost"] = num(row[cost_i])
        for period, columns in by_period.items():
            record = dict(head)
            record["period"] = period
            for i, name in columns:
                record[name] = num(row[i])
            write(encoder.encode({"type": "RECORD", "stream": "bench", "record": record}))
            write(b"\n")
            count += 1
    return count


def _tap_config(server: Any, **extra: Any) -> dict[str, Any]:
    config = {
        "api_token": server.token,
        "app_ids": [APPS[0]],
        "api_url": server.base_url,
        "requests_per_minute": 1_000_000,
    }
    config.update(extra)
    return config


def _time_tap(config: dict[str, Any]) -> float:
    with _stdout_to_devnull():
        tap = TapAppsFlyerCohort(config=config)
        started = time.perf_counter()
        tap.sync_all()
        return time.perf_counter() - started


def bench_throughput() -> dict[str, Any]:
    """Tap vs floor on the same 10,000-row answer, for both layouts."""
    results: dict[str, Any] = {}
    # Real clock on both sides: a patched clock would slow the tap, not the floor.
    with running_sandbox(requests_per_minute=10**6, row_cap=ROWS) as server:
        # Final dates (older than the largest period): the plan is one window, one call.
        end = server.today - timedelta(days=200)
        start = end - timedelta(days=59)
        for layout in ("wide", "long"):
            payload = _fetch_answer(server, layout, start, end)
            rows = payload.count(b"\n") - 1
            columns = len(payload.split(b"\n", 1)[0].split(b","))
            config = _tap_config(
                server,
                start_date=start.isoformat(),
                end_date=end.isoformat(),
                reports=[_report(layout)],
                row_cap=ROWS + 1,  # the answer is exactly the cap: accept it, for the bench
            )
            floors, taps = [], []
            for _ in range(3):
                with open(os.devnull, "wb") as sink:
                    started = time.perf_counter()
                    records = _floor(payload, layout, sink)
                    floors.append(time.perf_counter() - started)
                taps.append(_time_tap(config))
            floor, tap = statistics.median(floors), statistics.median(taps)
            results[layout] = {
                "rows": rows,
                "columns": columns,
                "records": records,
                "floor_s": round(floor, 3),
                "tap_s": round(tap, 3),
                "ratio": round(tap / floor, 2),
                "tap_records_per_s": round(records / tap),
            }
    return results


# ---------------------------------------------------------------------------- pacing


def _pacing_reports() -> list[dict[str, Any]]:
    """Three on_day reports of two KPIs each: the planner's largest number of calls."""
    common = {"groupings": ["date", "pid"], "aggregation_type": "on_day"}
    return [
        {"name": "retention", "kpis": ["sessions", "uninstalls"], "layout": "wide", **common},
        {"name": "purchases", "kpis": ["af_purchase", "revenue"], "layout": "wide", **common},
        {
            "name": "revenue_days",
            "kpis": ["revenue", "roas"],
            "filters": {"period": [0, 1, 3, 7, 14, 30]},
            **common,
        },
    ]


def _run_backfill(
    days: int, in_flight: int, rpm: int, latency: float, time_limit: float | None = None
) -> dict[str, Any]:
    """Run the tap as a command (its own process) against a sandbox: calls, pace, RSS.

    With ``time_limit`` the run is stopped after that many seconds and its pace is
    measured over what it did (a one-request-at-a-time backfill would take many minutes).
    """
    with running_sandbox(requests_per_minute=rpm, latency=latency) as server:
        start = server.today - timedelta(days=days)
        config = {
            "api_token": server.token,
            "app_ids": APPS,
            "api_url": server.base_url,
            "start_date": start.isoformat(),
            "requests_per_minute": rpm,
            "max_requests_in_flight": in_flight,
            "reports": _pacing_reports(),
        }
        path = f"/tmp/bench-config-{os.getpid()}.json"
        with open(path, "w") as handle:
            json.dump(config, handle)
        code = (
            "import resource, sys\n"
            "from tap_appsflyer_cohort.tap import TapAppsFlyerCohort\n"
            f"tap = TapAppsFlyerCohort(config={path!r})\n"
            "try:\n    tap.sync_all()\nfinally:\n"
            "    usage = resource.getrusage(resource.RUSAGE_SELF)\n"
            # ru_maxrss survives exec (it would count the benchmark's own fork): read the
            # process's own high-water mark instead.
            "    peak = usage.ru_maxrss\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            peak = int(line.split()[1])\n"
            "    print('RSS_KB', peak, 'CPU_S', usage.ru_utime + usage.ru_stime,"
            " file=sys.stderr)\n"
        )
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            stdout, stderr = process.communicate(timeout=time_limit or 3600)
            finished = True
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            finished = False
        elapsed = time.perf_counter() - started
        os.unlink(path)
        log = server.request_log
    if finished and process.returncode != 0:
        raise RuntimeError(stderr.decode()[-3000:])
    accepted = [r for r in log if r.status == 200]
    first, last = min(r.at for r in log), max(r.at for r in log)
    span = (last - first).total_seconds() + latency
    result: dict[str, Any] = {
        "days": days,
        "in_flight": in_flight,
        "finished": finished,
        "calls": len(accepted),
        "http_429": sum(1 for r in log if r.status == 429),
        "seconds": round(elapsed, 1),
        "calls_per_min": round(len(accepted) / span * 60, 1),
        "records_in_order": _emitted_in_order(stdout),
    }
    if finished:
        figures = stderr.decode().rsplit("RSS_KB", 1)[1].split()
        result["peak_rss_mb"] = round(int(figures[0]) / 1024, 1)
        result["tap_cpu_s"] = round(float(figures[2]), 1)
    return result


def _emitted_in_order(stdout: bytes) -> bool:
    """Per stream and app: records of a window come in key order, windows oldest first.

    Each STATE message closes a window; within a window dates never decrease, and a
    window never starts before... the windows of one partition may interleave old final
    dates and young maturing ones only in planner order, which is oldest first.
    """
    last: dict[tuple[str, str], str] = {}
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            return False  # a cut line: only possible when the run was killed mid-write
        if message.get("type") != "RECORD":
            continue
        record = message["record"]
        key = (message["stream"], record["app_id"])
        if record["date"] < last.get(key, ""):
            return False
        last[key] = record["date"]
    return True


def bench_pacing() -> dict[str, Any]:
    """600 calls/min, 2 s latency: pipelined vs one request in flight."""
    pipelined = _run_backfill(730, in_flight=32, rpm=600, latency=2.0)
    single = _run_backfill(730, in_flight=1, rpm=600, latency=2.0, time_limit=40)
    return {
        "limit_calls_per_min": 600,
        "latency_s": 2.0,
        "pipelined": pipelined,
        "one_in_flight": single,
        "share_of_limit": round(pipelined["calls_per_min"] / 600, 3),
        "speed_up": round(pipelined["calls_per_min"] / single["calls_per_min"], 1),
    }


def bench_memory() -> dict[str, Any]:
    """Peak RSS at two backfill sizes: the pacing setup, and an instant sandbox.

    The instant sandbox answers faster than records can be written, which is the worst
    case for memory: answers wait in the queue (bounded by the prefetcher's budget).
    """
    paced = {
        days: _run_backfill(days, in_flight=32, rpm=600, latency=2.0)["peak_rss_mb"]
        for days in (180, 730)
    }
    instant = {
        days: _run_backfill(days, in_flight=8, rpm=100_000, latency=0.0)["peak_rss_mb"]
        for days in (180, 730)
    }
    return {
        "paced_600_per_min_2s_latency_rss_mb": paced,
        "instant_sandbox_rss_mb": instant,
        "rss_ratio_730_to_180_paced": round(paced[730] / paced[180], 2),
        "rss_ratio_730_to_180_instant": round(instant[730] / instant[180], 2),
    }


BENCHES: dict[str, Callable[[], dict[str, Any]]] = {
    "throughput": bench_throughput,
    "pacing": bench_pacing,
    "memory": bench_memory,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHES)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for name in chosen:
        started = time.perf_counter()
        result = BENCHES[name]()
        print(f"== {name} ({time.perf_counter() - started:.0f} s)")
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
