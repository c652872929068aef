"""One-command demo: sandbox -> `meltano run tap-appsflyer-cohort target-duckdb` -> cohort table.

Run from anywhere:  python3 scripts/demo.py   (Python 3.10+; needs PyPI the first time)

It installs what it needs into .demo/ (a venv with Meltano, DuckDB and matplotlib; Meltano
puts the tap and target-duckdb into .demo/meltano/), starts the bundled sandbox API on a free
loopback port, and runs the pipeline twice through the project's meltano.yml (environment
`dev`): a first run that stops a week back, as if it were last week's scheduled run, then
today's run, which is incremental. It prints what each run asked the API for and what the
state remembers, then a media source x day-N table read back from DuckDB, and writes a
retention heatmap to demo-output/retention_heatmap.png. Nothing outside .demo/ and
demo-output/ is touched; the demo keeps its own Meltano system database and state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
VENV = DEMO / "venv"
VENV_PYTHON = VENV / "bin" / "python"
OUTPUT = ROOT / "demo-output"
WAREHOUSE = DEMO / "warehouse.duckdb"
STATE_ID = "dev:tap-appsflyer-cohort-to-target-duckdb"
REQUIREMENTS = ["meltano~=4.4", "duckdb>=1.1", "matplotlib>=3.8"]
DAYS = (1, 3, 7, 14, 28)
LAST_WEEK = 8  # the first run stops this many days before today


# --- stage 1: bootstrap (standard library only) --------------------------------------------


def _requirements_stamp() -> str:
    text = "\n".join([*REQUIREMENTS, (ROOT / "pyproject.toml").read_text(encoding="utf-8")])
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_venv() -> None:
    """Create .demo/venv and install Meltano, DuckDB, matplotlib and this package (once)."""
    stamp = DEMO / "installed.stamp"
    if VENV_PYTHON.exists() and stamp.exists() and stamp.read_text() == _requirements_stamp():
        return
    print(f"Installing the demo environment into {VENV.relative_to(ROOT)} (first run only)...")
    started = time.monotonic()
    uv = shutil.which("uv")
    if uv is not None:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, VENV], check=True)
    else:  # plain pip bootstraps uv, which installs the rest much faster
        venv.create(VENV, with_pip=True, clear=True)
        subprocess.run([VENV_PYTHON, "-m", "pip", "install", "-q", "uv"], check=True)
        uv = str(VENV / "bin" / "uv")
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", VENV_PYTHON, *REQUIREMENTS, "-e", ROOT],
        check=True,
    )
    stamp.write_text(_requirements_stamp())
    print(f"  done in {time.monotonic() - started:.0f} s")


# --- stage 2: the demo (inside .demo/venv) -------------------------------------------------


@dataclass
class RunReport:
    """What one `meltano run` did, read from its log and the sandbox's request log."""

    seconds: float
    calls: int
    windows: list[str]
    loaded_rows: int


def meltano_env(api_url: str, token: str) -> dict[str, str]:
    """Environment for Meltano: the dev environment, pointed at this demo's sandbox and files."""
    return {
        **os.environ,
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_SYS_DIR_ROOT": str(DEMO / "meltano"),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_APPSFLYER_COHORT_API_URL": api_url,
        "TAP_APPSFLYER_COHORT_API_TOKEN": token,
        "TAP_APPSFLYER_COHORT_REQUESTS_PER_MINUTE": "6000",
        "TARGET_DUCKDB_FILEPATH": str(WAREHOUSE),
        "PYTHONWARNINGS": "ignore",
    }


def meltano(*args: str, env: dict[str, str], log: Path | None = None) -> str:
    """Run the venv's meltano in the project root; fail loudly with the log tail."""
    command = [str(VENV / "bin" / "meltano"), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if log is not None:
        log.write_text(output, encoding="utf-8")
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-25:])
        raise SystemExit(f"`meltano {' '.join(args)}` failed ({done.returncode}):\n{tail}")
    return done.stdout


@contextmanager
def sandbox() -> Iterator[tuple[str, str, Path]]:
    """Start the sandbox on a free port (real clock); yield its URL, token and request log."""
    token_file = DEMO / "sandbox-token"
    request_log = DEMO / "sandbox-requests.log"
    command = [
        str(VENV / "bin" / "appsflyer-cohort-sandbox"),
        "--port",
        "0",
        "--token-file",
        str(token_file),
        "--requests-per-minute",
        "6000",
    ]
    with request_log.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            if not base_url.startswith("http"):
                raise SystemExit("the sandbox did not start; see .demo/sandbox-requests.log")
            yield base_url, token_file.read_text(encoding="utf-8").strip(), request_log
        finally:
            process.terminate()
            process.wait(timeout=10)


