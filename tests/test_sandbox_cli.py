"""The console script: prints its URL (and token), serves, exits 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tap_appsflyer_cohort.contract import API_PATH
from tests.test_sandbox_support import base_body

SCRIPT = Path(sys.executable).with_name("appsflyer-cohort-sandbox")


@contextmanager
def serving(command: list[str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def call(base_url: str, token: str) -> requests.Response:
    return requests.post(
        base_url + API_PATH.format(app_id="id123456789"),
        json=base_body(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_console_script_prints_url_and_token_and_serves() -> None:
    command = [str(SCRIPT), "--port", "0", "--today", "2026-06-15", "--seed", "42"]
    with serving(command) as process:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        token_line = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        assert token_line.startswith("token=")
        token = token_line.removeprefix("token=")
        assert len(token) >= 760
        response = call(base_url, token)
        assert response.status_code == 200
        assert response.text.startswith("date,pid,users,ecpi,cost,")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        _, stderr = process.communicate(timeout=10)
    assert "POST id123456789 200 rows=" in stderr
    assert token not in stderr


def test_module_entry_point_with_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    command = [
        sys.executable,
        "-m",
        "tap_appsflyer_cohort.sandbox",
        "--port",
        "0",
        "--today",
        "2026-06-15",
        "--token-file",
        str(token_file),
        "--requests-per-minute",
        "1",
    ]
    with serving(command) as process:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        token = token_file.read_text().strip()
        assert call(base_url, token).status_code == 200
        assert call(base_url, token).status_code == 429
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        stdout, _ = process.communicate(timeout=10)
    assert "token=" not in stdout


def test_explicit_token_is_not_printed() -> None:
    command = [str(SCRIPT), "--port", "0", "--token", "secret-token", "--today", "2026-06-15"]
    with serving(command) as process:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert call(base_url, "secret-token").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        stdout, _ = process.communicate(timeout=10)
    assert "secret-token" not in stdout


def test_help_describes_every_flag_with_its_default() -> None:
    from tap_appsflyer_cohort.sandbox.cli import build_parser

    parser = build_parser()
    flags = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(flags) == 27
    for action in flags:
        assert action.help, f"{action.option_strings[0]} has no description"
        assert "(default: " in action.help, f"{action.option_strings[0]} gives no default"
    shown = subprocess.run(
        [str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert "(default: 60)" in shown  # requests per minute, filled in
    assert "header-only" in shown  # the fault steps are listed


def test_every_option_has_a_flag_and_running_sandbox_takes_every_option(tmp_path: Path) -> None:
    import dataclasses
    from datetime import date

    from tap_appsflyer_cohort.sandbox.cli import build_parser
    from tap_appsflyer_cohort.sandbox.options import SandboxOptions
    from tap_appsflyer_cohort.sandbox.testing import running_sandbox

    dests = {a.dest for a in build_parser()._actions} | {"token_file"}
    fields = {f.name for f in dataclasses.fields(SandboxOptions)}
    assert fields - dests == {"time_of_day"}  # set in tests through set_now
    (tmp_path / "cases").mkdir()
    every = {
        "completeness_lag_days": 1,
        "settling_days": 2,
        "settling_revenue": True,
        "quirks": ("bom@kpi=roas",),
        "replay_dir": tmp_path / "cases",
        "replay_unmatched": "404",
        "today": date(2026, 6, 15),
    }
    with running_sandbox(**every) as server:
        assert {k: getattr(server.options, k) for k in every} == every
        assert post_status(server) == 404  # empty replay folder, unmatched: 404


def post_status(server) -> int:
    return call(server.base_url, server.token).status_code


def test_token_file_line_quirk_and_replay_flags(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    case = tmp_path / "cases" / "one"
    case.mkdir(parents=True)
    (case / "request.json").write_text('{"body": {"kpis": ["roas"]}}')
    (case / "response.meta.json").write_text('{"status": 200}')
    (case / "response.body").write_bytes(b"recorded\n")
    command = [
        str(SCRIPT),
        "--port",
        "0",
        "--today",
        "2026-06-15",
        "--token-file",
        str(token_file),
        "--quirk",
        "header-only@kpi=af_purchase@times=1",
        "--replay",
        str(tmp_path / "cases"),
        "--completeness-lag-days",
        "1",
        "--settling-days",
        "3",
    ]
    with serving(command) as process:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert process.stdout.readline().strip() == f"token-file={token_file}"
        token = token_file.read_text().strip()
        first, second = call(base_url, token), call(base_url, token)
        assert first.text.count("\n") == 1  # header only, once
        assert second.text.count("\n") > 1
        recorded = requests.post(
            base_url + API_PATH.format(app_id="id123456789"),
            json=base_body(kpis=["roas"]),
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert recorded.content == b"recorded\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        stdout, stderr = process.communicate(timeout=10)
    assert token not in stdout + stderr
    assert "replayed=one" in stderr


@pytest.mark.parametrize(
    ("flag", "message"),
    [("--quirk=nope", "unknown fault"), ("--replay=/nonexistent/dir", "does not exist")],
)
def test_bad_quirk_or_replay_folder_is_one_usage_error(flag: str, message: str) -> None:
    done = subprocess.run(
        [str(SCRIPT), "--port", "0", flag], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_readme_sandbox_section_names_every_flag_and_fault_step() -> None:
    from tap_appsflyer_cohort.sandbox.cli import build_parser
    from tap_appsflyer_cohort.sandbox.faults import STEPS
    from tests.e2e_support import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The sandbox\n", 1)[1].split("\n## ", 1)[0]
    flags = [f for a in build_parser()._actions for f in a.option_strings if f.startswith("--")]
    missing = [f for f in flags if f"`{f}" not in section and f != "--help"]
    assert missing == [], f"README's sandbox section lacks {missing}"
    steps = [k for k in STEPS if f"`{k}`" not in section and f"`{k}:" not in section]
    steps = [k for k in steps if f"`{k}[" not in section]
    assert steps == [], f"README's sandbox section lacks fault steps {steps}"
