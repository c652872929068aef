"""meltano.yml and the Meltano Hub definition stay true to the tap, and Meltano 4 runs them.

The static tests compare the files with the tap's own config schema (`--about`). The last
two run the real `meltano` (from `.venv-targets/meltano`, or MELTANO_EXECUTABLE): the
project's `dev` environment, against the sandbox, into DuckDB, twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tap_appsflyer_cohort.settings import parse_settings
from tap_appsflyer_cohort.tap import TapAppsFlyerCohort
from tests.e2e_support import ROOT, TARGETS, executable

PROJECT = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
HUB_FILE = ROOT / "meltano-hub/extractors/tap-appsflyer-cohort/appsflyer-cohort.yml"
HUB = yaml.safe_load(HUB_FILE.read_text(encoding="utf-8"))
ABOUT_INFO = json.loads(
    subprocess.run(
        [sys.executable, "-m", "tap_appsflyer_cohort", "--about", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    ).stdout
)
ABOUT = ABOUT_INFO["settings"]
#: Keys the Hub's extractor definition schema allows (additionalProperties: false).
HUB_KEYS = {
    "name", "pip_url", "variant", "namespace", "label", "description", "executable",
    "settings", "docs", "repo", "logo_url", "hidden", "python", "settings_group_validation",
    "commands", "capabilities", "metadata", "schema", "select", "maintenance_status",
    "quality", "domain_url", "keywords", "requires", "definition", "next_steps",
    "settings_preamble", "usage", "prereq", "supported_python_versions", "log_parser",
}  # fmt: skip
HUB_SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "env", "value_processor", "value_post_processor", "oauth", "options",
    "docs", "hidden", "sensitive",
}  # fmt: skip
#: `--about` settings left out of meltano.yml: Faker needs the SDK's `faker` extra, not installed.
NOT_DECLARED = {"faker_config"}


def extractor(document: Mapping[str, Any] = PROJECT) -> dict[str, Any]:
    (plugin,) = [
        p for p in document["plugins"]["extractors"] if p["name"] == "tap-appsflyer-cohort"
    ]
    return plugin


def loader(name: str) -> dict[str, Any]:
    (plugin,) = [p for p in PROJECT["plugins"]["loaders"] if p["name"] == name]
    return plugin


def environment_config(name: str) -> dict[str, Any]:
    (environment,) = [e for e in PROJECT["environments"] if e["name"] == name]
    (plugin,) = environment["config"]["plugins"]["extractors"]
    return plugin["config"]


def expected_kind(schema: Mapping[str, Any]) -> str:
    """The Meltano setting kind for a JSON schema property."""
    if "enum" in schema:
        return "options"
    if "oneOf" in schema:  # a name, or app_id -> name: Meltano passes either through
        return "string"
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    main = next(t for t in types if t != "null")
    if main == "string" and schema.get("format") == "date":
        return "date_iso8601"
    return {"string": "string", "integer": "integer", "boolean": "boolean", "array": "array"}.get(
        main, "object"
    )


def test_project_follows_meltano_4_conventions() -> None:
    assert "version" not in PROJECT  # deprecated in Meltano 3+
    assert PROJECT["requires_meltano"].startswith(">=4")
    assert PROJECT["default_environment"] == "dev"
    plugin = extractor()
    assert plugin["namespace"] == "tap_appsflyer_cohort"
    assert plugin["pip_url"] == "-e ."
    assert set(plugin["capabilities"]) == {str(c) for c in TapAppsFlyerCohort.capabilities}
    assert {"catalog", "discover", "state", "about", "structured-logging"} <= set(
        plugin["capabilities"]
    )


def test_extractor_settings_mirror_the_tap_config_schema() -> None:
    settings = {s["name"]: s for s in extractor()["settings"]}
    assert set(settings) == set(ABOUT["properties"]) - NOT_DECLARED
    for name, setting in settings.items():
        schema = ABOUT["properties"][name]
        assert setting["kind"] == expected_kind(schema), name
        assert setting["kind"] != "password", f"{name}: use sensitive: true"
        assert bool(setting.get("sensitive")) == bool(schema.get("secret")), name
        assert setting.get("label"), name
        assert setting.get("description"), name
        if "enum" in schema:
            assert [o["value"] for o in setting["options"]] == schema["enum"], name
    assert extractor()["settings_group_validation"] == [ABOUT["required"]]


def test_environments_point_dev_at_the_sandbox_and_prod_at_appsflyer() -> None:
    dev, prod = environment_config("dev"), environment_config("prod")
    assert dev["api_url"].startswith("http://127.0.0.1:")
    assert prod["api_url"].startswith("https://")
    raw = (ROOT / "meltano.yml").read_text(encoding="utf-8")
    assert "api_token:" not in raw.replace("# api_token:", "")  # tokens come from the env
    for config in (dev, prod):  # the tap accepts both (a token and a fixed date stand in)
        parse_settings({**config, "api_token": "t", "start_date": "2026-01-01"}, for_sync=True)


def test_dev_environment_runs_without_extra_setup() -> None:
    """The dev environment needs no PATH, folder or password beyond the repository's."""
    command = extractor()["commands"]["sandbox"]
    assert command["executable"] in {
        line.split("=")[0].strip()
        for line in (ROOT / "pyproject.toml").read_text(encoding="utf-8").splitlines()
        if "tap_appsflyer_cohort.sandbox" in line
    }
    args = command["args"].split()
    port = args[args.index("--port") + 1]
    assert environment_config("dev")["api_url"] == f"http://127.0.0.1:{port}"
    assert args[args.index("--token-file") + 1] == ".sandbox-token"
    assert ".sandbox-token" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    # target-duckdb does not make the folder of its file: output/ is in the repository.
    assert loader("target-duckdb")["settings"][0]["value"].endswith("/output/warehouse.duckdb")
    assert (ROOT / "output/.gitkeep").is_file()
    # MeltanoLabs target-postgres refuses to start without a password, even with trust auth.
    (environment,) = [e for e in PROJECT["environments"] if e["name"] == "dev"]
    (postgres,) = [
        p for p in environment["config"]["plugins"]["loaders"] if p["name"] == "target-postgres"
    ]
    assert {"host", "port", "user", "password", "database"} <= set(postgres["config"])


