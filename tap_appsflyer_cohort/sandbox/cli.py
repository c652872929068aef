"""The ``appsflyer-cohort-sandbox`` console script: serve the sandbox until stopped.

The first stdout line is the base URL (so a parent process can read it). The second
says where the token is: ``token=<token>`` for a generated token, or
``token-file=<path>`` with ``--token-file`` (the token itself then goes only to the
file, so it is in no terminal or log). A token given with ``--token`` is not echoed.
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

from tap_appsflyer_cohort.sandbox.faults import STEPS
from tap_appsflyer_cohort.sandbox.options import (
    NO_DATA_BODIES,
    OVER_CAP_MODES,
    REPLAY_UNMATCHED,
    SandboxOptions,
)
from tap_appsflyer_cohort.sandbox.server import SandboxServer

_DEFAULTS = SandboxOptions()


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser; flags mirror ``SandboxOptions`` one to one."""
    parser = argparse.ArgumentParser(
        prog="appsflyer-cohort-sandbox",
        description=(
            "Local AppsFlyer Cohort API simulator. Prints its base URL, then where the "
            "token is, and serves until SIGINT or SIGTERM."
        ),
        epilog="fault steps for --quirk (join several with +): " + ", ".join(STEPS),
    )
    d = _DEFAULTS
    add = parser.add_argument
    add("--host", default=d.host, help="address to listen on (default: %(default)s)")
    add(
        "--port",
        type=int,
        default=d.port,
        metavar="PORT",
        help="port; 0 picks a free one (default: %(default)s)",
    )
    add(
        "--token",
        metavar="TOKEN",
        help="the accepted token (default: a generated 760+ character JWT-like one)",
    )
    add(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="write the accepted token to this file instead of printing it (default: print it)",
    )
    add(
        "--today",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="the server's fixed UTC date (default: the real date and time)",
    )
    add(
        "--seed",
        type=int,
        metavar="N",
        default=d.seed,
        help="seed of the synthetic account (default: %(default)s)",
    )
    add(
        "--scale",
        type=int,
        default=d.scale,
        metavar="N",
        help="multiplies the cohort cells per app and day (default: %(default)s)",
    )
    add(
        "--requests-per-minute",
        type=int,
        metavar="N",
        default=d.requests_per_minute,
        help="calls per token per sliding minute (default: %(default)s)",
    )
    add(
        "--requests-per-day",
        type=int,
        metavar="N",
        default=d.requests_per_day,
        help="calls per token per UTC day (default: %(default)s)",
    )
    add(
        "--max-range-days",
        type=int,
        metavar="DAYS",
        default=d.max_range_days,
        help="longest query window, to - from, in days (default: %(default)s)",
    )
    add(
        "--horizon-days",
        type=int,
        metavar="DAYS",
        default=d.horizon_days,
        help="how far back 'from' may go, in days (default: %(default)s)",
    )
    add(
        "--row-cap",
        type=int,
        metavar="ROWS",
        default=d.row_cap,
        help="rows per answer at most (default: %(default)s)",
    )
    add(
        "--over-cap",
        choices=OVER_CAP_MODES,
        default=d.over_cap,
        help="past the row cap: the first rows with 200, or a 422 (default: %(default)s)",
    )
    add(
        "--latency",
        type=float,
        default=d.latency,
        metavar="SECONDS",
        help="seconds added to every answer (default: %(default)s)",
    )
    add(
        "--latency-jitter",
        type=float,
        default=d.latency_jitter,
        metavar="SECONDS",
        help="up to this many random seconds more (default: %(default)s)",
    )
    for name, what in (
        ("error", "a 500/502/503"),
        ("reset", "a dropped connection"),
        ("truncate", "a body cut in transit"),
        ("html", "a 200 HTML error page"),
    ):
        add(
            f"--{name}-rate",
            type=float,
            default=getattr(d, f"{name}_rate"),
            metavar="SHARE",
            help=f"share of calls (0-1) answered with {what} (default: %(default)s)",
        )
    add(
        "--shuffle-columns",
        action="store_true",
        help="vary the column order between answers (default: off)",
    )
    add(
        "--no-data-body",
        choices=NO_DATA_BODIES,
        default=d.no_data_body,
        help="what an answer without rows holds (default: %(default)s)",
    )
    add(
        "--completeness-lag-days",
        type=int,
        default=d.completeness_lag_days,
        metavar="DAYS",
        help="complete cohort days run this far behind the server's date (default: %(default)s)",
    )
    add(
        "--settling-days",
        type=int,
        default=d.settling_days,
        metavar="DAYS",
        help="cost keeps growing toward its final value until a cohort date is this many "
        "days old; 0: final at once (default: %(default)s)",
    )
    add(
        "--settling-revenue",
        action="store_true",
        help="with --settling-days, revenue (and ROAS/ROI) settles too (default: off)",
    )
    add(
        "--quirk",
        action="append",
        default=[],
        dest="quirks",
        metavar="FAULT[@kpi=K][@app=A][@format=F][@times=N]",
        help="a fault rule, e.g. header-only@kpi=roas; repeatable (default: none)",
    )
    add(
        "--replay",
        type=Path,
        dest="replay_dir",
        metavar="DIR",
        help="serve the recorded answers in DIR (see sandbox/replay.py) (default: none)",
    )
    add(
        "--replay-unmatched",
        choices=REPLAY_UNMATCHED,
        default=d.replay_unmatched,
        help="with --replay, a call no recording matches (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGINT or SIGTERM, then exit 0."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    token_file: Path | None = args.pop("token_file")
    generated = args["token"] is None
    args["quirks"] = tuple(args["quirks"])
    try:
        server = SandboxServer(SandboxOptions(**args), log_stream=sys.stderr).start()
    except ValueError as error:  # a bad quirk rule or replay folder
        parser.error(str(error))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if token_file is not None:  # whole or absent: scripts wait for it to appear (README)
        partial = token_file.with_name(token_file.name + ".partial")
        partial.write_text(server.token + "\n", encoding="utf-8")
        partial.replace(token_file)
    print(server.base_url, flush=True)
    if token_file is not None:
        print(f"token-file={token_file}", flush=True)
    elif generated:
        print(f"token={server.token}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
