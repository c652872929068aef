"""The sandbox's numbers never change for a seed: answers pinned by their SHA-256.

The hashes were computed from the original, slow evaluator before it was optimised;
any change to cell generation, series or rounding shows up here as a different hash.
To re-pin after a deliberate data change: ``.venv/bin/python tests/test_sandbox_golden.py``.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import date, time
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.options import SandboxOptions
from tap_appsflyer_cohort.sandbox.server import SandboxServer
from tests.test_sandbox_support import EUR_APP, IOS, JPY_APP, base_body

EVERY_PERIOD = list(range(181))


_OLD = {"from": "2025-08-01", "to": "2025-08-20"}
_MATURING = {"from": "2026-05-20", "to": "2026-06-14"}

#: name -> (server options, app, body, format)
CASES: dict[str, tuple[dict[str, Any], str, dict[str, Any], str]] = {
    "event_cumulative": ({}, IOS, base_body(), "csv"),
    "event_on_day_old": ({}, IOS, base_body(aggregation_type="on_day", **_OLD), "csv"),
    "sessions_on_day_wide": (
        {},
        IOS,
        base_body(
            kpis=["sessions"],
            aggregation_type="on_day",
            groupings=["date", "pid", "c", "af_adset", "af_ad", "geo"],
        ),
        "csv",
    ),
    "sessions_cumulative_partial": (
        {},
        EUR_APP,
        base_body(
            kpis=["sessions"], partial_data=True, filters={"period": EVERY_PERIOD}, **_MATURING
        ),
        "csv",
    ),
    "uninstalls_per_user": (
        {},
        JPY_APP,
        base_body(kpis=["uninstalls"], per_user=True, groupings=["date", "geo"], **_OLD),
        "csv",
    ),
    "revenue_currency_on_day": (
        {},
        JPY_APP,
        base_body(kpis=["revenue"], aggregation_type="on_day", preferred_currency=True, **_OLD),
        "csv",
    ),
    "revenue_per_user_currency_tz": (
        {},
        EUR_APP,
        base_body(
            kpis=["revenue"],
            per_user=True,
            preferred_currency=True,
            preferred_timezone=True,
            partial_data=True,
            **_MATURING,
        ),
        "csv",
    ),
    "revenue_type_filter": (
        {},
        IOS,
        base_body(
            kpis=["revenue"], filters={"revenue_type": ["ad_monetization"], "period": [0, 7]}
        ),
        "csv",
    ),
    "roas_unified_by_cohort_type": (
        {},
        IOS,
        base_body(kpis=["roas"], cohort_type="unified", groupings=["date", "cohort_type", "pid"]),
        "csv",
    ),
    "roi_retargeting_json": (
        {},
        EUR_APP,
        base_body(kpis=["roi"], cohort_type="retargeting", aggregation_type="on_day"),
        "json",
    ),
    "event_filters_min_size": (
        {},
        IOS,
        base_body(
            groupings=["date", "af_channel", "attributed_touch_type", "site_id"],
            filters={"pid": ["tiktokglobal_int", "unityads_int"], "geo": ["US", "JP", "DE"]},
            min_cohort_size=25,
            **_OLD,
        ),
        "csv",
    ),
    "registration_no_date_grouping": (
        {},
        JPY_APP,
        base_body(kpis=["af_complete_registration"], groupings=["geo", "af_prt"], **_OLD),
        "csv",
    ),
    "level_date_not_first_json": (
        {},
        IOS,
        base_body(
            kpis=["af_level_achieved"],
            groupings=["pid", "date", "af_keywords"],
            aggregation_type="on_day",
            filters={"period": [1, 2, 3, 30, 180]},
        ),
        "json",
    ),
    "trial_event_case_sensitive": (
        {},
        IOS,
        base_body(kpis=["Start Trial Auth"], groupings=["date", "af_sub1"], partial_data=True),
        "csv",
    ),
    "unknown_event_zeros": ({}, EUR_APP, base_body(kpis=["not_an_event"]), "csv"),
    "ids_and_channels": (
        {},
        EUR_APP,
        base_body(
            kpis=["sessions"],
            groupings=["date", "af_c_id", "af_adset_id", "af_ad_id", "af_channel"],
            filters={"cohort_type": ["user_acquisition"], "af_channel": ["TikTok", "Pangle"]},
            **_OLD,
        ),
        "csv",
    ),
    "hour_granularity": (
        {},
        IOS,
        base_body(
            granularity="hour",
            groupings=["date", "pid", "geo"],
            partial_data=True,
            filters={"period": [0, 1, 2, 5]},
            **{"from": "2026-06-13 04:00", "to": "2026-06-15 11:00"},
        ),
        "csv",
    ),
    "hour_granularity_app_timezone": (
        {"time_of_day": time(3, 30)},
        JPY_APP,
        base_body(
            kpis=["revenue"],
            granularity="hour",
            preferred_timezone=True,
            **{"from": "2026-06-13 10:00", "to": "2026-06-14 23:00:00"},
        ),
        "json",
    ),
    "window_reaching_today": (
        {},
        IOS,
        base_body(kpis=["uninstalls"], **{"from": "2026-06-10", "to": "2026-06-20"}),
        "csv",
    ),
    "other_seed_and_scale": (
        {"seed": 7, "scale": 2},
        JPY_APP,
        base_body(kpis=["af_purchase"], aggregation_type="on_day", groupings=["date", "c"], **_OLD),
        "csv",
    ),
    "row_cap_truncates": (
        {"row_cap": 40},
        IOS,
        base_body(groupings=["date", "af_ad", "geo"], **_OLD),
        "csv",
    ),
    "sixty_days_default_periods": (
        {},
        IOS,
        base_body(
            kpis=["revenue"],
            aggregation_type="on_day",
            **{"from": "2025-07-20", "to": "2025-09-17"},
        ),
        "csv",
    ),
}


def _server(options: dict[str, Any]) -> SandboxServer:
    return SandboxServer(SandboxOptions(**{"today": date(2026, 6, 15), **options}))


def answer_digest(
    options: dict[str, Any],
    app: str,
    body: dict[str, Any],
    fmt: str,
    server: SandboxServer | None = None,
) -> str:
    """Hash (128 bits) of status, attachment name and bytes of the in-process answer."""
    status, headers, payload = (server or _server(options)).answer(app, body, fmt)
    assert status == 200, payload
    assert len(payload) > 200  # real data: a hash must not pin an empty answer
    name = headers.get("Content-Disposition", "")
    return hashlib.sha256(f"{status}|{name}|".encode() + payload).hexdigest()[:32]


GOLDEN: dict[str, str] = {
    "event_cumulative": "873ee81bd994afb2a68585a7d7fa0ef7",
    "event_filters_min_size": "8f3122f1f171e314877309a95ed6e876",
    "event_on_day_old": "2ee1913cd6b151648ca71034e630094d",
    "hour_granularity": "13bd4add1c0cc475b4f68677d621634c",
    "hour_granularity_app_timezone": "7b527307199b2564fe236b7e5fe0697e",
    "ids_and_channels": "b27ff4f13466717e44675a51f4e4cc99",
    "level_date_not_first_json": "cdf33baf7ce527efa8b9edc4edca0218",
    "other_seed_and_scale": "2487cd1fc965ac0a2f46cd34e34cc0eb",
    "registration_no_date_grouping": "9b7345d5db22dfec11b470804cc10a4c",
    "revenue_currency_on_day": "3ca753496b1ea934d8d5b240b36f486d",
    "revenue_per_user_currency_tz": "af7e3fc7704d82d149bd366b9f82a31e",
    "revenue_type_filter": "b5e8fe56f80fd1d372994c1fea791e82",
    "roas_unified_by_cohort_type": "238efce258149fc638eed34c4b8a1eb9",
    "roi_retargeting_json": "5c8bbad793e3d36e52433c6b5e7b4a3a",
    "row_cap_truncates": "87b3ceede4733cfc7f0661dcc412472c",
    "sessions_cumulative_partial": "dca826a732ec0bd8adcd5f7ff4cac1cf",
    "sessions_on_day_wide": "390ac51da63813b379b281939ba3c980",
    "sixty_days_default_periods": "af5ae57117d2c72f37ea6f1f200a40e2",
    "trial_event_case_sensitive": "8f7a658e5561ad026cf89c0b7010a370",
    "uninstalls_per_user": "1ac8b16cfd7ee9f46687f7f62b15fd3e",
    "unknown_event_zeros": "3108e9b22068fe268113e30cf76f6b79",
    "window_reaching_today": "90bd58ae0f41ed4f0ba1718eef9bfe99",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_answer_is_unchanged(name: str) -> None:
    assert answer_digest(*CASES[name]) == GOLDEN[name]


def test_answers_do_not_depend_on_earlier_queries() -> None:
    """One server answering every case in turn (shared cells and group sums) gives the
    same bytes as a fresh server per case."""
    shared = _server({})
    for name in sorted(CASES, reverse=True):
        options, app, body, fmt = CASES[name]
        if not options:
            assert answer_digest(options, app, body, fmt, shared) == GOLDEN[name], name


if __name__ == "__main__":
    for case in sorted(CASES):
        print(f"    {case!r}: {answer_digest(*CASES[case])!r},", file=sys.stdout)
