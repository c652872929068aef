"""Mirror mode, as properties: whatever the memberships and the crashes, the audience follows.

Any sequence of memberships across runs, with a crash injected into any run at any batch,
ends, after one clean run, with the sandbox audience equal to the last membership. Crashes
are the sandbox's: a dropped connection before the batch is applied, one after it is applied
(the answer lost on the way: the hardest case for the store), or a 500, each with no retry
left, so the run stops right there. After every run the store must not claim more than the
API holds, and (when it has a baseline) must know every member the API holds.

The last tests crash the real command with SIGKILL while the API applies a batch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from target_appsflyer_audiences.identifiers import Normaliser
from target_appsflyer_audiences.members import IntakeCounts, MemberBuilder
from target_appsflyer_audiences.membership_store import SqliteStore
from tests.audiences_support import (
    IOS_APP,
    TARGET_COMMAND,
    audience,
    idfv,
    run_target,
    singer_input,
    target_config,
)

POOL = 24
CRASHES = ("reset", "applied-reset", "500")
IDENTIFIERS = (("idfv", "idfv"), ("emails", "email"))

membership = st.dictionaries(
    st.integers(0, POOL - 1), st.sampled_from([None, "a", "b"]), max_size=POOL
)
crash = st.none() | st.tuples(st.integers(1, 4), st.sampled_from(CRASHES))


def records(members: dict[int, str | None]) -> list[dict[str, object]]:
    """One record per member; the e-mail variant changes what is sent for it."""
    return [
        {"user_id": n, "idfv": idfv(n).upper(), "email": f"u{n}.{v}@example.com" if v else None}
        for n, v in sorted(members.items())
    ]


def expected(members: dict[int, str | None]) -> set[frozenset[tuple[str, str]]]:
    """The devices the API must hold for this membership (built by the target's own rules)."""
    builder = MemberBuilder(IOS_APP, "ios", IDENTIFIERS, Normaliser(), IntakeCounts())
    devices = set()
    for record in records(members):
        member = builder.build(record)
        assert member is not None
        devices.add(frozenset(json.loads(member.device).items()))
    return devices


def check_store(store_path: Path, key: str, server: SandboxServer) -> None:
    """Final rows are held by the API; with a baseline, every API member is in the store."""
    if not store_path.exists():
        return
    store = SqliteStore(store_path)
    try:
        rows = {k: pending for k, _, pending in store.members(key)}
        baseline = store.has_baseline(key)
    finally:
        store.close()
    held = {f"idfv:{dict(d)['idfv']}" for d in server.audiences.members(key)}
    claimed = {k for k, pending in rows.items() if not pending}
    assert claimed <= held, f"the store claims members the API lacks: {sorted(claimed - held)}"
    if baseline:
        assert held <= set(rows), f"the API holds members the store forgot: {held - set(rows)}"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    runs=st.lists(st.tuples(membership, crash), min_size=2, max_size=5),
    last=membership,
    with_store=st.booleans(),
    cap=st.integers(2, 5),
)
def test_mirror_converges_to_the_last_membership(
    sandbox: SandboxServer,
    tmp_path: Path,
    runs: list[tuple[dict[int, str | None], tuple[int, str] | None]],
    last: dict[int, str | None],
    with_store: bool,
    cap: int,
) -> None:
    key = f"K-{uuid.uuid4().hex[:12]}"
    store_path = tmp_path / f"{key}.sqlite"
    extra = {"membership_store": str(store_path)} if with_store else {}
    config = target_config(
        sandbox,
        audience(import_key=key, identifiers=dict(IDENTIFIERS)),
        max_devices_per_request=cap,
        max_retries=0,
        **extra,
    )
    api = sandbox.audiences
    for members, crash_at in runs:
        api.clear_script()
        if crash_at is not None:
            number, kind = crash_at
            api.script(*["ok"] * (number - 1), kind)
        run_target(config, singer_input(records(members)))
        check_store(store_path, key, sandbox)
    api.clear_script()
    before = api.members(key)
    final = run_target(config, singer_input(records(last)))
    check_store(store_path, key, sandbox)
    if final.exit_code == 0:
        assert api.members(key) == expected(last)
    else:
        # Only one refusal is legitimate: an empty membership with no baseline to remove by.
        assert not last, final.log
        assert "cannot empty an audience" in final.error + final.log
        assert api.members(key) == before


def _kill_during_apply(
    sandbox: SandboxServer, tmp_path: Path, config: dict[str, object], lines: str, at: int
) -> int:
    """Run the command; SIGKILL it while the API applies its ``at``-th call. Its exit code."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    calls_before = len(sandbox.audiences.request_log)
    process = subprocess.Popen(
        [*TARGET_COMMAND, "--config", str(config_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )

    def kill(number: int) -> None:
        if number == calls_before + at:
            os.kill(process.pid, signal.SIGKILL)

    sandbox.audiences.after_apply = kill
    try:
        _, stderr = process.communicate(lines, timeout=120)
    finally:
        sandbox.audiences.after_apply = None
    (tmp_path / f"killed-{at}.log").write_text(stderr)
    return process.returncode


def test_sigkill_while_a_batch_is_applied_is_repaired_by_the_next_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    store_path = tmp_path / "store.sqlite"
    config = target_config(
        sandbox,
        audience(identifiers=dict(IDENTIFIERS)),
        max_devices_per_request=3,
        membership_store=str(store_path),
    )
    first = {n: "a" for n in range(12)}
    assert run_target(config, singer_input(records(first))).exit_code == 0
    key = str(audience()["import_key"])
    # The next membership adds 6 and removes 6 (4 calls); kill during each in turn.
    second = {n: "a" for n in range(6, 18)}
    for at in (1, 2, 3, 4):
        assert run_target(config, singer_input(records(first))).exit_code == 0
        code = _kill_during_apply(sandbox, tmp_path, config, singer_input(records(second)), at)
        assert code == -signal.SIGKILL
        check_store(store_path, key, sandbox)
        repaired = run_target(config, singer_input(records(second)))
        assert repaired.exit_code == 0, repaired.log
        assert sandbox.audiences.members(key) == expected(second), f"killed at call {at}"


def test_sigterm_before_the_input_ends_sends_nothing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # singer-sdk drains every sink on SIGTERM as if the input had ended; the audience must
    # not be sent from a membership that is not known to be complete.
    config = target_config(sandbox, max_devices_per_request=2)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [*TARGET_COMMAND, "--config", str(config_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stderr is not None
    process.stdin.write(singer_input(records({n: None for n in range(6)})))
    process.stdin.flush()  # stdin stays open: the input has not ended
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "-> audience" in line:  # the SCHEMA was read; the records follow it
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=60)
    (tmp_path / "sigterm.log").write_text("".join(seen) + rest)
    assert sandbox.audiences.request_log == []
