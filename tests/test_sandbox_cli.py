"""The console script: prints its URL (and token), serves, exits 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