def count_calls(request_log: Path) -> int:
    """Calls the sandbox answered so far (one line per call)."""
    return sum(1 for line in request_log.read_text().splitlines() if line.startswith("POST"))


def pipeline_run(label: str, env: dict[str, str], request_log: Path) -> RunReport:
    """`meltano run tap-appsflyer-cohort target-duckdb`, measured."""
    calls_before = count_calls(request_log)
    started = time.monotonic()
    output = meltano(
        "run",
        "tap-appsflyer-cohort",
        "target-duckdb",
        env=env,
        log=DEMO / f"{label}.log",
    )
    seconds = time.monotonic() - started
    log_text = (DEMO / f"{label}.log").read_text(encoding="utf-8") + output
    windows = re.findall(r"Window done: report '([^']+)', app '([^']+)', (\S+),", log_text)
    loaded = sum(int(n) for n in re.findall(r"Loading (\d+) rows into", log_text))
    return RunReport(
        seconds=seconds,
        calls=count_calls(request_log) - calls_before,
        windows=[f"{report} / {app}: {dates}" for report, app, dates in windows],
        loaded_rows=loaded,
    )


def print_run(title: str, report: RunReport) -> None:
    """Say what one run asked for."""
    print(f"\n== {title}")
    print(
        f"   {report.calls} API call(s), {report.loaded_rows} row(s) loaded, "
        f"{report.seconds:.1f} s (meltano start-up included)"
    )
    for window in report.windows:
        print(f"   queried {window}")
    if not report.windows:
        print("   nothing to query: every cohort day complete today is already loaded")


def print_state(env: dict[str, str]) -> None:
    """Summarise the Singer state Meltano keeps for the next run."""
    raw = meltano("state", "get", STATE_ID, env=env)
    state = json.loads(raw[raw.index("{") :])
    bookmarks = state.get("singer_state", {}).get("bookmarks", {})
    print(f"\n   state ({STATE_ID}):")
    for stream, bookmark in sorted(bookmarks.items()):
        for partition in bookmark.get("partitions", []):
            ledger = partition.get("cohort_ledger", {}).get("ledger", {})
            final = ledger.get("final") or []
            maturing = ledger.get("elapsed") or {}
            final_text = ", ".join(f"{a}..{b}" for a, b in final) or "none"
            print(
                f"     {stream} / {partition['context']['app_id']}: final {final_text}; "
                f"{len(maturing)} maturing date(s); bookmark "
                f"{partition.get('replication_key_value')}"
            )


COHORT_SQL = """
with retention as (
    select pid, period,
           100.0 * sum(sessions_unique_users) / nullif(sum(users), 0) as pct
    from tap_appsflyer_cohort.retention_by_media_source
    where app_id = $app
    group by pid, period
), revenue as (
    select pid, period,
           sum(revenue_sum) / nullif(sum(users), 0) as arpu,
           100.0 * sum(revenue_sum) / nullif(sum(cost), 0) as roas
    from tap_appsflyer_cohort.revenue_by_media_source
    where app_id = $app
    group by pid, period
), cohorts as (
    select pid, sum(users) as users, min(cast(date as date)) as first_day,
           max(cast(date as date)) as last_day
    from tap_appsflyer_cohort.revenue_by_media_source
    where app_id = $app and period = 0
    group by pid
)
select c.pid, c.users, c.first_day, c.last_day,
       {retention_columns},
       (select arpu from revenue v where v.pid = c.pid and v.period = 7) as arpu_d7,
       (select arpu from revenue v where v.pid = c.pid and v.period = 28) as arpu_d28,
       (select roas from revenue v where v.pid = c.pid and v.period = 7) as roas_d7
from cohorts c
order by c.users desc
"""


