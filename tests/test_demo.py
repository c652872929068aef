"""The demo's own logic: its reports and clock setting are the tap's, its counts are right.

The demo itself (``python3 scripts/demo.py``) installs Meltano from PyPI and runs for most
of a minute, so it is not run here; what it computes from the warehouse is.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tap_appsflyer_cohort.settings import parse_settings
from tests.e2e_support import ROOT


def _load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


demo = _load_demo()


def test_the_demo_reports_and_clock_are_accepted_by_the_tap() -> None:
    config = {
        "api_token": "t" * 800,
        "app_ids": [demo.APP],
        "start_date": "2026-01-01",
        "api_url": "http://127.0.0.1:8765",
        "as_of": "2026-06-08T12:00:00Z",
        "reports": demo.REPORTS,
    }
    settings = parse_settings(config, for_sync=True)
    assert [r.name for r in settings.reports] == [r["name"] for r in demo.REPORTS]
    assert set(demo.DAYS) <= set(demo.TRIANGLE_DAYS)


def test_meltano_knows_every_setting_the_demo_sets() -> None:
    """The demo sets settings through TAP_APPSFLYER_COHORT_<NAME>: each must be declared."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    extractor = project["plugins"]["extractors"][0]
    declared = {s["name"] for s in extractor["settings"]}
    env = demo.meltano_env("http://127.0.0.1:1", "token")
    env["TAP_APPSFLYER_COHORT_AS_OF"] = "2026-06-08T12:00:00Z"
    prefix = "TAP_APPSFLYER_COHORT_"
    used = {k[len(prefix) :].lower() for k in env if k.startswith(prefix)}
    assert used <= declared, used - declared


def test_gains_count_cohort_rows_that_gained_days(capsys: pytest.CaptureFixture[str]) -> None:
    retention, revenue = (r["name"] for r in demo.REPORTS)
    before = {
        (retention, demo.APP, "2026-06-01", "Organic"): {1, 3},
        (retention, demo.APP, "2026-06-02", "Organic"): {1},
        (retention, "other", "2026-06-01", "Organic"): {1, 3, 7},
        (revenue, demo.APP, "2026-06-01", "Organic"): {0, 3},
    }
    after = {
        **before,
        (retention, demo.APP, "2026-06-01", "Organic"): {1, 3, 7, 14},
        (retention, demo.APP, "2026-06-09", "Organic"): {1},
        (revenue, demo.APP, "2026-06-01", "Organic"): {0, 3, 7},
    }
    gained = demo.print_gains(before, after)
    assert gained == {("2026-06-01", 7), ("2026-06-01", 14), ("2026-06-09", 1)}
    text = capsys.readouterr().out
    assert f"{retention}: 1 cohort row(s)" in text
    assert "(2 new value(s), install dates 2026-06-01..2026-06-01); 1 row(s) of new dates" in text
    assert f"{revenue}: 1 cohort row(s)" in text


def test_the_text_triangle_marks_today_and_the_maturing_edge(
    capsys: pytest.CaptureFixture[str],
) -> None:
    values = {("2026-06-01", 1): 40.0, ("2026-06-01", 7): 12.5, ("2026-06-10", 1): 33.3}
    triangle = demo.Triangle(["2026-06-01", "2026-06-10"], values, {("2026-06-10", 1)})
    demo.print_triangle(triangle, date(2026, 6, 12))
    lines = capsys.readouterr().out.splitlines()
    first = next(line for line in lines if "2026-06-01" in line).split()
    assert first[1:3] == ["40.0", "?"]  # day 2 is complete but was not loaded
    assert first[7] == "12.5"
    last = next(line for line in lines if "2026-06-10" in line).split()
    assert last[1:3] == ["33.3*", "."]  # loaded today; day 2 is not complete yet


@pytest.mark.parametrize(
    ("window", "short"),
    [("2026-11-05..2026-11-11", "11-05..11-11"), ("2026-11-05..2026-11-05", "11-05")],
)
def test_windows_are_shown_short(window: str, short: str) -> None:
    assert demo._short(window) == short


def test_the_demo_writes_only_under_its_folders() -> None:
    for path in (demo.DEMO, demo.OUTPUT, demo.WAREHOUSE, demo.STATE_DIR):
        assert Path(path).resolve().is_relative_to(ROOT)
    assert {demo.DEMO.name, demo.OUTPUT.name} == {".demo", "demo-output"}
