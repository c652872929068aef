"""End to end: a PostgreSQL view -> MeltanoLabs tap-postgres -> `meltano run` -> the target.

The README's worked example for real: a ``users`` table and a ``purchases`` table in a fresh
schema of the test database, the view "installed in the last 30 days and did not purchase",
read by the real tap-postgres through the real Meltano (the project's own meltano.yml, its
dev environment) into target-appsflyer-audiences against the sandbox. Run twice: the second
run, after the tables changed, sends only the difference (the membership store).

tap-postgres lives in a venv of its own (``.venv-targets/tap-postgres``, or
TAP_POSTGRES_EXECUTABLE); Meltano is told to use it by placing that venv where it keeps the
plugin's, so only the target is installed by Meltano (from ``pip_url: -e .``). Missing
pieces skip with the reason, or fail under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tests.audiences_support import IOS_APP, idfv
from tests.e2e_support import DSN, ROOT, TARGETS, executable, skip_or_fail
from tests.tap_checks import assert_token_absent

pytestmark = pytest.mark.e2e

IMPORT_KEY = "NEW_INSTALLS_NO_PURCHASE_IOS"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A sandbox without pacing (Meltano runs the target as a command, on the real clock)."""
    with running_sandbox(seed=42) as server:
        yield server


@pytest.fixture
def schema() -> Iterator[tuple[object, str]]:
    """A fresh schema with the users and purchases tables and the audience's view."""
    psycopg = pytest.importorskip("psycopg")
    try:
        connection = psycopg.connect(DSN, connect_timeout=5, autocommit=True)
    except psycopg.OperationalError as error:
        skip_or_fail(f"PostgreSQL not reachable at {DSN!r}: {error}")
    name = f"audiences_e2e_{uuid.uuid4().hex[:8]}"
    connection.execute(f"CREATE SCHEMA {name}")
    connection.execute(
        f"""
        CREATE TABLE {name}.users (
            user_id integer PRIMARY KEY, idfv text, platform text, installed_at timestamptz
        );
        CREATE TABLE {name}.purchases (user_id integer, amount numeric);
        CREATE VIEW {name}.new_installs_no_purchase AS
        SELECT u.user_id, u.idfv FROM {name}.users u
        WHERE u.installed_at >= now() - interval '30 days' AND u.platform = 'ios'
          AND NOT EXISTS (SELECT 1 FROM {name}.purchases p WHERE p.user_id = u.user_id);
        """
    )
    try:
        yield connection, name
    finally:
        connection.execute(f"DROP SCHEMA {name} CASCADE")
        connection.close()


def meltano(command: Path, *args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(command), *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"meltano {' '.join(args)}:\n{done.stderr[-5000:]}"
    return done


def expected_members(connection: object, name: str) -> set[frozenset[tuple[str, str]]]:
    rows = connection.execute(  # type: ignore[attr-defined]
        f"SELECT user_id, idfv FROM {name}.new_installs_no_purchase"
    ).fetchall()
    return {frozenset({"app_id": IOS_APP, "idfv": v.lower(), "cuid": str(u)}.items())
            for u, v in rows}  # fmt: skip


def test_meltano_run_tap_postgres_into_audiences(
    sandbox: SandboxServer, schema: tuple[object, str], tmp_path: Path
) -> None:
    meltano_bin = executable("MELTANO_EXECUTABLE", TARGETS / "meltano/bin/meltano")
    tap = executable("TAP_POSTGRES_EXECUTABLE", TARGETS / "tap-postgres/bin/tap-postgres")
    connection, name = schema
    users = [(n, idfv(n).upper(), "ios" if n % 5 else "android", n % 40) for n in range(60)]
    for number, device_id, platform, days_ago in users:
        connection.execute(  # type: ignore[attr-defined]
            f"INSERT INTO {name}.users VALUES (%s, %s, %s, now() - %s * interval '1 day')",
            (number, device_id, platform, days_ago),
        )
    connection.execute(  # type: ignore[attr-defined]
        f"INSERT INTO {name}.purchases SELECT user_id, 9.99 FROM {name}.users WHERE user_id % 7 = 0"
    )
    home = tmp_path / "meltano"
    venv = home / "extractors/tap-postgres/venv"
    venv.parent.mkdir(parents=True)
    venv.symlink_to(tap.parent.parent, target_is_directory=True)
    params = dict(part.split("=", 1) for part in DSN.split())
    stream = f"{name}-new_installs_no_purchase"
    audiences = [
        {"stream": stream, "import_key": IMPORT_KEY, "platform": "ios", "app_id": IOS_APP,
         "identifiers": {"idfv": "idfv", "cuid": "user_id"}}
    ]  # fmt: skip
    env = {
        **os.environ,
        "MELTANO_SYS_DIR_ROOT": str(home),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_ENVIRONMENT": "dev",
        "TAP_POSTGRES_HOST": params.get("host", "127.0.0.1"),
        "TAP_POSTGRES_PORT": params.get("port", "5432"),
        "TAP_POSTGRES_USER": params.get("user", "postgres"),
        "TAP_POSTGRES_DATABASE": params.get("dbname", "test"),
        # tap-postgres insists on a password even where trust auth needs none.
        "TAP_POSTGRES_PASSWORD": params.get("password", "unused"),
        "TAP_POSTGRES_FILTER_SCHEMAS": json.dumps([name]),
        "TAP_POSTGRES__SELECT": json.dumps([f"{stream}.*"]),
        "TARGET_APPSFLYER_AUDIENCES_API_URL": sandbox.base_url,
        "TARGET_APPSFLYER_AUDIENCES_API_TOKEN": sandbox.token,
        "TARGET_APPSFLYER_AUDIENCES_AUDIENCES": json.dumps(audiences),
        "TARGET_APPSFLYER_AUDIENCES_MEMBERSHIP_STORE": str(tmp_path / "audiences.sqlite"),
        "TARGET_APPSFLYER_AUDIENCES_MAX_DEVICES_PER_REQUEST": "10",
    }
    meltano(meltano_bin, "install", "target-appsflyer-audiences", env=env)
    first = meltano(
        meltano_bin, "run", "--no-install", "tap-postgres", "target-appsflyer-audiences", env=env
    )
    (tmp_path / "meltano-run-1.log").write_text(first.stderr)
    want = expected_members(connection, name)
    assert 10 < len(want) < 60  # the view really filters
    assert sandbox.audiences.members(IMPORT_KEY) == want
    assert "form=overwrite" in first.stderr

    # A day later: two of them purchased, one new install. Only the difference is sent.
    connection.execute(  # type: ignore[attr-defined]
        f"INSERT INTO {name}.purchases SELECT user_id, 1 FROM {name}.new_installs_no_purchase "
        "ORDER BY user_id LIMIT 2"
    )
    connection.execute(  # type: ignore[attr-defined]
        f"INSERT INTO {name}.users VALUES (1000, %s, 'ios', now())", (idfv(1000),)
    )
    calls = len(sandbox.audiences.request_log)
    second = meltano(
        meltano_bin, "run", "--no-install", "tap-postgres", "target-appsflyer-audiences", env=env
    )
    (tmp_path / "meltano-run-2.log").write_text(second.stderr)
    assert sandbox.audiences.members(IMPORT_KEY) == expected_members(connection, name)
    assert "form=incremental" in second.stderr
    assert "added=1 removed=2" in second.stderr
    new_calls = sandbox.audiences.request_log[calls:]
    assert [(r.action, r.devices) for r in new_calls] == [("add", 1), ("remove", 2)]
    assert_token_absent(sandbox.token, first.stderr, second.stderr)
