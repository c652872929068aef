"""README "Use it with Meltano" works as written, on a fresh clone.

The lines between the ``meltano-dev`` markers of the README run, unchanged, as one bash
script (what pasting them into a shell does) in a copy of the repository's files (tracked
and untracked-not-ignored: a clone of the working tree, without .meltano/, output files or
a .sandbox-token). The PATH has the Meltano of ``.venv-targets/meltano`` (or
MELTANO_EXECUTABLE) and no ``appsflyer-cohort-sandbox``; no MELTANO_*, TAP_* or TARGET_*
variable of the caller gets through. Then the data must be there: rows of every dev report
in output/warehouse.duckdb and in PostgreSQL, and the state of both pipelines.

Two things differ from a user's machine, neither in the commands:

- ``meltano install`` finds the plugins' venvs already in .meltano/, pointing at the
  pre-installed ones (the tap's: this venv, an editable install of the repository; the
  targets': ``.venv-targets/``) with the fingerprint Meltano writes, so it keeps them
  instead of spending minutes on pip. With README_MELTANO_INSTALL=real it installs for real
  (PyPI needed; README_MELTANO_TIMEOUT, in seconds, if that takes long).
- target-postgres writes into a fresh schema (TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA),
  dropped afterwards, not into tap_appsflyer_cohort; with E2E_POSTGRES_DSN, into that server.

The sandbox listens on the port of meltano.yml (8765): a lock file serialises runs of this
test on one machine, and a port another program holds skips it (fails it under CI=true).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.e2e_support import DSN, ROOT, TARGETS, executable, skip_or_fail

README = (ROOT / "README.md").read_text(encoding="utf-8")
PROJECT = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
START, END = "<!-- meltano-dev:start -->", "<!-- meltano-dev:end -->"
#: Where each plugin's venv comes from when the install is not real.
PREINSTALLED = {
    "tap-appsflyer-cohort": Path(sys.prefix),
    "target-appsflyer-audiences": Path(sys.prefix),
    "tap-postgres": TARGETS / "tap-postgres",
    "target-duckdb": TARGETS / "duckdb",
    "target-postgres": TARGETS / "postgres",
}
SCRIPT_TIMEOUT = int(os.environ.get("README_MELTANO_TIMEOUT", "300"))


def readme_script() -> str:
    """The bash block between the README's meltano-dev markers."""
    section = README.split("## Use it with Meltano", 1)[1].split("\n## ", 1)[0]
    marked = section.split(START, 1)[1].split(END, 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", marked, flags=re.DOTALL)
    return str(block)


def dev_config(kind: str, name: str) -> dict[str, Any]:
    (environment,) = [e for e in PROJECT["environments"] if e["name"] == "dev"]
    (plugin,) = [p for p in environment["config"]["plugins"][kind] if p["name"] == name]
    return dict(plugin["config"])


def test_readme_block_is_the_dev_walkthrough() -> None:
    """The block starts the sandbox through Meltano and names the environment where needed."""
    lines = [line.split("#", 1)[0].strip() for line in readme_script().splitlines()]
    commands = [line for line in lines if line]
    assert commands[0] == "meltano install"
    assert any(c.startswith("meltano invoke tap-appsflyer-cohort:sandbox") for c in commands)
    assert not any(c.startswith("appsflyer-cohort-sandbox") for c in commands)  # not on PATH
    for command in commands:  # these ignore default_environment (Meltano 4)
        words = command.split()
        if words[0] == "meltano" and {"config", "select", "state"} & set(words[1:3]):
            assert words[1] == "--environment=dev", command
    assert commands[-1] == "kill %1"


def fresh_copy(destination: Path) -> None:
    """The repository's files as a clone of its working tree would have them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_symlink() or not source.is_file():  # deleted, or a link to a venv
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def seed_plugin_venvs(project: Path) -> None:
    """.meltano/<kind>/<plugin>/venv for every plugin: the pre-installed executables, and
    the fingerprint `meltano install` compares (sha256 of the sorted, deduplicated pip
    arguments; the interpreter is Meltano's own, so it is not part of it)."""
    for kind in ("extractors", "loaders", "utilities", "mappers"):
        for plugin in PROJECT["plugins"].get(kind, []):
            name = plugin["name"]
            assert name in PREINSTALLED, f"{name}: add its pre-installed venv to PREINSTALLED"
            source = PREINSTALLED[name] / "bin"
            if not (source / plugin["executable"]).is_file():
                skip_or_fail(f"{source / plugin['executable']} not found (bash .ci/run)")
            venv = project / ".meltano" / kind / name / "venv"
            (venv / "bin").mkdir(parents=True)
            for entry in source.iterdir():
                (venv / "bin" / entry.name).symlink_to(entry)
            arguments = " ".join(sorted(set(shlex.split(plugin["pip_url"]))))
            digest = hashlib.sha256(arguments.encode()).hexdigest()
            (venv / ".meltano_plugin_fingerprint").write_text(digest)


def postgres_params() -> dict[str, str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(DSN, connect_timeout=5):
            pass
    except psycopg.OperationalError as error:
        skip_or_fail(f"PostgreSQL not reachable at {DSN!r}: {error}")
    return {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(DSN).items()}


@contextlib.contextmanager
def sandbox_port() -> Iterator[int]:
    """The dev port, held by this test alone while it runs (other runs wait for it)."""
    port = urlsplit(dev_config("extractors", "tap-appsflyer-cohort")["api_url"]).port
    assert port is not None
    lock = Path(tempfile.gettempdir()) / f"tap-appsflyer-cohort-readme-{port}.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        for _ in range(30):
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                    break
                except OSError:
                    time.sleep(1)
        else:
            skip_or_fail(f"port {port} (the dev sandbox's) is in use by another program")
        yield port


def clean_environment(meltano: Path) -> dict[str, str]:
    """The caller's environment without Meltano or plugin settings, and a PATH with
    Meltano but without the sandbox (which a user's shell does not have either)."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MELTANO_", "TAP_", "TARGET_", "VIRTUAL_ENV"))
    }
    folders = [
        folder
        for folder in os.environ.get("PATH", "").split(os.pathsep)
        if folder
        and not (Path(folder) / "appsflyer-cohort-sandbox").exists()
        and not (Path(folder) / "meltano").exists()
    ]
    keep["PATH"] = os.pathsep.join([str(meltano.parent), *folders])
    return keep


def run_script(script: Path, project: Path, env: dict[str, str], log: Path) -> int:
    """Run the block as bash does when it is pasted (errors stop it); end what it started."""
    with (log.parent / "stdout.txt").open("w") as out, log.open("w") as err:
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", str(script)],
            cwd=project,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: the sandbox too, if kill %1 never ran
        )
        try:
            return process.wait(timeout=SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            return -1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)


@pytest.mark.e2e
def test_readme_meltano_section_runs_verbatim_on_a_fresh_clone(tmp_path: Path) -> None:
    meltano = executable("MELTANO_EXECUTABLE", TARGETS / "meltano/bin/meltano")
    duckdb = pytest.importorskip("duckdb")
    params = postgres_params()
    psycopg = pytest.importorskip("psycopg")
    project = tmp_path / "tap-appsflyer-cohort"
    fresh_copy(project)
    assert not (project / ".meltano").exists()
    assert not (project / ".sandbox-token").exists()
    assert sorted(p.name for p in (project / "output").iterdir()) == [".gitkeep"]
    if os.environ.get("README_MELTANO_INSTALL") != "real":
        seed_plugin_venvs(project)
    script = tmp_path / "readme-meltano.sh"
    script.write_text(readme_script())

    schema = f"readme_{uuid.uuid4().hex[:12]}"
    env = clean_environment(meltano)
    env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] = schema
    if os.environ.get("E2E_POSTGRES_DSN"):  # another server than the README's
        names = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}
        for key, name in {**names, "dbname": "DATABASE"}.items():
            if key in params:
                env[f"TARGET_POSTGRES_{name}"] = params[key]
    log = tmp_path / "readme-meltano.log"
    try:
        with sandbox_port():
            started = time.monotonic()
            code = run_script(script, project, env, log)
            seconds = time.monotonic() - started
        stdout = (tmp_path / "stdout.txt").read_text()
        stderr = log.read_text()
        token = (project / ".sandbox-token").read_text().strip()
        sandbox_log = (project / ".meltano/sandbox.log").read_text()
        assert token not in stdout + stderr + sandbox_log  # stays out of any output
        assert code == 0, (
            f"the README block exited {code} after {seconds:.0f} s:\n{stderr[-4000:]}\n"
            f"sandbox:\n{sandbox_log[-1500:]}"
        )
        check_outputs(stdout, stderr, sandbox_log)

        reports = [r["name"] for r in dev_config("extractors", "tap-appsflyer-cohort")["reports"]]
        warehouse = project / "output/warehouse.duckdb"
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            for report in reports:
                (count,) = connection.execute(
                    f"SELECT count(*) FROM tap_appsflyer_cohort.{report}"
                ).fetchone()
                assert count > 0, report
        with psycopg.connect(DSN) as connection:
            for report in reports:
                (count,) = connection.execute(
                    f'SELECT count(*) FROM "{schema}"."{report}"'
                ).fetchone()
                assert count > 0, report
        print(f"README Meltano block: {seconds:.1f} s")
    finally:
        with contextlib.suppress(Exception), psycopg.connect(DSN, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def check_outputs(stdout: str, stderr: str, sandbox_log: str) -> None:
    """What each command of the block showed: the dev environment, its reports, the state."""
    assert "will be ignored" not in stderr  # every command ran in the dev environment
    assert "Config validation failed" not in stderr
    extractor = dev_config("extractors", "tap-appsflyer-cohort")
    reports = [r["name"] for r in extractor["reports"]]
    # config list: the dev values, from meltano.yml's environment
    assert (
        f"api_url [env: TAP_APPSFLYER_COHORT_API_URL] current value: '{extractor['api_url']}'"
        in (stdout)
    )
    assert "app_ids [env: TAP_APPSFLYER_COHORT_APP_IDS] current value: ['id123456789'" in stdout
    # select --list --all: the dev reports' streams, not the default reports
    listed = set(re.findall(r"\] (\w+)\.\w+", stdout))
    assert listed == set(reports), listed
    # state list, then state get of the DuckDB pipeline
    for pipeline in ("target-duckdb", "target-postgres"):
        assert f"dev:tap-appsflyer-cohort-to-{pipeline}" in stdout.splitlines()
    (state_line,) = [line for line in stdout.splitlines() if line.startswith('{"singer_state"')]
    assert set(json.loads(state_line)["singer_state"]["bookmarks"]) == set(reports)
    assert "http://127.0.0.1:8765" in sandbox_log
    assert "POST id123456789 200" in sandbox_log
