"""meltano.yml, the Hub definition and the README stay true to target-appsflyer-audiences.

The same checks as ``test_meltano_project.py`` and ``test_readme.py`` make for the tap: the
loader's settings mirror ``--about``, the Hub file mirrors the loader, the README's settings
table is the generated one and its audience-fields table lists the schema's fields. And the
target imports nothing of the tap, so it can become a distribution of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import yaml

from target_appsflyer_audiences.settings_schema import AUDIENCE_SCHEMA
from target_appsflyer_audiences.target import TargetAppsFlyerAudiences
from tests.e2e_support import ROOT
from tests.test_meltano_project import HUB_KEYS, HUB_SETTING_KEYS, NOT_DECLARED, expected_kind

PROJECT = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
HUB_FILE = ROOT / "meltano-hub/loaders/target-appsflyer-audiences/appsflyer-cohort.yml"
HUB = yaml.safe_load(HUB_FILE.read_text(encoding="utf-8"))
README = (ROOT / "README.md").read_text(encoding="utf-8")
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
COMMAND = [sys.executable, "-m", "target_appsflyer_audiences"]


def about(fmt: str) -> str:
    return subprocess.run(
        [*COMMAND, "--about", "--format", fmt], capture_output=True, text=True, check=True, env=ENV
    ).stdout


ABOUT_INFO = json.loads(about("json"))
ABOUT = ABOUT_INFO["settings"]


def plugin(kind: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in PROJECT["plugins"][kind] if p["name"] == name]
    return found


LOADER = plugin("loaders", "target-appsflyer-audiences")


def test_loader_is_inline_and_installs_this_project() -> None:
    assert LOADER["namespace"] == "target_appsflyer_audiences"
    assert LOADER["pip_url"] == "-e ."
    assert LOADER["executable"] == "target-appsflyer-audiences"
    assert set(LOADER["capabilities"]) == {str(c) for c in TargetAppsFlyerAudiences.capabilities}
    assert LOADER["settings_group_validation"] == [ABOUT["required"]]


def test_loader_settings_mirror_the_target_config_schema() -> None:
    settings = {s["name"]: s for s in LOADER["settings"]}
    assert set(settings) == set(ABOUT["properties"]) - NOT_DECLARED
    for name, setting in settings.items():
        schema = ABOUT["properties"][name]
        assert setting["kind"] == expected_kind(schema), name
        assert bool(setting.get("sensitive")) == bool(schema.get("secret")), name
        assert setting.get("label"), name
        assert setting["description"] == schema["description"], name
        if "enum" in schema:
            assert [o["value"] for o in setting["options"]] == schema["enum"], name


def test_worked_example_config_is_accepted() -> None:
    from target_appsflyer_audiences.settings import parse_settings

    settings = parse_settings({**LOADER["config"], "api_token": "t"})
    (entry,) = settings.audiences
    extractor = plugin("extractors", "tap-postgres")
    assert extractor["pip_url"].startswith("meltanolabs-tap-postgres")
    schema = extractor["config"]["filter_schemas"][0]
    assert entry.stream.startswith(f"{schema}-")
    assert extractor["select"] == [f"{entry.stream}.*"]
    raw = (ROOT / "meltano.yml").read_text(encoding="utf-8")
    assert "api_token:" not in raw.replace("# api_token:", "")


def test_hub_definition_matches_the_loader() -> None:
    assert set(HUB) <= HUB_KEYS
    assert HUB["variant"] == HUB_FILE.stem
    assert HUB["name"] == HUB_FILE.parent.name == LOADER["name"]
    assert HUB["namespace"] == LOADER["namespace"]
    assert HUB["executable"] == LOADER["executable"]
    assert "meltano_sdk" in HUB["keywords"]
    assert HUB["capabilities"] == LOADER["capabilities"]
    assert HUB["settings_group_validation"] == LOADER["settings_group_validation"]
    for setting in HUB["settings"]:
        assert set(setting) <= HUB_SETTING_KEYS, setting["name"]
    fields = ("name", "kind", "label", "description", "sensitive", "options")
    mirror = [{k: s.get(k) for k in fields} for s in LOADER["settings"]]
    assert [{k: s.get(k) for k in fields} for s in HUB["settings"]] == mirror


def _between(start: str, end: str) -> list[str]:
    return README.split(start, 1)[1].split(end, 1)[0].strip().splitlines()


def test_readme_settings_table_is_the_generated_one() -> None:
    section = about("markdown").split("## Settings", 1)[1]
    generated = [line for line in section.splitlines() if line.startswith("|")]
    table = _between(
        "<!-- audiences-settings-table:start -->", "<!-- audiences-settings-table:end -->"
    )
    assert table == generated, (
        "README audiences settings table is stale: replace it with the table from "
        "`target-appsflyer-audiences --about --format markdown`"
    )


def test_readme_section_sits_before_development_and_lists_every_audience_field() -> None:
    assert README.index("## Send audiences to AppsFlyer") < README.index("## Development")
    rows = _between("<!-- audiences-fields:start -->", "<!-- audiences-fields:end -->")[2:]
    listed = [row.split("|")[1].strip().strip("`") for row in rows]
    assert listed == list(AUDIENCE_SCHEMA.to_dict()["properties"])


def test_target_imports_nothing_of_the_tap() -> None:
    code = (
        "import sys, target_appsflyer_audiences.target, target_appsflyer_audiences."
        "membership_store_postgres\n"
        "bad = [m for m in sys.modules if m.startswith('tap_appsflyer_cohort')]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
