"""How answers are read: by header name, streamed, blanks as null, no data as no data."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import pytest

from tap_appsflyer_cohort.errors import AnswerError
from tap_appsflyer_cohort.responses import parse_csv, parse_json
from tap_appsflyer_cohort.sandbox.server import SandboxServer
from tests.cohort_truth import day_rows, days, emitted, truth
from tests.conftest import SANDBOX_TODAY
from tests.helpers import run_tap, sandbox_config, utc_noon

NOW = utc_noon(SANDBOX_TODAY)
YESTERDAY = SANDBOX_TODAY - timedelta(days=1)
REPORT = {
    "name": "ltv",
    "groupings": ["date", "pid", "c"],
    "kpis": ["sessions", "roas"],
    "filters": {"period": [0, 1, 3]},
}


def _config(server: SandboxServer, **overrides: Any) -> dict[str, Any]:
    return sandbox_config(server, **{"start_date": "2026-06-10", "reports": [REPORT], **overrides})


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


def test_records_equal_the_sandbox_truth(sandbox) -> None:
    run = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    got = emitted(run.records["ltv"], REPORT)
    assert got == truth(sandbox, "id123456789", REPORT, days(date(2026, 6, 10), YESTERDAY))


def test_shuffled_columns_give_identical_records(sandbox) -> None:
    plain = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    sandbox.options.shuffle_columns = True
    shuffled = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    assert shuffled.records == plain.records


def test_json_transport_gives_the_csv_records(sandbox) -> None:
    csv_run = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    json_run = run_tap(_config(sandbox, response_format="json"), now=NOW, expect_exit=0)
    assert {c.query["format"] for c in sandbox.request_log} == {"csv", "json"}
    assert json_run.records == csv_run.records


def test_unknown_extra_column_is_ignored_with_one_warning(sandbox, caplog) -> None:
    plain = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    sandbox.clear_log()
    # Every call of the next run sends ``ecpi`` under a name the tap does not know.
    sandbox.script(*["rename-column:ecpi=ecpi_usd"] * 2)
    caplog.set_level(logging.INFO)
    renamed = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    assert [c.fault for c in sandbox.request_log] == ["rename-column:ecpi=ecpi_usd"] * 2
    assert len(_warnings(caplog, "ecpi_usd")) == 1
    assert [{**r, "ecpi": None} for r in plain.records["ltv"]] == renamed.records["ltv"]


def test_missing_period_column_becomes_null(sandbox) -> None:
    # One KPI, so the one scripted fault lands on the sessions call.
    config = _config(
        sandbox,
        start_date="2026-06-10",
        end_date="2026-06-10",
        reports=[{**REPORT, "kpis": ["sessions"]}],
    )
    plain = run_tap(config, now=NOW)
    sandbox.script("drop-column:sessions_count_day_1")
    dropped = run_tap(config, now=NOW)
    assert dropped.exit_code == 0
    changed = [
        (a, b) for a, b in zip(plain.records["ltv"], dropped.records["ltv"], strict=True) if a != b
    ]
    assert changed
    assert all(a["period"] == 1 and b["sessions_count"] is None for a, b in changed)
    assert all({**a, "sessions_count": None} == b for a, b in changed)


def test_wide_layout_leaves_incomplete_period_columns_null(sandbox) -> None:
    report = {**REPORT, "layout": "wide", "filters": {"period": [0, 1, 3]}}
    run = run_tap(_config(sandbox, reports=[report]), now=NOW, expect_exit=0)
    for record in run.records["ltv"]:
        elapsed = (SANDBOX_TODAY - date.fromisoformat(record["date"])).days
        for period in (0, 1, 3):
            value = record[f"sessions_count_day_{period}"]
            assert (value is None) == (period >= elapsed), (record["date"], period)


def test_empty_values_are_null_and_rates_stay_percent(sandbox) -> None:
    run = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    records = run.records["ltv"]
    organic = [r for r in records if r["pid"] == "Organic"]
    assert organic
    # No cost: the API leaves eCPI and ROAS blank; blank is null, not 0.
    assert all(r["cost"] == 0 and r["ecpi"] is None and r["roas_rate"] is None for r in organic)
    paid = [r for r in records if r["pid"] != "Organic"]
    assert all(r["ecpi"] is not None and r["roas_rate"] is not None for r in paid)
    # Rates come as the API sends them: percent (85.3 means 85.3 %), never a fraction.
    rates = [r["sessions_rate"] for r in records]
    assert all(0 <= rate <= 100 for rate in rates)
    assert max(rates) > 50
    row = day_rows(sandbox, "id123456789", REPORT, date(2026, 6, 10), "sessions")[0]
    record = next(
        r
        for r in records
        if (r["date"], r["pid"], r["c"], r["period"]) == ("2026-06-10", row["pid"], row["c"], 0)
    )
    assert record["sessions_rate"] == float(row["sessions_rate_day_0"])


def test_na_and_blank_cells_parse_as_null() -> None:
    # The sandbox never writes N/A; the parser is fed the vendor's spelling directly.
    body = (
        b"date,pid,users,ecpi,cost,roas_rate_day_0,roas_rate_day_1\n"
        b"2026-06-10,Organic,12,N/A,0,,N/A\n"
        b"2026-06-10,Facebook Ads,30,2.5,75,120.5,n/a\n"
    )
    table = parse_csv([body], kpi="roas", groupings=("date", "pid"))
    assert table.columns == [("rate", 0), ("rate", 1)]
    assert table.rows == [
        (("2026-06-10", "Organic"), 12, None, 0.0, [None, None]),
        (("2026-06-10", "Facebook Ads"), 30, 2.5, 75.0, [120.5, None]),
    ]


def test_counts_parse_as_integers_unless_divided_per_user() -> None:
    # Counts take int() on the fast path; "12.0", "1,234" and N/A take the slow one.
    header = b"date,pid,users,sessions_count_day_0,sessions_rate_day_0,sessions_count_day_1\n"
    fast = header + b"2026-06-10,Organic,12,7,58.3,3\n"
    slow = header + b'2026-06-10,Organic,12,"1,234",58.3,12.0\n'
    counts = frozenset({"count", "unique_users"})
    table = parse_csv([fast], kpi="sessions", groupings=("date", "pid"), counts=counts)
    assert table.columns == [("rate", 0), ("count", 0), ("count", 1)]  # counts last
    ((_, _, _, _, values),) = table.rows
    assert values == [58.3, 7, 3]
    assert [type(v) for v in values] == [float, int, int]
    table = parse_csv([slow], kpi="sessions", groupings=("date", "pid"), counts=counts)
    ((_, _, _, _, values),) = table.rows
    assert values == [58.3, 1234, 12]
    assert [type(v) for v in values] == [float, int, int]
    per_user = parse_csv([fast], kpi="sessions", groupings=("date", "pid"))
    ((_, _, _, _, values),) = per_user.rows
    assert [type(v) for v in values] == [float, float, float]

    body = (
        b'[{"date": "2026-06-10", "pid": "Organic", "users": 12, "measures":'
        b' [{"period": 0, "sessions_count": 7.0, "sessions_rate": 58.3}]}]'
    )
    table = parse_json(body, kpi="sessions", groupings=("date", "pid"), counts=counts)
    ((_, _, _, _, values),) = table.rows
    by_column = dict(zip(table.columns, values, strict=True))
    assert by_column == {("count", 0): 7, ("rate", 0): 58.3}
    assert type(by_column[("count", 0)]) is int


def test_csv_is_read_as_it_streams(sandbox) -> None:
    # Chunks cut anywhere (even inside a UTF-8 character) give the same table.
    status, _, body = sandbox.answer(
        "id123456789",
        {
            "cohort_type": "user_acquisition",
            "from": "2026-06-10",
            "to": "2026-06-12",
            "groupings": ["date", "c", "af_keywords"],
            "kpis": ["Start Trial Auth"],
            "aggregation_type": "on_day",
        },
    )
    assert status == 200
    whole = parse_csv([body], kpi="Start Trial Auth", groupings=("date", "c", "af_keywords"))
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    streamed = parse_csv(
        iter(pieces), kpi="Start Trial Auth", groupings=("date", "c", "af_keywords")
    )
    assert streamed == whole
    assert len(whole.rows) > 20
    with pytest.raises(AnswerError):
        parse_csv([body[:-40]], kpi="Start Trial Auth", groupings=("date", "c", "af_keywords"))


def test_body_cut_mid_row_is_asked_again(sandbox) -> None:
    sandbox.script("truncate-silent")
    run = run_tap(_config(sandbox, reports=[{**REPORT, "kpis": ["sessions"]}]), now=NOW)
    assert run.exit_code == 0
    assert [c.fault for c in sandbox.request_log] == ["truncate-silent", None]
    report = {**REPORT, "kpis": ["sessions"]}
    got = emitted(run.records["ltv"], report)
    assert got == truth(sandbox, "id123456789", report, days(date(2026, 6, 10), YESTERDAY))


# ---- no data ---------------------------------------------------------------------------


def _bookmark(state: dict[str, Any] | None) -> str | None:
    if not state:
        return None
    partitions = state.get("bookmarks", {}).get("ltv", {}).get("partitions", [])
    return partitions[0].get("replication_key_value") if partitions else None


def test_empty_200_is_no_data_and_keeps_the_dates_due(sandbox, caplog) -> None:
    config = _config(sandbox, reports=[{**REPORT, "kpis": ["sessions"]}])
    sandbox.script("empty")
    first = run_tap(config, now=NOW, expect_exit=0)
    assert "ltv" not in first.records
    assert _bookmark(first.last_state) is None
    assert _warnings(caplog, "No data")
    second = run_tap(config, state=first.last_state, now=NOW, expect_exit=0)
    assert {r["date"] for r in second.records["ltv"]} == {
        d.isoformat() for d in days(date(2026, 6, 10), YESTERDAY)
    }
    assert _bookmark(second.last_state) == YESTERDAY.isoformat()


def test_header_only_200_is_no_data(sandbox) -> None:
    sandbox.options.no_data_body = "header"
    report = {**REPORT, "kpis": ["sessions"], "filters": {"pid": ["no_such_network"]}}
    run = run_tap(_config(sandbox, reports=[report]), now=NOW, expect_exit=0)
    assert sandbox.request_log
    assert all(c.status == 200 and c.rows == 0 for c in sandbox.request_log)
    _, _, body = sandbox.answer("id123456789", sandbox.request_log[0].body)
    assert body.startswith(b"date,pid,c,users,")
    assert body.count(b"\n") == 1
    assert "ltv" not in run.records
    assert _bookmark(run.last_state) is None


def test_bookmark_stops_at_the_newest_date_returned(sandbox) -> None:
    # An ad that ran on June 13 but not on June 14: the window's last date has no rows.
    base = {"name": "ltv", "groupings": ["date", "af_ad"], "kpis": ["sessions"]}
    on_13 = {
        r["af_ad"] for r in day_rows(sandbox, "id123456789", base, date(2026, 6, 13), "sessions")
    }
    on_14 = {
        r["af_ad"] for r in day_rows(sandbox, "id123456789", base, date(2026, 6, 14), "sessions")
    }
    ad = sorted(on_13 - on_14)[0]
    report = {**base, "filters": {"af_ad": [ad], "period": [0]}, "restatement_days": 0}
    config = _config(sandbox, start_date="2026-06-12", reports=[report])
    first = run_tap(config, now=NOW, expect_exit=0)
    assert max(r["date"] for r in first.records["ltv"]) == "2026-06-13"
    # June 13 is loaded, but as the newest date before absent ones it is not taken for
    # whole (a body cut between rows ends the same way): it stays due with June 14.
    assert _bookmark(first.last_state) == "2026-06-12"
    sandbox.clear_log()
    second = run_tap(config, state=first.last_state, now=NOW, expect_exit=0)
    # June 13 and 14 are asked again in the same single call; June 13 loads the same rows.
    assert [(c.body["from"], c.body["to"]) for c in sandbox.request_log] == [
        ("2026-06-13", "2026-06-14")
    ]
    assert second.records["ltv"] == first.records["ltv"][-1:]


def test_numbers_are_numbers_and_provenance_stamps_the_units(sandbox) -> None:
    report = {**REPORT, "kpis": ["revenue", "roas"], "per_user": True, "preferred_currency": True}
    config = _config(
        sandbox,
        app_ids=["com.example.app"],
        reports=[report],
        app_currency={"com.example.app": "JPY"},
    )
    run = run_tap(config, now=NOW, expect_exit=0)
    records = run.records["ltv"]
    expected = truth(sandbox, "com.example.app", report, days(date(2026, 6, 10), YESTERDAY))
    assert emitted(records, report) == expected
    for record in records:
        assert type(record["users"]) is int
        for column in ("cost", "revenue_sum", "revenue_count", "roas_rate", "ecpi"):
            assert record[column] is None or type(record[column]) is float
        assert (record["cohort_type"], record["aggregation_type"]) == (
            "user_acquisition",
            "cumulative",
        )
        assert (record["per_user"], record["currency"], record["timezone"]) == (True, "JPY", "UTC")
    usd = run_tap(_config(sandbox, app_ids=["com.example.app"]), now=NOW, expect_exit=0)
    assert {r["currency"] for r in usd.records["ltv"]} == {"USD"}
    paid = [r for r in usd.records["ltv"] if r["cost"]]
    jpy = {(r["date"], r["pid"], r["c"]): r["cost"] for r in records}
    assert all(
        jpy[r["date"], r["pid"], r["c"]] == pytest.approx(r["cost"] * 150, rel=1e-3) for r in paid
    )


def test_rate_columns_say_percent(sandbox) -> None:
    run = run_tap(_config(sandbox), now=NOW, expect_exit=0)
    [schema] = [m["schema"] for m in run.messages if m["type"] == "SCHEMA"]
    for column in ("sessions_rate", "roas_rate"):
        assert "percent" in schema["properties"][column]["description"]
    assert "percent" not in schema["properties"]["sessions_count"]["description"]


def test_json_reader_is_tolerant() -> None:
    # A bare list of results, numbers as strings, N/A, a result without measures.
    body = (
        b'[{"date": "2026-06-10", "pid": "Organic", "users": "12", "ecpi": null, "cost": "0",'
        b' "measures": [{"period": 0, "roas_rate": "N/A"}, {"period": 1, "roas_rate": null}]},'
        b' {"date": "2026-06-10", "pid": "Facebook Ads", "users": 30, "ecpi": 2.5, "cost": 75}]'
    )
    table = parse_json(body, kpi="roas", groupings=("date", "pid"))
    assert table.columns == [("rate", 0), ("rate", 1)]
    assert table.rows == [
        (("2026-06-10", "Organic"), 12, None, 0.0, [None, None]),
        (("2026-06-10", "Facebook Ads"), 30, 2.5, 75.0, [None, None]),
    ]
    assert parse_json(b"", kpi="roas", groupings=("date",)).rows == []
    with pytest.raises(AnswerError):
        parse_json(b"<html>", kpi="roas", groupings=("date",))
