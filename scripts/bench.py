"""Benchmarks of tap-appsflyer-cohort against the sandbox, printed as ratios from one run.

    python scripts/bench.py                  # everything (several minutes: the pacing part
                                             # waits on a 2-second-latency sandbox)
    python scripts/bench.py throughput       # only the CPU part (seconds)
    python scripts/bench.py pacing memory    # pick parts
    python scripts/bench.py e2e              # tap | real target-postgres and target-duckdb
                                             # (not in the default run; --cases a: ~15 min,
                                             # --cases b --no-levers: ~10 min)

Machines are noisy, so each figure is a ratio of two measurements taken in the same run:
1. throughput: the tap turning one 10,000-row, ~75-column sandbox CSV answer into RECORD
   messages on stdout, against a bare loop (csv module + msgspec) over the same bytes.
2. pacing: a 730-day backfill (3 reports x 2 apps) against a sandbox answering in 2 s with a
   limit of 300 calls/min (the run outlasts the server's 60 s window): calls/min achieved,
   429s seen, the fullest 60 s window and its slack, order of emission; then the same tap
   with one request in flight (the ratio is the speed-up).
3. memory: peak RSS of that backfill at two sizes (it must stay flat in the window count).
4. e2e: the pipeline as users run it, the tap piped into real MeltanoLabs target-postgres
   and target-duckdb with the loader settings meltano.yml ships, against a sandbox answering
   in 1 s +- 0.25 s: wall time / API time (calls / limit). Each case is captured once (tap
   alone, instant sandbox) and loaded alone with each loader setting (the levers), so the
   README can give records, bytes and load seconds per call by layout and setting.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from pathlib import Path
from typing import Any

import msgspec
import requests
import yaml

from tap_appsflyer_cohort.columns import PROVENANCE, output_column
from tap_appsflyer_cohort.naming import parse_kpi_header
from tap_appsflyer_cohort.report import DEFAULT_REPORTS, parse_report
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
        admitted = _record_admissions(server)
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
    # Pace: n calls admitted over n - 1 intervals, on the limiter's own clock (the old
    # figure took the log's span plus one latency, which is not pace: ~5 % at 2 s, 42 s).
    arrivals = sorted(admitted)
    span = arrivals[-1] - arrivals[0]
    result: dict[str, Any] = {
        "days": days,
        "in_flight": in_flight,
        "finished": finished,
        "calls": len(accepted),
        "http_429": sum(1 for r in log if r.status == 429),
        "seconds": round(elapsed, 1),
        "calls_per_min": round((len(accepted) - 1) / span * 60, 1),
        **_window_headroom(arrivals, rpm),
        "records_in_order": _emitted_in_order(stdout),
    }
    if finished:
        figures = stderr.decode().rsplit("RSS_KB", 1)[1].split()
        result["peak_rss_mb"] = round(int(figures[0]) / 1024, 1)
        result["tap_cpu_s"] = round(float(figures[2]), 1)
    return result


def _record_admissions(server: Any) -> list[float]:
    """The monotonic clock of every call the sandbox's rate limiter accepted.

    These are the instants the limiter judges (the request log's ``at`` comes after the
    answer is computed, up to a second later when 32 answers are computed at once).
    """
    limiter = server._limiter  # a benchmark may look inside the sandbox
    admit = limiter.admit
    admitted: list[float] = []

    def recording(token: str, per_minute: int, per_day: int, clock: float, now: Any) -> Any:
        refused = admit(token, per_minute, per_day, clock, now)
        if refused is None:
            admitted.append(clock)
        return refused

    limiter.admit = recording
    return admitted


def _window_headroom(arrivals: list[float], rpm: int) -> dict[str, Any]:
    """The server's view of the pace: the fullest 60-second window, and its slack.

    The sandbox refuses a call when the 60 s before it already hold ``rpm`` accepted calls,
    so call k + rpm must arrive at least 60 s after call k; the least such gap minus 60 s
    is the slack the pacer's margin left (what send jitter may eat before a 429).
    """
    fullest, j = 0, 0
    for i, at in enumerate(arrivals):
        while arrivals[j] <= at - 60.0:
            j += 1
        fullest = max(fullest, i - j + 1)
    gaps = [arrivals[k + rpm] - arrivals[k] for k in range(len(arrivals) - rpm)]
    return {
        "fullest_60s_window": fullest,
        "min_slack_s": round(min(gaps) - 60.0, 3) if gaps else None,
    }


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


PACING_RPM = 300  # 420 calls take 84 s: the server's 60 s windows fill, so a 429 can happen


def bench_pacing() -> dict[str, Any]:
    """300 calls/min, 2 s latency: pipelined vs one request in flight."""
    pipelined = _run_backfill(730, in_flight=32, rpm=PACING_RPM, latency=2.0)
    single = _run_backfill(730, in_flight=1, rpm=PACING_RPM, latency=2.0, time_limit=40)
    return {
        "limit_calls_per_min": PACING_RPM,
        "latency_s": 2.0,
        "pipelined": pipelined,
        "one_in_flight": single,
        "share_of_limit": round(pipelined["calls_per_min"] / PACING_RPM, 3),
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


# ---------------------------------------------------------------------------- end to end

ROOT = Path(__file__).resolve().parent.parent
TARGET_VENVS = ROOT / ".venv-targets"
TAP_COMMAND = [sys.executable, "-m", "tap_appsflyer_cohort"]
POSTGRES = {
    "host": "127.0.0.1",
    "port": 5432,
    "user": "postgres",
    "password": "",
    "database": "test",
}
#: Realistic latency: 0.75 s plus up to 0.5 s (1 s +- 0.25 s).
E2E_LATENCY, E2E_JITTER = 0.75, 0.5
#: (b): the oldest days only, where every period is complete: the heaviest answers per call.
HEAVY_DAYS = 180
HEAVY_REPORT: dict[str, Any] = {
    "name": "heavy_revenue",
    "groupings": ["date", "pid", "c", "af_adset", "geo"],
    "kpis": ["revenue"],
    "aggregation_type": "cumulative",
}


def shipped_loader_config(name: str) -> dict[str, Any]:
    """The loader's settings as meltano.yml ships them (the plugin's own ``config``)."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = [p for p in project["plugins"]["loaders"] if p["name"] == name]
    return dict(plugin.get("config") or {})


