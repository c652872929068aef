"""Every 422 rule of the request body, and the bodies that must still be accepted."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.testing import SandboxServer
from tests.test_sandbox_support import base_body, post

DROP = object()


def _with(**changes: Any) -> dict[str, Any]:
    body = base_body()
    for key, value in changes.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


INVALID: list[tuple[str, dict[str, Any], str]] = [
    *[(f"missing {k}", _with(**{k: DROP}), k) for k in base_body()],
    ("cohort_type enum", _with(cohort_type="organic"), "cohort_type"),
    ("aggregation_type enum", _with(aggregation_type="daily"), "aggregation_type"),
    ("granularity enum", _with(granularity="days"), "granularity"),
    ("granularity week", _with(granularity="week"), "granularity"),
    ("from format", _with(**{"from": "2026/05/01"}), "from"),
    ("from with time on day", _with(**{"from": "2026-05-01 10:00"}), "from"),
    ("to not a string", _with(to=20260505), "to"),
    ("impossible date", _with(to="2026-02-30"), "to"),
    ("from after to", _with(**{"from": "2026-05-06"}), "from"),
    ("range too long", _with(**{"from": "2026-03-01", "to": "2026-05-01"}), "to"),
    ("before horizon", _with(**{"from": "2024-06-14", "to": "2024-06-20"}), "from"),
    ("groupings not a list", _with(groupings="date"), "groupings"),
    ("groupings empty", _with(groupings=[]), "groupings"),
    (
        "groupings too many",
        _with(groupings=["date", "pid", "c", "geo", "af_ad", "af_adset", "af_c_id", "af_prt"]),
        "groupings",
    ),
    ("grouping unknown", _with(groupings=["date", "country"]), "groupings"),
    ("grouping revenue_type", _with(groupings=["date", "revenue_type"]), "groupings"),
    ("grouping duplicate", _with(groupings=["date", "date"]), "groupings"),
    ("kpis not a list", _with(kpis="revenue"), "kpis"),
    ("kpis two", _with(kpis=["revenue", "roas"]), "kpis"),
    ("kpis empty", _with(kpis=[]), "kpis"),
    ("kpis blank", _with(kpis=[""]), "kpis"),
    ("kpis not string", _with(kpis=[1]), "kpis"),
    ("min_cohort_size zero", _with(min_cohort_size=0), "min_cohort_size"),
    ("min_cohort_size string", _with(min_cohort_size="5"), "min_cohort_size"),
    ("min_cohort_size bool", _with(min_cohort_size=True), "min_cohort_size"),
    ("min_cohort_size float", _with(min_cohort_size=2.0), "min_cohort_size"),
    *[
        (f"{flag} as string", _with(**{flag: "true"}), flag)
        for flag in ("partial_data", "per_user", "preferred_currency", "preferred_timezone")
    ],
    ("per_user as int", _with(per_user=1), "per_user"),
    (
        "partial_data with on_day",
        _with(partial_data=True, aggregation_type="on_day"),
        "partial_data",
    ),
    ("uninstalls with unified", _with(kpis=["uninstalls"], cohort_type="unified"), "kpis"),
    ("filters not an object", _with(filters=["geo"]), "filters"),
    ("filter unknown key", _with(filters={"country": ["US"]}), "filters"),
    ("filter on date", _with(filters={"date": ["2026-05-01"]}), "filters"),
    ("filter value int", _with(filters={"geo": 1}), "geo"),
    ("filter list of ints", _with(filters={"geo": [1]}), "geo"),
    ("filter bad revenue_type", _with(filters={"revenue_type": ["iap"]}), "revenue_type"),
    ("period out of range", _with(filters={"period": [181]}), "period"),
    ("period negative", _with(filters={"period": [-1]}), "period"),
    ("period string", _with(filters={"period": ["7"]}), "period"),
    ("period scalar string", _with(filters={"period": "7"}), "period"),
]


@pytest.mark.parametrize(
    ("body", "key"), [(b, k) for _, b, k in INVALID], ids=[n for n, _, _ in INVALID]
)
def test_invalid_bodies_give_422(sandbox: SandboxServer, body: dict[str, Any], key: str) -> None:
    response = post(sandbox, body)
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()
    assert error["expose"] is False
    assert error["error"].startswith("Invalid value: ")
    assert f" for key: {key}. Expected one of: " in error["error"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"a string"', b"", b"null"], ids=repr)
def test_non_object_bodies_give_422(sandbox: SandboxServer, raw: bytes) -> None:
    response = post(sandbox, raw)
    assert response.status_code == 422
    assert "Expected one of: a JSON object" in response.json()["error"]


def test_granularity_error_text_matches_vendor_shape(sandbox: SandboxServer) -> None:
    response = post(sandbox, _with(granularity="days"))
    assert response.json()["error"] == (
        "Invalid value: days for key: granularity. Expected one of: day, hour"
    )


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("extra keys ignored", _with(timezone="UTC", maximum_rows=5, api_token="x")),
    ("scalar filter string", _with(filters={"geo": "US"})),
    ("scalar period", _with(filters={"period": 3})),
    ("60 days", _with(**{"from": "2026-03-06", "to": "2026-05-05"})),
    ("at horizon", _with(**{"from": "2024-06-15", "to": "2024-06-20"})),
    (
        "seven groupings",
        _with(groupings=["date", "pid", "c", "geo", "af_ad", "af_adset", "af_prt"]),
    ),
    ("partial_data false with on_day", _with(partial_data=False, aggregation_type="on_day")),
    ("granularity day", _with(granularity="day")),
    ("all booleans", _with(per_user=True, preferred_currency=True, preferred_timezone=True)),
    ("unified", _with(cohort_type="unified")),
    ("retargeting uninstalls", _with(cohort_type="retargeting", kpis=["uninstalls"])),
    ("cohort_type filter", _with(filters={"cohort_type": ["user_acquisition"]})),
]


@pytest.mark.parametrize("body", [b for _, b in ACCEPTED], ids=[n for n, _ in ACCEPTED])
def test_valid_bodies_are_accepted(sandbox: SandboxServer, body: dict[str, Any]) -> None:
    response = post(sandbox, body)
    assert response.status_code == 200, response.text


def test_hour_granularity_window(sandbox: SandboxServer) -> None:
    sandbox.set_now(datetime(2026, 6, 15, 12, 30, tzinfo=timezone.utc))
    old = _with(granularity="hour", **{"from": "2026-06-12 12:00", "to": "2026-06-13 10:00"})
    assert post(sandbox, old).status_code == 422
    ok = _with(granularity="hour", **{"from": "2026-06-12 13:00:00", "to": "2026-06-15 11:00"})
    assert post(sandbox, ok).status_code == 200
    dates_only = _with(granularity="hour", **{"from": "2026-06-13", "to": "2026-06-14"})
    assert post(sandbox, dates_only).status_code == 422
