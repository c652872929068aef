"""A bad config stops the target at start-up: one line naming stream and field, no call.

Config-only cases run the real command (exit code, stderr); the command starts before any
input is read, so the sandbox's request log must stay empty. Schema-dependent cases (a mapped
field the stream lacks, a stream with no audience) fail when the SCHEMA arrives, still
before any call.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from target_appsflyer_audiences.membership_store import check_store_location
from target_appsflyer_audiences.settings import AudienceConfigError, parse_settings
from tests.audiences_support import (
    audience,
    idfv,
    members_input,
    run_target_cli,
    singer_input,
    target_config,
)
from tests.tap_checks import assert_token_absent

#: case -> (audience overrides or top-level overrides, words the error line must hold)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[str, ...]]] = {
    "gaid on iOS": (
        {"identifiers": {"gaid": "gaid"}},
        {},
        ("audience for stream 'users'", "'identifiers.gaid'", "not accepted for ios"),
    ),
    "idfv on Android": (
        {"platform": "android", "identifiers": {"idfv": "idfv"}},
        {},
        ("audience for stream 'users'", "'identifiers.idfv'", "android"),
    ),
    "unknown identifier": (
        {"identifiers": {"device_id": "idfv"}},
        {},
        ("stream 'users'", "'identifiers.device_id'", "not an AppsFlyer identifier"),
    ),
    "contacts only": (
        {"identifiers": {"emails": "email"}},
        {},
        ("stream 'users'", "'identifiers'", "device identifier"),
    ),
    "no import key": ({"import_key": " "}, {}, ("stream 'users'", "'import_key'")),
    "bad platform": ({"platform": "web"}, {}, ("stream 'users'", "'platform'", "web")),
    "bad mode": ({"mode": "sync"}, {}, ("stream 'users'", "'mode'")),
    "plain http": ({}, {"api_url": "http://example.com"}, ("'api_url'", "https")),
    "store folder missing": (
        {},
        {"membership_store": "/nonexistent/folder/store.sqlite"},
        ("'membership_store'", "/nonexistent/folder"),
    ),
    "removal percent": ({}, {"max_removal_percent": 150}, ("'max_removal_percent'", "0-100")),
    "country code": ({}, {"phone_country_code": "x1"}, ("'phone_country_code'",)),
    "zero cap": ({}, {"max_devices_per_request": 0}, ("'max_devices_per_request'",)),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every case's command at once (each is mostly interpreter start-up)."""
    from tap_appsflyer_cohort.sandbox.testing import running_sandbox

    with running_sandbox() as server:

        def one(name: str) -> Any:
            entry, top, _ = CASES[name]
            config = target_config(server, audience(**entry), **top)
            folder = tmp_path_factory.mktemp(name.replace(" ", "_"))
            return run_target_cli(config, members_input([idfv(1)]), folder)

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = dict(zip(CASES, pool.map(one, CASES), strict=True))
        calls = len(server.audiences.request_log)
        token = server.token
    return {"results": results, "calls": calls, "token": token}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_one_line_before_any_call(outcomes: dict[str, Any], case: str) -> None:
    run = outcomes["results"][case]
    assert run.exit_code == 1, run.log[-2000:]
    errors = [line for line in run.log.splitlines() if "| ERROR" in line]
    assert errors, run.log[-2000:]
    named = [line for line in errors if all(word in line for word in CASES[case][2])]
    assert named, f"no ERROR line names {CASES[case][2]}: {errors}"
    assert "Traceback" not in run.log
    assert outcomes["calls"] == 0
    assert_token_absent(outcomes["token"], run.log)


def test_mapped_field_missing_from_the_schema(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = target_config(sandbox, audience(identifiers={"idfv": "device_idfv"}))
    run = run_target_cli(config, members_input([idfv(1)]), tmp_path)
    assert run.exit_code == 1
    assert "'identifiers.idfv' names field 'device_idfv'" in run.error
    assert sandbox.audiences.request_log == []


def test_stream_without_an_audience(sandbox: SandboxServer, tmp_path: Path) -> None:
    run = run_target_cli(
        target_config(sandbox), singer_input([{"user_id": 1}], stream="orders"), tmp_path
    )
    assert run.exit_code == 1
    assert "stream 'orders': no entry in 'audiences' has this stream" in run.error
    assert sandbox.audiences.request_log == []


def test_default_mapping_needs_a_device_identifier_field(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    schema = {"type": "object", "properties": {"user_id": {"type": "integer"}}}
    run = run_target_cli(
        target_config(sandbox), singer_input([{"user_id": 1}], schema=schema), tmp_path
    )
    assert run.exit_code == 1
    assert "no field of the stream is named like a device identifier for ios" in run.error


def test_postgres_store_without_the_driver_says_which_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ImportError
    with pytest.raises(AudienceConfigError, match=r"\[postgres\]"):
        check_store_location("postgresql://u@127.0.0.1/db")


def test_two_audiences_for_one_stream_or_key() -> None:
    base = {"api_token": "t", "audiences": [audience(), audience(import_key="OTHER")]}
    with pytest.raises(AudienceConfigError, match="'stream' 'users' is used by two"):
        parse_settings(base)
    twice = {"api_token": "t", "audiences": [audience(), audience(stream="b")]}
    with pytest.raises(AudienceConfigError, match="'import_key'"):
        parse_settings(twice)
