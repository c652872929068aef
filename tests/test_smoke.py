"""The tap syncs a report from the sandbox end to end (in-process and as a command)."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import SANDBOX_TODAY
from tests.helpers import run_tap, run_tap_cli, sandbox_config, utc_noon


def test_sync_emits_records_and_state(sandbox) -> None:
    run = run_tap(sandbox_config(sandbox), now=utc_noon(SANDBOX_TODAY))
    assert run.exit_code == 0
    assert set(run.records) == {"retention_by_media_source", "revenue_by_media_source_geo"}
    assert all(r["app_id"] == "id123456789" for r in run.records["retention_by_media_source"])
    assert run.last_state is not None


def test_cli_sync_exit_code(live_sandbox, tmp_path) -> None:
    start = live_sandbox.today - timedelta(days=20)
    run = run_tap_cli(sandbox_config(live_sandbox, start_date=start.isoformat()), tmp_path)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert run.records["retention_by_media_source"]
    assert live_sandbox.token not in run.stderr


def test_clock_ahead_of_api_stops_with_one_line(sandbox, tmp_path) -> None:
    # The sandbox believes it is SANDBOX_TODAY; the tap runs on the real (later) clock, so
    # the API returns fewer complete days than the tap expects: stop, say why, no traceback.
    config = sandbox_config(sandbox, start_date="2026-06-01", max_retries=1)
    run = run_tap_cli(config, tmp_path)
    assert run.exit_code == 1
    assert "clock" in run.stderr
    assert "Traceback" not in run.stderr
