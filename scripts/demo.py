"""One-command demo: sandbox -> `meltano run tap-appsflyer-cohort target-duckdb` -> cohorts.

Run from anywhere:  python3 scripts/demo.py   (Python 3.10+; needs PyPI the first time)

It installs what it needs into .demo/ (a venv with Meltano, DuckDB and matplotlib; Meltano
puts the tap and target-duckdb into .demo/meltano/) and runs the pipeline twice through the
project's meltano.yml (environment `dev`, with the demo's two reports):

1. "a week ago": the bundled sandbox API starts with its clock a week back (`--today`) and
   the tap runs with the same clock (`as_of`), like last week's scheduled run;
2. today: the sandbox on the real clock, and the tap's incremental run, which loads the new
   install dates and re-reads the maturing ones: the dates whose day 7, 14, 21 or 28 has
   become complete since last week (final dates are never asked again).

It prints what each run asked the API for, what the state remembers and how many cohort rows
gained days, then a cohort triangle (install date x day N, the maturing edge marked) and a
media source x day-N table read back from DuckDB, and writes both as PNGs to demo-output/.
Nothing outside .demo/ and demo-output/ is touched; the demo keeps its own Meltano system
database and state.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import venv
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
VENV = DEMO / "venv"
VENV_PYTHON = VENV / "bin" / "python"
OUTPUT = ROOT / "demo-output"
WAREHOUSE = DEMO / "warehouse.duckdb"
STATE_DIR = DEMO / "state"
STATE_ID = "dev:tap-appsflyer-cohort-to-target-duckdb"
REQUIREMENTS = ["meltano~=4.4", "duckdb>=1.1", "matplotlib>=3.8"]
APP = "id123456789"
#: Days of the media source table, and the (denser) days of the cohort triangle.
DAYS = (1, 3, 7, 14, 28)
TRIANGLE_DAYS = (1, 2, 3, 4, 5, 6, 7, 10, 14, 21, 28)
#: The demo's reports (the dev environment's two, the retention one with more days).
REPORTS = [
    {
        "name": "retention_by_media_source",
        "groupings": ["date", "pid"],
        "kpis": ["sessions"],
        "aggregation_type": "on_day",
        "filters": {"period": list(TRIANGLE_DAYS)},
    },
    {
        "name": "revenue_by_media_source",
        "groupings": ["date", "pid"],
        "kpis": ["revenue", "roas"],
        "aggregation_type": "cumulative",
        "filters": {"period": [0, 3, 7, 14, 28]},
    },
]
LAST_WEEK = 7  # run 1 happens this many days before today
#: Install dates the terminal's triangle shows (the PNG shows every date).
TRIANGLE_ROWS = 30


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
    if uv is None:  # plain pip bootstraps uv, which installs the rest much faster
        if not VENV_PYTHON.exists():
            venv.create(VENV, with_pip=True, clear=True)
        subprocess.run([VENV_PYTHON, "-m", "pip", "install", "-q", "uv"], check=True)
        uv = str(VENV / "bin" / "uv")
    elif not VENV_PYTHON.exists():  # an existing venv is updated in place (pyproject changed)
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, VENV], check=True)
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
    #: (report, app) -> the windows (install date ranges) it queried, in order.
    windows: dict[tuple[str, str], list[str]]
    loaded_rows: int


def meltano_env(api_url: str, token: str) -> dict[str, str]:
    """Environment for Meltano: the dev environment, pointed at this demo's sandbox and files."""
    return {
        **os.environ,
        "MELTANO_ENVIRONMENT": "dev",
        "MELTANO_SYS_DIR_ROOT": str(DEMO / "meltano"),
        "MELTANO_STATE_BACKEND_URI": STATE_DIR.as_uri(),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_APPSFLYER_COHORT_API_URL": api_url,
        "TAP_APPSFLYER_COHORT_API_TOKEN": token,
        "TAP_APPSFLYER_COHORT_REQUESTS_PER_MINUTE": "6000",
        "TAP_APPSFLYER_COHORT_REPORTS": json.dumps(REPORTS),
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


def ensure_plugins(env: dict[str, str]) -> None:
    """`meltano install` the tap and target-duckdb, unless this checkout already did."""
    stamp = DEMO / "plugins.stamp"
    text = (ROOT / "meltano.yml").read_text(encoding="utf-8") + _requirements_stamp()
    wanted = hashlib.sha256(text.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    print("Installing the tap and target-duckdb with Meltano (first run only)...")
    started = time.monotonic()
    meltano("install", "tap-appsflyer-cohort", "target-duckdb", env=env, log=DEMO / "install.log")
    stamp.write_text(wanted)
    print(f"  done in {time.monotonic() - started:.0f} s")


@contextmanager
def sandbox(today: date | None) -> Iterator[tuple[str, str, Path]]:
    """Start the sandbox on a free port, its clock at ``today`` (None: the real clock).

    Yield its URL, token and request log (appended to, one line per call).
    """
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
    if today is not None:
        command += ["--today", today.isoformat()]
    with request_log.open("a", encoding="utf-8") as log:
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
    """Calls the sandbox answered (one line per call; read once the sandbox has stopped)."""
    return sum(1 for line in request_log.read_text().splitlines() if line.startswith("POST"))


def pipeline_run(label: str, env: dict[str, str]) -> RunReport:
    """`meltano run tap-appsflyer-cohort target-duckdb`, measured (calls are counted later)."""
    started = time.monotonic()
    output = meltano(
        "run", "tap-appsflyer-cohort", "target-duckdb", env=env, log=DEMO / f"{label}.log"
    )
    seconds = time.monotonic() - started
    log_text = (DEMO / f"{label}.log").read_text(encoding="utf-8") + output
    windows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for report, app, dates in re.findall(
        r"Window done: report '([^']+)', app '([^']+)', (\S+),", log_text
    ):
        windows[report, app].append(dates)
    loaded = sum(int(n) for n in re.findall(r"Loading (\d+) rows into", log_text))
    return RunReport(seconds=seconds, calls=0, windows=windows, loaded_rows=loaded)


def print_run(title: str, report: RunReport) -> None:
    """Say what one run asked for: per report and app, the install date windows."""
    print(f"\n== {title}")
    print(
        f"   {report.calls} API call(s), {report.loaded_rows} row(s) loaded, "
        f"{report.seconds:.1f} s (meltano start-up included)"
    )
    for (name, app), windows in report.windows.items():
        short = ", ".join(_short(window) for window in windows)
        lines = textwrap.wrap(short, width=96, initial_indent="     ", subsequent_indent="     ")
        print(f"   {name} / {app}: {len(windows)} window(s) of install dates")
        print("\n".join(lines))
    if not report.windows:
        print("   nothing to query: every cohort day complete today is already loaded")


def _short(window: str) -> str:
    """``2026-11-05..2026-11-11`` as ``11-05..11-11``, one day as ``11-05``."""
    first, _, last = window.partition("..")
    return first[5:] if first == last else f"{first[5:]}..{last[5:]}"


def read_state() -> dict[str, Any]:
    """The Singer state Meltano keeps for the next run (its local state backend's file)."""
    path = STATE_DIR / STATE_ID / "state.json"
    stored = json.loads(path.read_text(encoding="utf-8"))
    state = stored.get("completed", stored)
    return dict(state.get("singer_state", {}))


def print_state() -> dict[tuple[str, str], str]:
    """Summarise the ledger of each report and app; return the last final date of each."""
    bookmarks = read_state().get("bookmarks", {})
    print(f"   state ({STATE_ID}):")
    last_final: dict[tuple[str, str], str] = {}
    for stream, bookmark in sorted(bookmarks.items()):
        for partition in bookmark.get("partitions", []):
            app = partition["context"]["app_id"]
            ledger = partition.get("cohort_ledger", {}).get("ledger", {})
            ranges = ledger.get("final") or []
            final = ", ".join(f"{a}..{b}" for a, b in ranges) or "none"
            maturing = len(ledger.get("elapsed") or {})
            print(f"     {stream} / {app}: final {final}; {maturing} maturing date(s)")
            if ranges:
                last_final[stream, app] = max(b for _, b in ranges)
    return last_final


def print_final_not_asked(last_final: dict[tuple[str, str], str], report: RunReport) -> None:
    """Check, and say, that no window of this run reached back into run 1's final dates."""
    again = []
    for (name, app), last in sorted(last_final.items()):
        starts = [w.partition("..")[0] for w in report.windows.get((name, app), [])]
        again += [f"{name} / {app} from {s}" for s in starts if s <= last]
    lasts = ", ".join(sorted(set(last_final.values())))
    if again:
        print(f"   ASKED AGAIN for install dates final after run 1: {'; '.join(again)}")
    else:
        print(f"   install dates final after run 1 (up to {lasts}): not asked again")


# --- what the warehouse holds --------------------------------------------------------------

#: (report, app, install date, media source) -> the cohort days loaded.
Loaded = dict[tuple[str, str, str, str], set[int]]


def loaded_days() -> Loaded:
    """Every cohort row in DuckDB and the days it holds."""
    import duckdb  # only inside the demo venv

    found: Loaded = defaultdict(set)
    with duckdb.connect(str(WAREHOUSE), read_only=True) as connection:
        for report in REPORTS:
            name = str(report["name"])
            rows = connection.execute(
                f"select app_id, cast(date as varchar), pid, period "
                f"from tap_appsflyer_cohort.{name}"
            ).fetchall()
            for app_id, day, pid, period in rows:
                found[name, app_id, day[:10], pid].add(int(period))
    return found


def print_gains(before: Loaded, after: Loaded) -> set[tuple[str, int]]:
    """Say how many cohort rows today's run extended; return (date, day) gained for APP."""
    print("\n== What today's run changed in the warehouse")
    gained_cells: set[tuple[str, int]] = set()
    for report in REPORTS:
        name = str(report["name"])
        mine = {k: v for k, v in after.items() if k[0] == name}
        grown = {k: v - before[k] for k, v in mine.items() if k in before and v > before[k]}
        new = [k for k in mine if k not in before]
        values = sum(len(days) for days in grown.values())
        dates = sorted({k[2] for k in grown})
        span = f"install dates {dates[0]}..{dates[-1]}" if dates else "no install date"
        print(
            f"   {name}: {len(grown)} cohort row(s) (install date x media source x app) "
            f"gained days ({values} new value(s), {span}); {len(new)} row(s) of new dates"
        )
        if grown:
            example = max(grown, key=lambda k: (len(grown[k]), k[2]))
            days = ", ".join(f"D{d}" for d in sorted(grown[example]))
            print(f"     e.g. {example[3]} installs of {example[2]} ({example[1]}) gained {days}")
        if name == REPORTS[0]["name"]:
            gained_cells = {(k[2], d) for k, days in grown.items() if k[1] == APP for d in days}
            gained_cells |= {(k[2], d) for k in new if k[1] == APP for d in mine[k]}
    return gained_cells


TRIANGLE_SQL = """
select cast(date as varchar) as day, period,
       100.0 * sum(sessions_unique_users) / nullif(sum(users), 0) as pct
from tap_appsflyer_cohort.retention_by_media_source
where app_id = $app
group by 1, 2
order by 1, 2
"""


@dataclass
class Triangle:
    """Retention of every install date on each cohort day, all media sources together."""

    dates: list[str]
    values: dict[tuple[str, int], float]
    #: Cells today's run loaded (the dates that matured, and the new dates).
    gained: set[tuple[str, int]]


def cohort_triangle(gained: set[tuple[str, int]]) -> Triangle:
    """Read the triangle of APP back from DuckDB."""
    import duckdb  # only inside the demo venv

    with duckdb.connect(str(WAREHOUSE), read_only=True) as connection:
        rows = connection.execute(TRIANGLE_SQL, {"app": APP}).fetchall()
    values = {(day[:10], int(period)): float(pct) for day, period, pct in rows if pct is not None}
    return Triangle(sorted({day for day, _ in values}), values, gained)


def print_triangle(triangle: Triangle, today: date) -> None:
    """The triangle as text: newest install dates at the bottom, the maturing edge visible."""
    print(f"\n== Cohort triangle, {APP}: % of installers with a session on day N (all sources)")
    header = "   install date " + "".join(f"{'D' + str(d):>6}" for d in TRIANGLE_DAYS)
    print(header)
    for day in triangle.dates[-TRIANGLE_ROWS:]:
        cells = []
        for period in TRIANGLE_DAYS:
            value = triangle.values.get((day, period))
            if value is None:
                complete = date.fromisoformat(day) + timedelta(days=period) < today
                cells.append(f"{'?' if complete else '.':>6}")
            else:
                mark = "*" if (day, period) in triangle.gained else " "
                cells.append(f"{value:5.1f}{mark}")
        print(f"   {day}   " + "".join(cells))
    print(
        "   *: loaded by today's run (days that became complete since last week, and new dates)"
        "\n   .: not complete yet (the API returns only complete cohort days)"
    )


def write_triangle(triangle: Triangle, today: date) -> Path:
    """The triangle as a PNG: colour = retention, outlined cells = today's run."""
    import matplotlib  # only inside the demo venv

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    dates = triangle.dates
    grid = [
        [triangle.values.get((day, period), float("nan")) for period in TRIANGLE_DAYS]
        for day in dates
    ]
    figure, axes = plt.subplots(figsize=(8.2, 0.2 * len(dates) + 2.2))
    colours = matplotlib.colormaps["viridis"].with_extremes(bad="#e6e6e6")
    peak = max(triangle.values.values(), default=1.0)
    image = axes.imshow(grid, cmap=colours, aspect="auto", vmin=0, vmax=peak)
    for y, day in enumerate(dates):
        for x, period in enumerate(TRIANGLE_DAYS):
            value = triangle.values.get((day, period))
            if value is None:
                continue
            shade = "black" if value > 0.6 * peak else "white"
            axes.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=6.5, color=shade)
            if (day, period) in triangle.gained:
                axes.add_patch(
                    Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="#ff3b30", lw=1.2)
                )
    axes.set_xticks(range(len(TRIANGLE_DAYS)), [f"D{d}" for d in TRIANGLE_DAYS])
    step = max(1, len(dates) // 15)
    axes.set_yticks(range(0, len(dates), step), dates[::step], fontsize=8)
    axes.set_xlabel("cohort day N")
    axes.set_ylabel("install date")
    axes.set_title(
        f"Cohort triangle: retention by install date, {APP} (sandbox data)\n"
        "red outline: loaded by today's run (matured since last week, or new); "
        "grey: not complete yet",
        fontsize=9,
    )
    figure.colorbar(image, ax=axes, label="% of installers with a session on day N")
    return _save(figure, "cohort_triangle.png", dpi=110)


def _save(figure: Any, name: str, *, dpi: int) -> Path:
    """Lay out, write to output/ and close a chart (matplotlib keeps figures otherwise)."""
    import matplotlib.pyplot as plt  # already imported by the caller, inside the demo venv

    figure.tight_layout()
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


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
    select pid, sum(users) as users, sum(cost) / sum(users) as ecpi,
           min(cast(date as date)) as first_day, max(cast(date as date)) as last_day
    from tap_appsflyer_cohort.revenue_by_media_source
    where app_id = $app and period = 0
    group by pid
)
select c.pid, c.users, c.first_day, c.last_day, c.ecpi,
       {retention_columns},
       (select arpu from revenue v where v.pid = c.pid and v.period = 7) as arpu_d7,
       (select arpu from revenue v where v.pid = c.pid and v.period = 28) as arpu_d28,
       (select roas from revenue v where v.pid = c.pid and v.period = 7) as roas_d7,
       (select roas from revenue v where v.pid = c.pid and v.period = 28) as roas_d28