def cohort_table(app_id: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Media source x day-N retention and revenue for one app, read back from DuckDB."""
    import duckdb  # only inside the demo venv

    retention_columns = ",\n       ".join(
        f"(select pct from retention r where r.pid = c.pid and r.period = {day}) as d{day}"
        for day in DAYS
    )
    sql = COHORT_SQL.format(retention_columns=retention_columns)
    with duckdb.connect(str(WAREHOUSE), read_only=True) as connection:
        result = connection.execute(sql, {"app": app_id})
        columns = [c[0] for c in result.description]
        return columns, result.fetchall()


def _cell(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}{suffix}" if suffix else f"{value:.2f}"
    return str(value)


def print_table(app_id: str, rows: list[tuple[Any, ...]]) -> None:
    """Print the cohort table the way an analyst would read it."""
    header = ["media source", "users"]
    header += [f"D{d} ret" for d in DAYS] + ["ARPU D7", "ARPU D28", "ROAS D7"]
    print(f"\n== {app_id}: retention by cohort day, revenue per user (USD), ROAS")
    lines = [header]
    for pid, users, _first, _last, *values in rows:
        retention = [_cell(v, "%") for v in values[: len(DAYS)]]
        arpu7, arpu28, roas7 = values[len(DAYS) :]
        lines.append([pid, str(users), *retention, _cell(arpu7), _cell(arpu28), _cell(roas7, "%")])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for number, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)
        ]
        print("   " + "  ".join(cells))
        if number == 0:
            print("   " + "  ".join("-" * w for w in widths))
    if rows:
        first, last = min(r[2] for r in rows), max(r[3] for r in rows)
        print(f"   cohorts {first} .. {last}; '-': no cohort has reached that day yet, or no cost")


def write_heatmap(app_id: str, rows: list[tuple[Any, ...]]) -> Path:
    """Retention heatmap: media source x cohort day."""
    import matplotlib  # only inside the demo venv

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = [row[0] for row in rows]
    values = [
        [float("nan") if v is None else float(v) for v in row[4 : 4 + len(DAYS)]] for row in rows
    ]
    peak = max((v for row in values for v in row if v == v), default=1.0)
    figure, axes = plt.subplots(figsize=(7, 0.5 * len(sources) + 1.6))
    image = axes.imshow(values, cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(DAYS)), [f"day {d}" for d in DAYS])
    axes.set_yticks(range(len(sources)), sources)
    for y, row in enumerate(values):
        for x, value in enumerate(row):
            if value == value:  # not NaN
                shade = "black" if value > 0.6 * peak else "white"
                axes.text(x, y, f"{value:.0f}%", ha="center", va="center", color=shade)
    axes.set_title(f"Retention by media source, {app_id} (sandbox data)")
    figure.colorbar(image, ax=axes, label="% of cohort users with a session")
    figure.tight_layout()
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / "retention_heatmap.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def demo() -> None:
    """Run the pipeline twice and show the result."""
    started = time.monotonic()
    today = datetime.now(timezone.utc).date()
    last_week = today - timedelta(days=LAST_WEEK)
    WAREHOUSE.unlink(missing_ok=True)
    with sandbox() as (api_url, token, request_log):
        env = meltano_env(api_url, token)
        print(f"Sandbox API at {api_url} (today is {today}, the real UTC date)")
        meltano(
            "install", "tap-appsflyer-cohort", "target-duckdb", env=env, log=DEMO / "install.log"
        )
        meltano("state", "clear", "--force", STATE_ID, env=env)

        first = pipeline_run(
            "run1", {**env, "TAP_APPSFLYER_COHORT_END_DATE": str(last_week)}, request_log
        )
        print_run(f"Run 1: last week's run (cohorts up to {last_week})", first)
        print_state(env)

        second = pipeline_run("run2", env, request_log)
        print_run(
            "Run 2: today's run, incremental (new dates only; final days never re-read)", second
        )
        print_state(env)

    app_id = "id123456789"
    _columns, rows = cohort_table(app_id)
    print_table(app_id, rows)
    heatmap = write_heatmap(app_id, rows)
    print(f"\nHeatmap: {heatmap.relative_to(ROOT)}")
    print(f"Warehouse: {WAREHOUSE.relative_to(ROOT)} (schema tap_appsflyer_cohort)")
    elapsed = time.monotonic() - started
    print(f"Logs: {DEMO.relative_to(ROOT)}/run1.log, run2.log; the demo took {elapsed:.0f} s")


def main() -> None:
    """Bootstrap the venv, then re-run this script inside it."""
    if sys.version_info < (3, 10):  # noqa: UP036 (this stage runs on any python3)
        raise SystemExit("Python 3.10 or newer is needed")
    DEMO.mkdir(exist_ok=True)
    if Path(sys.prefix).resolve() != VENV.resolve():
        ensure_venv()
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    demo()


if __name__ == "__main__":
    main()
