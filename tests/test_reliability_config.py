"""Bad config, property-based: every malformed setting or report stops the tap before any
API call, with one readable line naming the setting (and the report) at fault.

Hypothesis breaks one thing at a time in a good config. Most examples check the
in-process path (the constructor raises ConfigValidationError, never anything else); a
handful run the real command (exit code, one ERROR line, no traceback). The sandbox's
request log proves no call was made.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from singer_sdk.exceptions import ConfigValidationError

from tap_appsflyer_cohort.contract import DIMENSION_VALUES, FILTER_DIMENSIONS, GROUPING_DIMENSIONS
from tap_appsflyer_cohort.sandbox.testing import SandboxServer, running_sandbox
from tap_appsflyer_cohort.tap import TapAppsFlyerCohort
from tests.conftest import SANDBOX_TODAY
from tests.helpers import run_tap_cli, sandbox_config
from tests.tap_checks import assert_token_absent

GOOD_REPORT: dict[str, Any] = {"name": "r1", "groupings": ["date", "pid"], "kpis": ["sessions"]}
#: One broken config: (config, words the error must hold: the setting/report and field).
Case = tuple[dict[str, Any], tuple[str, ...]]

# ---- values that are wrong whatever the field ----------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def not_int_in(low: int, high: int) -> st.SearchStrategy[Any]:
    """Anything but an integer from ``low`` to ``high`` (JSON: floats and bools too)."""
    return st.one_of(
        st.integers(max_value=low - 1),
        st.integers(min_value=high + 1),
        junk.filter(lambda v: not (type(v) is int and low <= v <= high)),
    )


def not_one_of(allowed: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(st.text(max_size=12), junk).filter(lambda v: v not in allowed)


def _is_iso_date_or_datetime(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return True
    return bool(
        re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?", text)
    )


bad_date = st.one_of(
    st.text(max_size=12).filter(lambda t: not _is_iso_date_or_datetime(t)),
    st.sampled_from(["2026-02-30", "2026-13-01", "26-06-01", "2026/06/01", "01.06.2026"]),
    # A good date with junk after it is not a date.
    st.builds(lambda junk_tail: "2026-06-01" + junk_tail, st.text(min_size=1, max_size=5)).filter(
        lambda t: not _is_iso_date_or_datetime(t)
    ),
    st.integers(),
    st.lists(st.text(max_size=3), max_size=2),
)

remote_host = st.one_of(
    st.from_regex(r"[a-z]{1,8}\.(com|net|io)", fullmatch=True),
    # Names that only look like loopback.
    st.sampled_from(["127.0.0.1.evil.com", "localhost.evil.com", "127.evil.io", "10.0.0.1"]),
)
bad_api_url = st.one_of(
    st.builds("http://{}".format, remote_host),
    st.builds("ftp://{}".format, remote_host),
    st.builds("{}/api".format, remote_host),  # no scheme
    st.sampled_from(["https://", "https:///path", "http://", "", "localhost", "//example.com"]),
    st.integers(),
    st.lists(st.text(max_size=3), max_size=2),
)


def _loads(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except Exception:  # whatever ZoneInfo raises, the key is no time zone
        return False
    return True


_ZONES = available_timezones()
bad_zone = st.one_of(
    # Real folders of the zone database are not zones ("America" is a user's easy slip).
    st.sampled_from(["America", "Europe", "Etc", "Mars/Olympus", "UTC+2", "/etc/passwd", ".."]),
    st.text(alphabet=string.ascii_letters + "/_+-.", max_size=14).filter(
        lambda z: z not in _ZONES and not _loads(z)
    ),
)
bad_currency = st.one_of(
    st.text(max_size=5).filter(lambda c: not re.fullmatch(r"[A-Z]{3}", c)),
    st.integers(),
)

SETTING_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "api_token": st.one_of(st.sampled_from(["", "   ", None]), st.integers(), st.lists(st.text())),
    "app_ids": st.one_of(
        st.sampled_from([[], None, 0, {}]),
        st.integers(min_value=1),
        st.lists(st.integers(), min_size=1, max_size=2),
        st.dictionaries(st.text(min_size=1, max_size=3), st.text(), min_size=1, max_size=2),
    ),
    "start_date": st.one_of(bad_date, st.none()),
    "end_date": bad_date,
    "api_url": bad_api_url,
    "max_window_days": not_int_in(1, 366),
    "requests_per_minute": not_int_in(1, 10**6),
    "daily_request_budget": not_int_in(1, 10**9),
    "request_timeout": not_int_in(1, 3600),
    "max_retries": not_int_in(0, 100),
    "max_requests_in_flight": not_int_in(1, 64),
    "row_cap": not_int_in(1, 10**7),
    "response_format": not_one_of(("csv", "json")),
    "on_row_cap": not_one_of(("fail", "warn")),
    "app_timezone": st.one_of(
        bad_zone,
        st.builds(lambda zone: {"id123456789": zone}, bad_zone),
        st.integers(),
        st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    ),
    "app_currency": st.one_of(bad_currency, st.builds(lambda c: {"id123456789": c}, bad_currency)),
    "blank_value": st.one_of(st.integers(), st.none(), st.text(min_size=101, max_size=120)),
    # A falsy value means "the default reports": only a truthy non-list is wrong.
    "reports": st.one_of(
        st.text(min_size=1, max_size=5), st.integers(min_value=1), st.just({"a": 1})
    ),
}


@st.composite
def broken_setting(draw: st.DrawFn) -> Case:
    key = draw(st.sampled_from(sorted(SETTING_VALUES)))
    value = draw(SETTING_VALUES[key])
    return {key: value}, (f"'{key}",)


# ---- reports broken one field at a time ----------------------------------------------

_DIMENSIONS = set(GROUPING_DIMENSIONS) | set(FILTER_DIMENSIONS)
unknown_dimension = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=10).filter(
    lambda d: d not in _DIMENSIONS
)

REPORT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "groupings": st.one_of(
        st.builds(lambda d: ["date", d], unknown_dimension),
        st.just(["date", "pid", "pid"]),
        st.just(["date", "revenue_type"]),
        st.lists(st.sampled_from(GROUPING_DIMENSIONS), min_size=8, max_size=12, unique=True),
        st.integers(),
        st.lists(st.integers(), min_size=1, max_size=2),
    ),
    "kpis": st.one_of(
        st.sampled_from([[], ["sessions", "sessions"], [" "], None]),
        st.lists(st.integers(), min_size=1, max_size=2),
        st.integers(),
    ),
    "cohort_type": not_one_of(("user_acquisition", "retargeting", "unified")),
    "aggregation_type": not_one_of(("cumulative", "on_day")),
    "granularity": not_one_of(("day", "hour")),
    "layout": not_one_of(("long", "wide")),
    "per_user": junk.filter(lambda v: not isinstance(v, bool)),
    "partial_data": junk.filter(lambda v: not isinstance(v, bool)),
    "preferred_currency": junk.filter(lambda v: not isinstance(v, bool)),
    "preferred_timezone": junk.filter(lambda v: not isinstance(v, bool)),
    "min_cohort_size": not_int_in(1, 10**9),
    "restatement_days": not_int_in(0, 730),
    "app_ids": st.one_of(
        st.sampled_from([[], ""]), st.integers(), st.lists(st.integers(), min_size=1, max_size=2)
    ),
    "filters": st.one_of(
        st.builds(lambda d: {d: ["x"]}, unknown_dimension),
        st.builds(lambda p: {"period": p}, st.lists(st.integers(min_value=181), min_size=1)),
        st.builds(lambda p: {"period": p}, st.lists(st.integers(max_value=-1), min_size=1)),
        st.just({"period": []}),
        st.builds(
            lambda d, v: {d: [v]},
            st.sampled_from(sorted(DIMENSION_VALUES)),
            st.text(max_size=6).filter(
                lambda v: all(v not in s for s in DIMENSION_VALUES.values())
            ),
        ),
        st.builds(
            lambda v: {"pid": v}, st.one_of(st.just([]), st.lists(st.integers(), min_size=1))
        ),
        st.integers(),
        st.lists(st.text(max_size=2), max_size=2),
    ),
}


@st.composite
def broken_report(draw: st.DrawFn) -> Case:
    choice = draw(
        st.sampled_from([*sorted(REPORT_VALUES), "name", "unknown field", "not an object"])
    )
    if choice == "name":
        name = draw(
            st.one_of(
                st.text(max_size=70).filter(lambda n: not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", n)),
                st.sampled_from(["r1\n", "R1", "1r", "r-1", "r" * 64, ""]),
                st.integers(),
                st.none(),
            )
        )
        return {"reports": [{**GOOD_REPORT, "name": name}]}, ("reports[0]", "'name'")
    if choice == "unknown field":
        field = draw(unknown_dimension.filter(lambda f: f not in {*REPORT_VALUES, "name"}))
        return {"reports": [{**GOOD_REPORT, field: 1}]}, ("report 'r1'", f"'{field}'")
    if choice == "not an object":
        value = draw(st.one_of(st.text(max_size=5), st.integers(), st.lists(st.integers())))
        return {"reports": [value]}, ("reports[0]",)
    value = draw(REPORT_VALUES[choice])
    return {"reports": [{**GOOD_REPORT, choice: value}]}, ("report 'r1'", f"'{choice}")


#: Rules that tie two fields (each alone is fine).
PAIRS: list[Case] = [
    ({"reports": [{**GOOD_REPORT, "partial_data": True, "aggregation_type": "on_day"}]},
     ("report 'r1'", "'partial_data'")),
    ({"reports": [{**GOOD_REPORT, "partial_data": True, "layout": "wide"}]},
     ("report 'r1'", "'partial_data'")),
    ({"reports": [{**GOOD_REPORT, "kpis": ["uninstalls"], "cohort_type": "unified"}]},
     ("report 'r1'", "'kpis'")),
    ({"reports": [GOOD_REPORT, GOOD_REPORT]}, ("report 'r1'", "'name'")),
    ({"start_date": "2026-06-10", "end_date": "2026-06-01"}, ("'end_date'",)),
]  # fmt: skip

broken_config = st.one_of(broken_setting(), broken_report(), st.sampled_from(PAIRS))


# ---- the checks ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idle_sandbox() -> Iterator[SandboxServer]:
    """A sandbox no example may call."""
    with running_sandbox(today=SANDBOX_TODAY, seed=42) as server:
        yield server


def _config(server: SandboxServer, overrides: dict[str, Any]) -> dict[str, Any]:
    config = sandbox_config(server, reports=[GOOD_REPORT], start_date="2026-06-01")
    config.update(overrides)
    return config


def _lines_naming(texts: list[str], words: tuple[str, ...]) -> list[str]:
    return [t for t in texts if all(w in t for w in words)]


@settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=broken_config)
def test_every_malformed_config_is_refused_in_process(
    idle_sandbox: SandboxServer, case: Case
) -> None:
    overrides, words = case
    config = _config(idle_sandbox, overrides)
    with pytest.raises(ConfigValidationError) as caught:  # never a TypeError & co.
        TapAppsFlyerCohort(config=config)
    error = caught.value
    messages = [str(error), *error.errors]
    named = _lines_naming(messages, words)
    assert named, f"no message names {words}: {messages}"
    assert all("\n" not in m for m in named), "one line"
    assert_token_absent(idle_sandbox.token, *messages)
    assert idle_sandbox.request_log == []


def test_the_good_config_passes(idle_sandbox: SandboxServer) -> None:
    # The control: the base every example breaks is itself accepted.
    tap = TapAppsFlyerCohort(config=_config(idle_sandbox, {}))
    assert [s.name for s in tap.streams.values()] == ["r1"]


@settings(max_examples=6, deadline=None, derandomize=True, database=None)
@given(case=broken_config)
def test_malformed_config_stops_the_command_with_one_line(
    idle_sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory, case: Case
) -> None:
    overrides, words = case
    config = _config(idle_sandbox, overrides)
    run = run_tap_cli(config, tmp_path_factory.mktemp("bad"))
    assert run.exit_code != 0
    assert "Traceback" not in run.stderr
    assert run.messages == [], "nothing may reach stdout"
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(_lines_naming(errors, words)) == 1, f"{words}:\n{run.stderr}"
    assert_token_absent(idle_sandbox.token, run.stderr)
    assert idle_sandbox.request_log == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"app_timezone": "America"},  # a folder of the zone database
        {"api_url": "http://127.0.0.1.evil.com"},  # looks like loopback, is not
        {"api_url": "https://"},  # no host
        {"start_date": "2026-06-01junk"},
    ],
    ids=["zone folder", "fake loopback", "no host", "date with junk"],
)
def test_found_by_hypothesis_stop_the_command_too(
    idle_sandbox: SandboxServer, tmp_path: Path, overrides: dict[str, Any]
) -> None:
    """Malformed values that once got through (or crashed with a traceback)."""
    [key] = overrides
    run = run_tap_cli(_config(idle_sandbox, overrides), tmp_path)
    assert run.exit_code != 0, json.dumps(overrides)
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(_lines_naming(errors, (f"'{key}'",))) == 1, run.stderr
    assert idle_sandbox.request_log == []
