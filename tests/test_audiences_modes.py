"""The sync modes against the sandbox: mirror (stateless and incremental), add, remove.

Every test runs the real target in-process on Singer input and compares the sandbox's
ground truth (its audience) and request log with what the mode promises.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from target_appsflyer_audiences.membership_store import SqliteStore
from tests.audiences_support import (
    IMPORT_KEY,
    IOS_APP,
    audience,
    device,
    idfv,
    idfv_devices,
    members_input,
    run_target,
    singer_input,
    target_config,
)
from tests.e2e_support import DSN

A = [idfv(n) for n in range(10)]


def actions(server: SandboxServer) -> list[tuple[str, int]]:
    return [(r.action, r.devices) for r in server.audiences.request_log if r.status == 200]


def test_stateless_mirror_overwrites_then_adds(sandbox: SandboxServer) -> None:
    sandbox.audiences.create(IMPORT_KEY, "ios")
    config = target_config(sandbox, max_devices_per_request=4)
    run = run_target(config, members_input(A))
    assert run.exit_code == 0, run.log
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A)
    assert actions(sandbox) == [("overwrite", 4), ("add", 4), ("add", 2)]
    summary = run.summary
    assert summary["form"] == "overwrite"
    assert (summary["records"], summary["members"], summary["added"]) == ("10", "10", "10")
    assert summary["requests"] == "3"
    # Without a store, every run sends everything again; the audience follows the table.
    run = run_target(config, members_input(A[5:]))
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[5:])
    assert actions(sandbox)[3:] == [("overwrite", 4), ("add", 1)]


def test_incremental_mirror_sends_only_the_difference(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = target_config(sandbox, membership_store=str(tmp_path / "store.sqlite"))
    first = run_target(config, members_input(A[:6]))
    assert first.summary["form"] == "overwrite"  # no baseline yet
    second = run_target(config, members_input(A[2:8]))
    assert second.exit_code == 0, second.log
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[2:8])
    assert actions(sandbox) == [("overwrite", 6), ("add", 2), ("remove", 2)]
    summary = second.summary
    assert summary["form"] == "incremental"
    assert (summary["added"], summary["removed"], summary["unchanged"]) == ("2", "2", "4")
    # Nothing changed: no call at all.
    third = run_target(config, members_input(A[2:8]))
    assert third.summary["requests"] == "0"
    assert len(actions(sandbox)) == 3


def test_additions_go_before_removals(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = target_config(
        sandbox, membership_store=str(tmp_path / "s.sqlite"), max_devices_per_request=2
    )
    run_target(config, members_input(A[:4]))
    before = len(actions(sandbox))
    run_target(config, members_input(A[4:8]))
    sent = [a for a, _ in actions(sandbox)][before:]
    assert sent == ["add", "add", "remove", "remove"]
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[4:8])


def test_a_changed_contact_identifier_is_sent_again(sandbox: SandboxServer, tmp_path: Path) -> None:
    config = target_config(sandbox, membership_store=str(tmp_path / "s.sqlite"))
    records = [{"user_id": 1, "idfv": A[0], "email": "old@example.com"}]
    run_target(config, singer_input(records))
    records[0]["email"] = "new@example.com"
    run = run_target(config, singer_input(records))
    assert run.summary["added"] == "1"
    ((member,),) = [sandbox.audiences.members(IMPORT_KEY)]
    assert dict(member)["emails"] != dict(next(iter(idfv_devices([A[0]])))).get("emails")
    assert len(sandbox.audiences.members(IMPORT_KEY)) == 1


def test_empty_membership_without_a_baseline_fails_and_changes_nothing(
    sandbox: SandboxServer,
) -> None:
    config = target_config(sandbox)
    run_target(config, members_input(A[:3]))
    run = run_target(config, members_input([]))
    assert run.exit_code == 1
    assert "cannot empty an audience" in run.log
    assert "Device list cannot be empty" in run.log
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[:3])
    assert run.summary["status"] == "failed"


def test_empty_membership_with_a_baseline_removes_everyone(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = target_config(sandbox, membership_store=str(tmp_path / "s.sqlite"))
    run_target(config, members_input(A[:3]))
    run = run_target(config, members_input([]))
    assert run.exit_code == 0, run.log
    assert sandbox.audiences.members(IMPORT_KEY) == set()
    assert run.summary["removed"] == "3"


def test_removal_guard_stops_a_run_that_would_empty_the_audience(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = target_config(
        sandbox, membership_store=str(tmp_path / "s.sqlite"), max_removal_percent=50
    )
    run_target(config, members_input(A))
    calls = len(sandbox.audiences.request_log)
    run = run_target(config, members_input(A[:2]))  # 8 of 10 would go: a failed tap?
    assert run.exit_code == 1
    assert "max_removal_percent" in run.log
    assert "would remove 8 of 10" in run.log
    assert len(sandbox.audiences.request_log) == calls
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A)
    assert run_target(config, members_input(A[:6])).exit_code == 0  # 4 of 10: allowed


def test_add_and_remove_modes(sandbox: SandboxServer, tmp_path: Path) -> None:
    store = str(tmp_path / "s.sqlite")
    mirror = target_config(sandbox, membership_store=store)
    run_target(mirror, members_input(A[:3]))
    assert SqliteStore(Path(store)).has_baseline(IMPORT_KEY)
    add = target_config(sandbox, audience(mode="add"), membership_store=store)
    assert run_target(add, members_input(A[3:5])).summary["added"] == "2"
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[:5])
    # add ran behind mirror's back: the baseline is dropped, the next mirror overwrites.
    assert not SqliteStore(Path(store)).has_baseline(IMPORT_KEY)
    remove = target_config(sandbox, mode="remove")
    run = run_target(remove, members_input([A[0], A[9]]))  # A[9]: not a member, a no-op
    assert run.summary["removed"] == "2"
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[1:5])
    assert run_target(mirror, members_input(A[1:3])).summary["form"] == "overwrite"
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[1:3])


def test_remove_sends_one_identifier_per_device(sandbox: SandboxServer) -> None:
    # The API refuses removals with more than one identifier per device.
    config = target_config(sandbox, audience(identifiers={"idfv": "idfv", "cuid": "user_id"}))
    records = [{"user_id": n, "idfv": v} for n, v in enumerate(A[:3])]
    run_target(config, singer_input(records))
    assert len(sandbox.audiences.members(IMPORT_KEY)) == 3
    remove = target_config(
        sandbox, audience(identifiers={"idfv": "idfv", "cuid": "user_id"}, mode="remove")
    )
    run = run_target(remove, singer_input(records[:2]))
    assert run.exit_code == 0, run.log
    assert sandbox.audiences.members(IMPORT_KEY) == {device(idfv=A[2], cuid="2")}


def test_duplicates_are_sent_once_and_counted(sandbox: SandboxServer) -> None:
    ids = [A[0], A[0].upper(), A[1], A[0].replace("-", "")]
    run = run_target(target_config(sandbox), members_input(ids))
    assert run.summary["members"] == "2"
    assert run.summary["duplicates"] == "2"
    assert sandbox.audiences.request_log[0].devices == 2


def test_summary_counts_skipped_invalid_and_zero(sandbox: SandboxServer) -> None:
    records = [
        {"user_id": 1, "idfv": A[0], "email": "a@b.co"},
        {"user_id": 2, "idfv": "0" * 32, "email": "x@y.zz"},  # all-zero: skipped
        {"user_id": 3, "idfv": "junk", "email": "nope"},  # invalid both: skipped
        {"user_id": 4, "idfv": None, "email": None},  # nothing: skipped
        {"user_id": 5, "idfv": A[1], "email": "nope"},  # sent without its e-mail
    ]
    run = run_target(target_config(sandbox), singer_input(records))
    summary = run.summary
    assert summary["records"] == "5"
    assert summary["members"] == "2"
    assert summary["skipped"] == "3"
    assert summary["invalid"] == "3"
    assert summary["zero"] == "1"
    line = next(line for line in run.log.splitlines() if "Audience summary" in line)
    assert "invalid=3 (emails=2, idfv=1) zero=1 (idfv=1)" in line
    assert sandbox.audiences.size(IMPORT_KEY) == 2


def test_two_streams_two_audiences_one_failure_does_not_stop_the_other(
    sandbox: SandboxServer,
) -> None:
    config = target_config(
        sandbox,
        audience(),
        audience(stream="android_users", import_key="AND", platform="android",
                 app_id="com.example.app"),
    )  # fmt: skip
    sandbox.audiences.create("AND", "ios")  # wrong platform: the API refuses every call
    lines = members_input(A[:2]) + singer_input(
        [{"user_id": 1, "gaid": idfv(1, "g")}], stream="android_users"
    )
    run = run_target(config, lines)
    assert run.exit_code == 1
    assert "1 of 2 audience(s) failed" in run.error
    assert "Invalid audience platform" in run.log
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[:2])
    assert [s["status"] for s in run.summaries] == ["ok", "failed"]


def test_a_stream_absent_from_the_input_leaves_its_audience_alone(
    sandbox: SandboxServer,
) -> None:
    config = target_config(sandbox, audience(), audience(stream="other", import_key="O"))
    sandbox.audiences.create("O", "ios")
    run = run_target(config, members_input(A[:1]))
    assert run.exit_code == 0
    assert "Stream 'other' was not in the input" in run.log
    assert [r.import_key for r in sandbox.audiences.request_log] == [IMPORT_KEY]


def test_schema_change_mid_stream_keeps_the_members_staged_so_far(
    sandbox: SandboxServer,
) -> None:
    wider = {"type": "object", "properties": {"user_id": {"type": "integer"},
             "idfv": {"type": ["string", "null"]}, "extra": {"type": "string"}}}  # fmt: skip
    lines = members_input(A[:3]) + members_input(A[3:5], schema=wider)
    run = run_target(target_config(sandbox), lines)
    assert run.exit_code == 0, run.log
    assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[:5])


def test_postgres_membership_store(sandbox: SandboxServer) -> None:
    try:
        connection = psycopg.connect(DSN, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable: {error}")
    schema = f"audiences_store_{abs(hash(sandbox.token)) % 10**8}"
    connection.execute(f"CREATE SCHEMA {schema}")
    try:
        params = dict(part.split("=", 1) for part in DSN.split())
        url = (
            f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
            f"{params.get('port', '5432')}/{params.get('dbname', 'test')}"
            f"?options=-csearch_path%3D{schema}"
        )
        config = target_config(sandbox, membership_store=url, max_devices_per_request=3)
        assert run_target(config, members_input(A[:6])).summary["form"] == "overwrite"
        run = run_target(config, members_input(A[3:9]))
        assert run.exit_code == 0, run.log
        assert run.summary["form"] == "incremental"
        assert (run.summary["added"], run.summary["removed"]) == ("3", "3")
        assert sandbox.audiences.members(IMPORT_KEY) == idfv_devices(A[3:9])
        rows = connection.execute(
            f"SELECT key, pending FROM {schema}.appsflyer_audience_members ORDER BY key"
        ).fetchall()
        assert rows == sorted((f"idfv:{v}", False) for v in A[3:9])
    finally:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")
        connection.close()


def test_app_id_is_sent_with_every_device(sandbox: SandboxServer) -> None:
    run_target(target_config(sandbox), members_input(A[:2]))
    assert all(dict(d)["app_id"] == IOS_APP for d in sandbox.audiences.members(IMPORT_KEY))
