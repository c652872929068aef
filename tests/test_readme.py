"""The README tells the truth: its settings table, its commands and its report examples."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from tap_appsflyer_cohort.settings import parse_settings
from tests.e2e_support import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
DEMO_COMMAND = "python3 scripts/demo.py"
TEST_COMMAND = "bash scripts/check.sh"


def about_markdown_table(section_title: str = "## Settings") -> list[str]:
    """A table of `tap-appsflyer-cohort --about --format markdown` (Settings by default)."""
    done = subprocess.run(
        [sys.executable, "-m", "tap_appsflyer_cohort", "--about", "--format", "markdown"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    section = done.stdout.split(section_title, 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_settings_table_is_the_generated_one() -> None:
    readme_table = README.split(START, 1)[1].split(END, 1)[0].strip().splitlines()
    generated = about_markdown_table()
    assert readme_table == generated, (
        "README settings table is stale: replace the lines between the settings-table "
        "markers with the table from `tap-appsflyer-cohort --about --format markdown`"
    )


def test_report_fields_table_is_the_generated_one() -> None:
    start, end = "<!-- report-fields:start -->", "<!-- report-fields:end -->"
    readme_table = README.split(start, 1)[1].split(end, 1)[0].strip().splitlines()
    assert readme_table == about_markdown_table("## Report fields"), (
        "README report fields table is stale: replace the lines between the report-fields "
        "markers with that table of `tap-appsflyer-cohort --about --format markdown`"
    )


def test_quick_start_commands_exist() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert DEMO_COMMAND in quick_start
    assert TEST_COMMAND in quick_start
    assert (ROOT / "scripts/demo.py").is_file()
    assert (ROOT / "scripts/check.sh").is_file()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    commands = [line.strip() for line in ci.splitlines() if "scripts/check.sh" in line]
    assert commands == [f'{TEST_COMMAND} "$@"'], commands


def test_report_examples_are_accepted_by_the_tap() -> None:
    section = README.split("## Report examples", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 4
    for block in blocks:
        config = {
            "api_token": "t",
            "app_ids": ["id123456789"],
            "start_date": "2026-01-01",
            **yaml.safe_load(block),
        }
        settings = parse_settings(config, for_sync=True)
        assert len(settings.reports) == 1
