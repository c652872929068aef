"""Benchmark of target-appsflyer-audiences: a million identifiers, and memory at two sizes.

    python scripts/audiences_bench.py              # 1,000,000 and 250,000 members (minutes)
    python scripts/audiences_bench.py --sizes 100000 25000   # quicker

For each size, three runs of the real command (``python -m target_appsflyer_audiences``,
Singer messages from a file on stdin, SQLite membership store) against a sandbox in a
process of its own that answers at once (no latency, no rate limit):

1. first: every member validated, staged and sent (overwrite, then add), recorded in the store;
2. incremental: the same size again with 10 % of the members replaced (diffed against the
   store: 10 % added, 10 % removed);
3. turnover: an entirely new membership of the same size (1x added, 1x removed: the most a
   run can send).

Each run prints wall time and the peak memory of the target's own process (``VmHWM`` from
``/proc/self/status``, read in the child at exit, so neither this script nor the sandbox
counts). The memory figure that matters is the ratio between the two sizes (flat: near
1.0x for a 4x larger audience). The sandbox's ground truth is checked after every run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMPORT_KEY = "BENCH"
APP_ID = "id123456789"

SANDBOX = """
import sys, time
from tap_appsflyer_cohort.sandbox.testing import running_sandbox
with running_sandbox(requests_per_minute=10**9) as server:
    print(server.base_url, flush=True)
    print(server.token, flush=True)
    for line in sys.stdin:  # one command per line: "size" -> the audience's size
        print(server.audiences.size(line.strip()), flush=True)
"""

#: Runs the target's console entry point, then writes its own VmHWM (kB) to a file.
CHILD = """
import atexit, os, sys
def peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(os.environ["BENCH_HWM_FILE"], "w") as out:
                    out.write(line.split()[1])
atexit.register(peak)
sys.argv = ["target-appsflyer-audiences", *sys.argv[1:]]
from target_appsflyer_audiences.target import TargetAppsFlyerAudiences
TargetAppsFlyerAudiences.cli()
"""


def member_ids(size: int, salt: str) -> list[str]:
    """Deterministic upper-case IDFVs (the target lower-cases them)."""
    return [str(uuid.uuid5(uuid.NAMESPACE_OID, f"{salt}-{i}")).upper() for i in range(size)]


def write_input(path: Path, ids: list[str]) -> None:
    """SCHEMA + one RECORD per member: a user id, an IDFV and, for half, an e-mail."""
    schema = {
        "type": "SCHEMA",
        "stream": "users",
        "schema": {
            "type": "object",
            "properties": {
                "user_id": {"type": "integer"},
                "idfv": {"type": ["string", "null"]},
                "email": {"type": ["string", "null"]},
            },
        },
        "key_properties": ["user_id"],
    }
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(schema) + "\n")
        for number, idfv in enumerate(ids):
            # Half the members have an e-mail, derived from the id: it moves with the member.
            email = f" User.{idfv[:13]}@Example.com" if idfv[0] in "02468ACE" else None
            record = {"user_id": number, "idfv": idfv, "email": email}
            out.write(json.dumps({"type": "RECORD", "stream": "users", "record": record}) + "\n")


def run_target(config: Path, messages: Path, hwm_file: Path) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, VmHWM in kB, summary line) of one run of the command."""
    env = {**os.environ, "BENCH_HWM_FILE": str(hwm_file), "PYTHONWARNINGS": "ignore"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with messages.open("rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, "--config", str(config)],
            stdin=stdin,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"target failed:\n{done.stderr[-3000:]}")
    summary = next(line for line in done.stderr.splitlines() if "Audience summary:" in line).split(
        "Audience summary: ", 1
    )[1]
    return seconds, cpu, int(hwm_file.read_text()), summary


def bench_size(size: int, sandbox: Any, base_url: str, token: str, work: Path) -> dict[str, Any]:
    """The three runs at one audience size; returns their figures."""
    store = work / f"store-{size}.sqlite"
    config = work / f"config-{size}.json"
    audience_key = f"{IMPORT_KEY}-{size}"
    config.write_text(
        json.dumps(
            {
                "api_token": token,
                "api_url": base_url,
                "requests_per_minute": 10**6,
                "membership_store": str(store),
                "audiences": [
                    {"stream": "users", "import_key": audience_key, "platform": "ios",
                     "app_id": APP_ID}
                ],
            }
        )
    )  # fmt: skip
    first = member_ids(size, f"a{size}")
    tenth = size // 10
    runs = {
        "first": first,
        "incremental": first[tenth:] + member_ids(tenth, f"b{size}"),
        "turnover": member_ids(size, f"c{size}"),
    }
    results: dict[str, Any] = {}
    for name, ids in runs.items():
        messages = work / f"{name}-{size}.jsonl"
        write_input(messages, ids)
        seconds, cpu, hwm_kb, summary = run_target(config, messages, work / "hwm")
        sandbox.stdin.write(audience_key + "\n")
        sandbox.stdin.flush()
        held = int(sandbox.stdout.readline())
        if held != size:
            raise SystemExit(f"{name}: the sandbox audience holds {held}, expected {size}")
        results[name] = {"seconds": seconds, "cpu": cpu, "hwm_mb": hwm_kb / 1024}
        print(
            f"  {size:>9,} {name:<12} {seconds:6.1f} s wall, {cpu:6.1f} s CPU  "
            f"peak {hwm_kb / 1024:6.1f} MB  "
            f"({size / seconds:,.0f} members/s)  sandbox holds {held:,}",
            flush=True,
        )
        print(f"            {summary}", flush=True)
        messages.unlink()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000_000, 250_000])
    args = parser.parse_args()
    big, small = args.sizes
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    sandbox = subprocess.Popen(
        [sys.executable, "-c", SANDBOX],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert sandbox.stdout is not None
        base_url = sandbox.stdout.readline().strip()
        token = sandbox.stdout.readline().strip()
        with tempfile.TemporaryDirectory(prefix="audiences-bench-") as folder:
            work = Path(folder)
            figures = {s: bench_size(s, sandbox, base_url, token, work) for s in (big, small)}
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    print()
    for name in ("first", "incremental", "turnover"):
        large, little = figures[big][name], figures[small][name]
        print(
            f"{name:<12} {big:,}: {large['seconds']:.1f} s wall ({large['cpu']:.1f} s CPU); "
            f"peak memory {big:,} vs {small:,}: "
            f"{large['hwm_mb']:.1f} MB vs {little['hwm_mb']:.1f} MB "
            f"({large['hwm_mb'] / little['hwm_mb']:.2f}x for {big / small:.0f}x the members)"
        )


if __name__ == "__main__":
    main()