from cohorts c
order by c.users desc
"""


def cohort_table() -> list[tuple[Any, ...]]:
    """Media source x day-N retention and revenue for APP, read back from DuckDB."""
    import duckdb  # only inside the demo venv

    retention_columns = ",\n       ".join(
        f"(select pct from retention r where r.pid = c.pid and r.period = {day}) as d{day}"
        for day in DAYS
    )
    sql = COHORT_SQL.format(retention_columns=retention_columns)
    with duckdb.connect(str(WAREHOUSE), read_only=True) as connection:
        return connection.execute(sql, {"app": APP}).fetchall()


def _cell(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}{suffix}" if suffix else f"{value:.2f}"
    return str(value)


def print_table(rows: list[tuple[Any, ...]]) -> None:
    """Print the media source table the way an analyst would read it."""
    header = ["media source", "users", "eCPI"]
    header += [f"D{d} ret" for d in DAYS] + ["ARPU D7", "ARPU D28", "ROAS D7", "ROAS D28"]
    print(f"\n== {APP}: retention by media source, revenue per user and ROAS (USD)")
    lines = [header]
    for pid, users, _first, _last, ecpi, *values in rows:
        retention = [_cell(v, "%") for v in values[: len(DAYS)]]
        arpu7, arpu28, roas7, roas28 = values[len(DAYS) :]
        money = [_cell(arpu7), _cell(arpu28), _cell(roas7, "%"), _cell(roas28, "%")]
        lines.append([pid, str(users), _cell(ecpi or None), *retention, *money])
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
        print(f"   installs {first} .. {last}; '-': no cost (organic), or no cohort that old yet")


def write_heatmap(rows: list[tuple[Any, ...]]) -> Path:
    """Retention heatmap: media source x cohort day."""
    import matplotlib  # only inside the demo venv

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = [row[0] for row in rows]
    values = [
        [float("nan") if v is None else float(v) for v in row[5 : 5 + len(DAYS)]] for row in rows
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
    axes.set_title(f"Retention by media source, {APP} (sandbox data)")
    figure.colorbar(image, ax=axes, label="% of cohort users with a session")
    return _save(figure, "retention_heatmap.png", dpi=120)


def demo() -> None:
    """Run the pipeline a week ago and today, and show what maturing cohorts look like."""
    started = time.monotonic()
    today = datetime.now(timezone.utc).date()
    last_week = today - timedelta(days=LAST_WEEK)
    WAREHOUSE.unlink(missing_ok=True)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    (DEMO / "sandbox-requests.log").unlink(missing_ok=True)

    with sandbox(last_week) as (api_url, token, request_log):
        env = meltano_env(api_url, token)
        ensure_plugins(env)
        print(f"Run 1 happens a week ago: sandbox and tap clocks at {last_week} 12:00 UTC")
        # The sandbox's clock is --today at 12:00 UTC; the tap takes the same moment for now.
        env["TAP_APPSFLYER_COHORT_AS_OF"] = f"{last_week}T12:00:00Z"
        first = pipeline_run("run1", env)
    first.calls = count_calls(request_log)
    print_run(f"Run 1, {last_week}: the first sync (install dates up to the day before)", first)
    last_final = print_state()
    before = loaded_days()

    with sandbox(None) as (api_url, token, request_log):
        print(f"\nRun 2 happens today, {today}: sandbox and tap on the real clock")
        second = pipeline_run("run2", meltano_env(api_url, token))
    second.calls = count_calls(request_log) - first.calls
    print_run(
        "Run 2, today: incremental (new install dates, and maturing ones that gained a day)",
        second,
    )
    print_final_not_asked(last_final, second)
    print_state()
    gained = print_gains(before, loaded_days())

    triangle = cohort_triangle(gained)
    print_triangle(triangle, today)
    rows = cohort_table()
    print_table(rows)
    pictures = [write_triangle(triangle, today), write_heatmap(rows)]
    print(f"\nPictures: {', '.join(str(p.relative_to(ROOT)) for p in pictures)}")
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