def _levers() -> dict[str, dict[str, dict[str, Any]]]:
    """Loader settings measured, per target: its own defaults first, what ships last."""
    return {
        "postgres": {
            "defaults": {},
            "use_copy": {"use_copy": True},
            "use_copy, no validation": {"use_copy": True, "validate_records": False},
            "shipped": shipped_loader_config("target-postgres"),
        },
        "duckdb": {
            "defaults": {},
            "batch 10,000": {"batch_size_rows": 10_000},
            "shipped": shipped_loader_config("target-duckdb"),
        },
    }


def _target_command(target: str) -> list[str]:
    command = TARGET_VENVS / target / "bin" / f"target-{target}"
    if not command.is_file():
        raise SystemExit(f"{command} not found: `bash .ci/run` installs the targets")
    return [str(command)]


def _target_config(target: str, settings: dict[str, Any], where: str) -> dict[str, Any]:
    """Connection (a fresh schema or file) plus the settings measured."""
    if target == "postgres":
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc",
             f"DROP SCHEMA IF EXISTS {where} CASCADE"],
            check=True, capture_output=True,
        )  # fmt: skip
        return {**POSTGRES, "default_target_schema": where, **settings}
    path = Path(tempfile.gettempdir()) / f"{where}.duckdb"
    path.unlink(missing_ok=True)
    return {"filepath": str(path), "default_target_schema": "bench", **settings}