def test_loaders_are_declared_inline() -> None:
    duck, postgres = loader("target-duckdb"), loader("target-postgres")
    assert duck["namespace"] == "target_duckdb"
    assert duck["pip_url"].startswith("target-duckdb")
    assert postgres["namespace"] == "target_postgres"
    assert postgres["pip_url"].startswith("meltanolabs-target-postgres")
    for plugin in (duck, postgres):
        for setting in plugin["settings"]:
            assert setting.get("kind"), setting["name"]
            assert setting.get("description"), setting["name"]
            assert setting["kind"] != "password", setting["name"]
    sensitive = {s["name"] for s in postgres["settings"] if s.get("sensitive")}
    assert {"password", "sqlalchemy_url"} <= sensitive


def test_loaders_ship_the_backfill_settings() -> None:
    # README, "Performance": the settings that keep a backfill at the API's pace.
    duck, postgres = loader("target-duckdb"), loader("target-postgres")
    for plugin in (duck, postgres):
        declared = {s["name"] for s in plugin["settings"]}
        assert set(plugin["config"]) <= declared, plugin["name"]
    assert duck["config"] == {"batch_size_rows": 10_000}
    config = postgres["config"]
    assert config["use_copy"] is True
    assert config["validate_records"] is False
    # Without metadata columns the target refuses to start unless activate_version is off.
    assert config["add_record_metadata"] is False
    assert config["activate_version"] is False


def test_hub_definition_matches_the_project() -> None:
    assert set(HUB) <= HUB_KEYS
    assert HUB["quality"] in {"gold", "silver", "bronze", "unknown"}
    assert HUB["maintenance_status"] in {"active", "beta", "development", "inactive", "unknown"}
    assert HUB["variant"] == HUB_FILE.stem
    assert HUB["name"] == HUB_FILE.parent.name == "tap-appsflyer-cohort"
    assert HUB["namespace"] == extractor()["namespace"]
    assert "meltano_sdk" in HUB["keywords"]
    assert HUB["capabilities"] == extractor()["capabilities"]
    assert HUB["settings_group_validation"] == extractor()["settings_group_validation"]
    assert HUB["supported_python_versions"] == ABOUT_INFO["supported_python_versions"]
    for setting in HUB["settings"]:
        assert set(setting) <= HUB_SETTING_KEYS, setting["name"]
    fields = ("name", "kind", "label", "description", "sensitive", "options")
    mirror = [{k: s.get(k) for k in fields} for s in extractor()["settings"]]
    assert [{k: s.get(k) for k in fields} for s in HUB["settings"]] == mirror


