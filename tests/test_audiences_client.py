"""Batching, limits, retries and error messages, against the sandbox over HTTP."""

from __future__ import annotations

import logging

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from target_appsflyer_audiences.client import AudiencesClient, request_body, server_message
from target_appsflyer_audiences.pacer import Pacer
from tests.audiences_support import (
    IMPORT_KEY,
    IOS_APP,
    idfv,
    idfv_devices,
    members_input,
    run_target,
    target_config,
)
from tests.tap_checks import assert_token_absent

A = [idfv(n) for n in range(12)]


def test_429_and_5xx_are_retried_and_heal(sandbox: SandboxServer) -> None:
    sandbox.audiences.script("429", "500", "reset", "503")
    run = run_target(target_config(sandbox, max_retries=4), members_input(A[:3]))
    assert run.exit_code == 0, run.log
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[:3])
    assert run.log.count("Retrying audience for stream 'users'") == 4
    assert "after 429 Too many requests (try 2 of 5" in run.log
    statuses = [r.status for r in sandbox.audiences.request_log]
    assert statuses == [429, 500, 0, 503, 200]
    assert run.summary["requests"] == "5"


def test_retries_exhausted_names_the_audience_and_batch(sandbox: SandboxServer) -> None:
    sandbox.audiences.script("500", "500", "500")
    run = run_target(target_config(sandbox, max_retries=2), members_input(A[:3]))
    assert run.exit_code == 1
    line = next(x for x in run.log.splitlines() if x.startswith("ERROR Audience failed"))
    assert "500 Internal Server Error, for audience for stream 'users'" in line
    assert "overwrite batch 1 (3 devices)" in line
    assert "still failing after 3 tries" in line
    assert sandbox.audiences.size(IMPORT_KEY) == 0


def test_400_surfaces_the_server_message_with_stream_and_batch(sandbox: SandboxServer) -> None:
    sandbox.audiences.create(IMPORT_KEY, "android")  # the audience is Android; we send iOS
    run = run_target(target_config(sandbox), members_input(A[:2]))
    assert run.exit_code == 1
    assert (
        "400 for audience for stream 'users' (import_key "
        f"'{IMPORT_KEY}'), overwrite batch 1 (2 devices): the API refused the batch: Invalid "
        "audience platform, this audience is already configured for Android"
    ) in run.log
    assert len(sandbox.audiences.request_log) == 1  # a 400 is not retried


def test_403_is_a_token_or_plan_message(sandbox: SandboxServer) -> None:
    config = target_config(sandbox, api_token="x" * 40)
    run = run_target(config, members_input(A[:2]))
    assert run.exit_code == 1
    assert "403 Forbidden for audience for stream 'users'" in run.log
    assert "V2 (JWT) API token" in run.log
    assert "AppsFlyer Audiences (a premium feature)" in run.log
    assert_token_absent("x" * 40, run.log, run.error)


def test_a_lower_device_cap_halves_batches_for_the_rest_of_the_run(
    sandbox: SandboxServer,
) -> None:
    sandbox.audiences.max_devices = 3
    run = run_target(target_config(sandbox, max_devices_per_request=8), members_input(A))
    assert run.exit_code == 0, run.log
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A)
    sent = [(r.action, r.devices, r.status) for r in sandbox.audiences.request_log]
    # 8 refused; the API named 3: the refused batch goes as 3+3+2, the rest in threes.
    assert sent == [
        ("overwrite", 8, 400),
        ("overwrite", 3, 200),
        ("add", 3, 200),
        ("add", 2, 200),
        ("add", 3, 200),
        ("add", 1, 200),
    ]
    assert "sending at most 3 per request for the rest of the run" in run.log


def test_pacer_spaces_calls_evenly() -> None:
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    pacer = Pacer(60, clock=lambda: clock[0], sleep=sleep)
    for _ in range(4):
        pacer.acquire()
    assert waits == pytest.approx([1.02, 1.02, 1.02])
    pacer.hold_off(10)
    pacer.acquire()
    assert sum(waits) == pytest.approx(3.06 + 10)


def test_client_sends_the_documented_body_and_bearer_token(sandbox: SandboxServer) -> None:
    client = AudiencesClient(
        sandbox.base_url,
        sandbox.token,
        Pacer(10_000),
        max_retries=0,
        timeout=10,
        logger=logging.getLogger("test"),
    )
    device = f'{{"app_id":"{IOS_APP}","idfv":"{A[0]}"}}'
    client.send("add", "K", "ios", [device], "test batch")
    client.close()
    (entry,) = sandbox.audiences.request_log
    assert (entry.action, entry.import_key, entry.platform, entry.devices) == ("add", "K", "ios", 1)
    assert request_body("K", "ios", [device]).decode() == (
        f'{{"import_key": "K", "platform": "ios", "devices": [{device}]}}'
    )


def test_server_message_reads_the_spec_spellings() -> None:
    assert server_message(b'{"message": "Forbidden"}') == "Forbidden"
    assert server_message(b'{"messege": "Invalid audience platform"}') == (
        "Invalid audience platform"
    )
    assert server_message(b"<html>oops</html>") == "<html>oops</html>"