def _case_config(server: Any, case: str, layout: str, rpm: int) -> dict[str, Any]:
    """(a) the default reports, 2 apps, 730 days; (b) the heavy report's oldest days."""
    start = server.today - timedelta(days=730)
    config: dict[str, Any] = {
        "api_token": server.token,
        "app_ids": APPS,
        "api_url": server.base_url,
        "start_date": start.isoformat(),
        "requests_per_minute": rpm,
    }
    if case == "a":
        config["reports"] = [{**r, "layout": layout} for r in DEFAULT_REPORTS]
    else:
        config["reports"] = [{**HEAVY_REPORT, "layout": layout}]
        config["end_date"] = (start + timedelta(days=HEAVY_DAYS - 1)).isoformat()
    return config


def _write_json(path: Path, value: Any) -> str:
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


def _capture(work: Path, case: str, layout: str) -> dict[str, Any]:
    """The tap alone against an instant sandbox: its Singer output, kept for the loaders."""
    out = work / f"{case}-{layout}.singer"
    with running_sandbox(requests_per_minute=10**6) as server:
        config = _write_json(work / "tap.json", _case_config(server, case, layout, 10**6))
        started = time.perf_counter()
        with out.open("wb") as sink:
            subprocess.run(
                [*TAP_COMMAND, "--config", config], stdout=sink, stderr=subprocess.DEVNULL,
                check=True,
            )  # fmt: skip
        seconds = time.perf_counter() - started
        calls = sum(1 for r in server.request_log if r.status == 200)
        rows = sum(r.rows for r in server.request_log if r.status == 200)
    records = 0
    with out.open("rb") as handle:
        for line in handle:
            records += line.startswith(b'{"type":"RECORD"')
    size = out.stat().st_size
    return {
        "path": str(out),
        "calls": calls,
        "rows_per_call": round(rows / calls),
        "records": records,
        "records_per_call": round(records / calls),
        "mb_per_call": round(size / calls / 1e6, 2),
        "tap_alone_s": round(seconds, 1),
    }


def _as_batch(source: Path, work: Path, records_per_file: int = 10_000) -> Path:
    """The same messages with RECORDs moved to singer-sdk BATCH files (JSONL, no gzip)."""
    out = work / f"{source.stem}.batch"
    open_files: dict[str, tuple[Path, Any]] = {}
    counts: dict[str, int] = {}
    decoder, encoder = msgspec.json.Decoder(), msgspec.json.Encoder()

    def close(stream: str, sink: Any) -> None:
        path, handle = open_files.pop(stream)
        handle.close()
        message = {
            "type": "BATCH",
            "stream": stream,
            "encoding": {"format": "jsonl", "compression": "none"},
            "manifest": [path.as_uri()],
        }
        sink.write(json.dumps(message).encode() + b"\n")

    with source.open("rb") as lines, out.open("wb") as sink:
        for line in lines:
            if not line.startswith(b'{"type":"RECORD"'):
                if line.startswith(b'{"type":"STATE"'):
                    for stream in list(open_files):
                        close(stream, sink)
                sink.write(line)
                continue
            message = decoder.decode(line)
            stream = message["stream"]
            if stream not in open_files:
                path = work / f"{source.stem}-{stream}-{len(counts)}-{time.monotonic_ns()}.jsonl"
                open_files[stream] = (path, path.open("wb"))
                counts[stream] = 0
            open_files[stream][1].write(encoder.encode(message["record"]) + b"\n")
            counts[stream] += 1
            if counts[stream] % records_per_file == 0:
                close(stream, sink)
        for stream in list(open_files):
            close(stream, sink)
    return out


def _slimmed(source: Path, work: Path) -> Path:
    """What-if: the same facts without the values repeated on every record.

    Provenance columns (one value per stream) left out of SCHEMA and RECORD, and no
    ``time_extracted``: the bytes and load time such records would save (the tap does
    not send these; a table without its provenance columns would mean less on its own).
    """
    out = work / f"{source.stem}.slim"
    drop = {name for name, _, _ in PROVENANCE}
    decoder, encoder = msgspec.json.Decoder(), msgspec.json.Encoder()
    with source.open("rb") as lines, out.open("wb") as sink:
        for line in lines:
            if line.startswith((b'{"type":"RECORD"', b'{"type":"SCHEMA"')):
                message = decoder.decode(line)
                if message["type"] == "RECORD":
                    message.pop("time_extracted", None)
                    record = message["record"]
                else:
                    record = message["schema"]["properties"]
                for name in drop:
                    record.pop(name, None)
                sink.write(encoder.encode(message) + b"\n")
            else:
                sink.write(line)
    return out


