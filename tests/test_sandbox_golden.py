"""The sandbox's numbers never change for a seed: answers pinned by their SHA-256.

Any change to cell generation, series or rounding shows up here as a different hash.
Last re-pinned for the data model that keeps a real account's invariants by
construction (first-timers, returns and repeats per activity, revenue per event, media
sources that differ; ``tests/test_sandbox_invariants.py``); the optimised kernels are
checked against plain code in ``tests/test_sandbox_cells.py``. To re-pin after a
deliberate data change: ``.venv/bin/python tests/test_sandbox_golden.py``.
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
    "event_cumulative": "6b17709b1cdc43010c47752100902a7c",
    "event_filters_min_size": "1cbc9c9ace5da14fe58908b90fee1888",
    "event_on_day_old": "958c411b342d5d45911b76f330592726",
    "hour_granularity": "24f7393356510ccb2da748d79a3c792c",
    "hour_granularity_app_timezone": "e6d74304d2b60b377721ab6e3244d1cb",
    "ids_and_channels": "dae7f759f9c1d2d4ad943ab4bcc95659",
    "level_date_not_first_json": "41b87a6f2a1a6ef3512087353b04db80",
    "other_seed_and_scale": "b4ddb2e4768fb3b5d5439a52b2c05330",
    "registration_no_date_grouping": "7b0598843dc754673c289132ef908f00",
    "revenue_currency_on_day": "60a7093084f3bb9d42f9eb6fce19a8f9",
    "revenue_per_user_currency_tz": "402b08f1850453e6a2ad02233bcd1c5e",
    "revenue_type_filter": "180c64adf4e887b8e4edadea6d061488",
    "roas_unified_by_cohort_type": "265bb67a55865744977b114354b3b4b4",
    "roi_retargeting_json": "ce5659533044c3de581ae025665fbd44",
    "row_cap_truncates": "9f89a5f2cde52d8e8bae10ca489f10ae",
    "sessions_cumulative_partial": "89bd286a448d8c855c852f8d29ed6e42",
    "sessions_on_day_wide": "01c1c0480632623e953d08f48be84da2",
    "sixty_days_default_periods": "94d4e5918909938f6eff0702dac277d9",
    "trial_event_case_sensitive": "c4c59a9354ecc2de6fa685a7f6da8086",
    "uninstalls_per_user": "3b30d9849784c1d02c38f6f1d0da9d54",
    "unknown_event_zeros": "a40122e90bd2ebd6c5cf982c7e2f94ce",
    "window_reaching_today": "62674eb42b8c7b5d595b6743f0b336b0",
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
