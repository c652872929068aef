"""The ``appsflyer-cohort-sandbox`` console script: serve the sandbox until stopped.

The first stdout line is the base URL (so a parent process can read it); a generated
token follows as ``token=...`` unless ``--token-file`` asked for it to go to a file.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from types import FrameType

from tap_appsflyer_cohort.sandbox.options import NO_DATA_BODIES, OVER_CAP_MODES, SandboxOptions
from tap_appsflyer_cohort.sandbox.server import SandboxServer

_DEFAULTS = SandboxOptions()


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser; flags mirror ``SandboxOptions`` one to one."""
    parser = argparse.ArgumentParser(
        prog="appsflyer-cohort-sandbox", description="Local AppsFlyer Cohort API simulator."
    )
    parser.add_argument("--host", default=_DEFAULTS.host)
    parser.add_argument("--port", type=int, default=_DEFAULTS.port)
    parser.add_argument("--token", help="accepted token (default: a generated JWT-like one)")
    parser.add_argument("--token-file", type=Path, help="write the accepted token here")
    parser.add_argument("--today", type=date.fromisoformat, help="fixed UTC date, YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    parser.add_argument("--scale", type=int, default=_DEFAULTS.scale)
    parser.add_argument("--requests-per-minute", type=int, default=_DEFAULTS.requests_per_minute)
    parser.add_argument("--requests-per-day", type=int, default=_DEFAULTS.requests_per_day)
    parser.add_argument("--max-range-days", type=int, default=_DEFAULTS.max_range_days)
    parser.add_argument("--horizon-days", type=int, default=_DEFAULTS.horizon_days)
    parser.add_argument("--row-cap", type=int, default=_DEFAULTS.row_cap)
    parser.add_argument("--over-cap", choices=OVER_CAP_MODES, default=_DEFAULTS.over_cap)
    parser.add_argument("--latency", type=float, default=_DEFAULTS.latency, metavar="SECONDS")
    parser.add_argument("--latency-jitter", type=float, default=_DEFAULTS.latency_jitter)
    parser.add_argument("--error-rate", type=float, default=_DEFAULTS.error_rate)
    parser.add_argument("--reset-rate", type=float, default=_DEFAULTS.reset_rate)
    parser.add_argument("--truncate-rate", type=float, default=_DEFAULTS.truncate_rate)
    parser.add_argument("--html-rate", type=float, default=_DEFAULTS.html_rate)
    parser.add_argument("--shuffle-columns", action="store_true")
    parser.add_argument("--no-data-body", choices=NO_DATA_BODIES, default=_DEFAULTS.no_data_body)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM, then exit 0."""
    args = vars(build_parser().parse_args(argv))
    token_file: Path | None = args.pop("token_file")
    generated = args["token"] is None
    server = SandboxServer(SandboxOptions(**args), log_stream=sys.stderr).start()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if token_file is not None:
        token_file.write_text(server.token + "\n", encoding="utf-8")
    print(server.base_url, flush=True)
    if generated and token_file is None:
        print(f"token={server.token}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