def _load(work: Path, source: str, target: str, settings: dict[str, Any], where: str) -> float:
    """Seconds for the target to load a captured run (no API in the way)."""
    config = _write_json(work / f"target-{target}.json", _target_config(target, settings, where))
    log = work / f"{where}.log"
    started = time.perf_counter()
    with open(source, "rb") as feed, log.open("wb") as errors:
        done = subprocess.run(
            [*_target_command(target), "--config", config],
            stdin=feed, stdout=subprocess.DEVNULL, stderr=errors, check=False,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"target-{target} failed ({where}):\n{log.read_text()[-3000:]}")
    return seconds


def _pipeline(
    work: Path,
    case: str,
    layout: str,
    target: str,
    settings: dict[str, Any],
    options: argparse.Namespace,
) -> dict[str, Any]:
    """tap | target against a sandbox answering in 1 s +- 0.25 s at ``rpm`` calls/min."""
    rpm = options.rpm
    with running_sandbox(
        requests_per_minute=rpm, latency=E2E_LATENCY, latency_jitter=E2E_JITTER
    ) as server:
        tap_config = _write_json(work / "tap.json", _case_config(server, case, layout, rpm))
        where = f"bench_pipe_{case}_{layout}_{target}"
        target_config = _write_json(
            work / f"target-{target}.json", _target_config(target, settings, where)
        )
        log = work / f"{where}.log"
        started = time.perf_counter()
        with log.open("wb") as errors:
            tap = subprocess.Popen(
                [*TAP_COMMAND, "--config", tap_config],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            loader = subprocess.Popen(
                [*_target_command(target), "--config", target_config],
                stdin=tap.stdout, stdout=subprocess.DEVNULL, stderr=errors,
            )  # fmt: skip
            assert tap.stdout is not None
            tap.stdout.close()  # the target holds the pipe now
            tap_code = tap.wait()
            tap_done = time.perf_counter() - started
            loader_code = loader.wait()
        wall = time.perf_counter() - started
        log_200 = [r for r in server.request_log if r.status == 200]
        http_429 = sum(1 for r in server.request_log if r.status == 429)
    if tap_code or loader_code:
        raise RuntimeError(
            f"pipeline failed (tap {tap_code}, target {loader_code}):\n{log.read_text()[-3000:]}"
        )
    api_s = len(log_200) / rpm * 60
    return {
        "calls": len(log_200),
        "http_429": http_429,
        "api_time_s": round(api_s, 1),
        "tap_done_s": round(tap_done, 1),
        "wall_s": round(wall, 1),
        "ratio": round(wall / api_s, 2),
    }


def _measured(seconds: float, calls: int, records: int) -> dict[str, Any]:
    return {
        "load_s": round(seconds, 1),
        "load_s_per_call": round(seconds / calls, 2),
        "records_per_s": round(records / seconds),
    }


def _loads(
    work: Path, captured: dict[str, Any], case: str, layout: str, options: argparse.Namespace
) -> dict[str, Any]:
    """Load the captured run alone with each lever (or the shipped settings only)."""
    calls, records, source = captured["calls"], captured["records"], Path(captured["path"])
    levers = _levers()
    loads: dict[str, Any] = {}
    for target in options.targets:
        shipped = levers[target]["shipped"]
        chosen = levers[target] if options.levers else {"shipped": shipped}
        for lever, settings in chosen.items():
            if lever != "shipped" and settings == shipped:
                continue  # the same settings as shipped: measured once
            where = f"bench_{case}_{layout}_{target}"
            seconds = _load(work, str(source), target, settings, where)
            loads[f"{target}: {lever}"] = _measured(seconds, calls, records)
        if target != "postgres" or not options.levers:
            continue
        batch = _as_batch(source, work)  # target-duckdb (not singer-sdk) has no BATCH
        seconds = _load(work, str(batch), target, shipped, f"bench_{case}_{layout}_batch")
        loads["postgres: shipped + BATCH files"] = _measured(seconds, calls, records)
        slim = _slimmed(source, work)
        seconds = _load(work, str(slim), target, shipped, f"bench_{case}_{layout}_slim")
        loads["postgres: shipped, no repeated provenance (what-if)"] = {
            "mb_per_call": round(slim.stat().st_size / calls / 1e6, 2),
            **_measured(seconds, calls, records),
        }
    return loads


def bench_e2e(options: argparse.Namespace) -> dict[str, Any]:
    """Capture each case, load it alone with each lever, then run the shipped pipeline."""
    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    results: dict[str, Any] = {"limit_calls_per_min": options.rpm, "cases": {}}
    table: list[str] = []
    levers = _levers()
    try:
        for case in options.cases:
            for layout in options.layouts:
                captured = _capture(work, case, layout)
                loads = _loads(work, captured, case, layout, options)
                pipelines = {
                    f"{target}: {lever}": _pipeline(work, case, layout, target, settings, options)
                    for target in options.targets
                    for lever, settings in levers[target].items()
                    if layout in options.pipeline_layouts
                    and (lever == "shipped" or options.pipeline_levers)
                    and (lever == "shipped" or settings != levers[target]["shipped"])
                }
                for run in pipelines.values():  # the same records as the capture
                    run["records_per_s"] = round(captured["records"] / run["wall_s"])
                for path in work.iterdir():  # captures are hundreds of MB
                    if path.suffix != ".log":
                        path.unlink()
                captured.pop("path")
                result = {**captured, "loads": loads, "pipeline": pipelines}
                results["cases"][f"{case}-{layout}"] = result
                for lever, load in loads.items():
                    size = load.get("mb_per_call", captured["mb_per_call"])
                    table.append(
                        f"| {case} | {layout} | {captured['records_per_call']:,} | {size} MB "
                        f"| {lever} | {load['load_s_per_call']} s | {load['records_per_s']:,} |"
                    )
                print(f"-- {case}-{layout}: {json.dumps(result)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["table"] = table
    return results


BENCHES: dict[str, Callable[[], dict[str, Any]]] = {
    "throughput": bench_throughput,
    "pacing": bench_pacing,
    "memory": bench_memory,
}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parts = [*BENCHES, "e2e"]
    parser.add_argument("parts", nargs="*", help=f"of {parts}; default: {list(BENCHES)}")
    e2e = parser.add_argument_group("e2e")
    e2e.add_argument("--rpm", type=int, default=120, help="sandbox and tap limit, calls/min")
    e2e.add_argument("--cases", nargs="+", choices=["a", "b"], default=["a", "b"])
    e2e.add_argument("--layouts", nargs="+", choices=["long", "wide"], default=["long", "wide"])
    e2e.add_argument(
        "--targets", nargs="+", choices=["postgres", "duckdb"], default=["postgres", "duckdb"]
    )
    e2e.add_argument(
        "--pipeline-layouts", nargs="*", choices=["long", "wide"], default=["long", "wide"],
        help="layouts also run as the paced pipeline (tap | target)",
    )  # fmt: skip
    e2e.add_argument(
        "--pipeline-levers", action="store_true",
        help="run the paced pipeline with every loader setting too, not only the shipped one",
    )  # fmt: skip
    e2e.add_argument(
        "--no-levers", dest="levers", action="store_false",
        help="load with the shipped settings only (no lever comparison, no BATCH)",
    )  # fmt: skip
    options = parser.parse_args(argv)
    # Checked here: Python 3.11's argparse refuses an empty list against `choices`.
    options.parts = options.parts or list(BENCHES)
    unknown = set(options.parts) - set(parts)
    if unknown:
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {parts}")
    return options


def main(argv: list[str]) -> int:
    options = _arguments(argv)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for name in options.parts:
        started = time.perf_counter()
        result = bench_e2e(options) if name == "e2e" else BENCHES[name]()
        print(f"== {name} ({time.perf_counter() - started:.0f} s)")
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