# --- the real Meltano ------------------------------------------------------------------------


@pytest.fixture
def fast_sandbox() -> Iterator[SandboxServer]:
    """A sandbox on the real clock (Meltano runs the tap as a command) with no pacing limit."""
    with running_sandbox(seed=42, requests_per_minute=100_000) as server:
        yield server


@pytest.fixture(scope="module")
def meltano_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Meltano system directory (plugin venvs, system db) for this module's tests."""
    return tmp_path_factory.mktemp("meltano")


def meltano(
    command: Path, *args: str, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(command), *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"meltano {' '.join(args)}:\n{done.stderr[-4000:]}"
    return done


def test_meltano_resolves_the_dev_environment(meltano_home: Path) -> None:
    command = executable("MELTANO_EXECUTABLE", TARGETS / "meltano/bin/meltano")
    env = {
        **os.environ,
        "MELTANO_SYS_DIR_ROOT": str(meltano_home),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_APPSFLYER_COHORT_API_TOKEN": "from-the-environment",
    }
    done = meltano(
        command, "--environment=dev", "invoke", "--dump=config", "tap-appsflyer-cohort", env=env
    )
    config = json.loads(done.stdout)
    assert config["api_token"] == "from-the-environment"
    assert config["reports"] == environment_config("dev")["reports"]
    start = date.fromisoformat(config["start_date"][:10])  # "45 days ago", resolved by Meltano
    assert abs((datetime.now(timezone.utc).date() - start).days - 45) <= 1
    # The per-app list reaches the tap with the Android id's dots intact (a map would not).
    assert config["app_settings"] == environment_config("dev")["app_settings"]
    settings = parse_settings(config, for_sync=True)
    assert settings.timezone_of("com.example.app") == "Europe/Berlin"
    assert settings.currency_of("com.example.app") == "EUR"


@pytest.mark.e2e
def test_meltano_run_loads_the_sandbox_into_duckdb_then_resumes(
    fast_sandbox: SandboxServer, meltano_home: Path, tmp_path: Path
) -> None:
    command = executable("MELTANO_EXECUTABLE", TARGETS / "meltano/bin/meltano")
    duckdb = pytest.importorskip("duckdb")
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        **os.environ,
        "MELTANO_SYS_DIR_ROOT": str(meltano_home),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_ENVIRONMENT": "dev",
        "TAP_APPSFLYER_COHORT_API_URL": fast_sandbox.base_url,
        "TAP_APPSFLYER_COHORT_API_TOKEN": fast_sandbox.token,
        "TAP_APPSFLYER_COHORT_START_DATE": str(datetime.now(timezone.utc).date() - timedelta(9)),
        "TAP_APPSFLYER_COHORT_REQUESTS_PER_MINUTE": "100000",
        "TARGET_DUCKDB_FILEPATH": str(warehouse),
    }
    meltano(command, "install", "tap-appsflyer-cohort", "target-duckdb", env=env)
    first_day = datetime.now(timezone.utc).date()
    meltano(command, "run", "tap-appsflyer-cohort", "target-duckdb", env=env)
    first_calls = len(fast_sandbox.request_log)
    assert first_calls > 0

    state = json.loads(
        meltano(
            command, "state", "get", "dev:tap-appsflyer-cohort-to-target-duckdb", env=env
        ).stdout
    )
    bookmarks = state["singer_state"]["bookmarks"]
    dev_reports = {r["name"] for r in environment_config("dev")["reports"]}
    assert set(bookmarks) == dev_reports
    assert token_free(state, fast_sandbox.token)

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for report in dev_reports:
            count, keys = connection.execute(
                f"SELECT count(*), count(DISTINCT (app_id, date, pid, period)) "
                f"FROM tap_appsflyer_cohort.{report}"
            ).fetchone()
            assert count == keys > 0, report

    # Same day, same config: the state says everything due is loaded, so no call at all
    # (unless the UTC date turned meanwhile: then a day matured, and calls are due).
    meltano(command, "run", "tap-appsflyer-cohort", "target-duckdb", env=env)
    if datetime.now(timezone.utc).date() == first_day:
        assert len(fast_sandbox.request_log) == first_calls


def token_free(value: Any, token: str) -> bool:
    return token not in json.dumps(value)
