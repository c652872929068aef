"""The sandbox's quirks over HTTP: odd answers, framings, rules by KPI, lag and settling."""

from __future__ import annotations

import csv
import gzip
import http.client
import io
import itertools
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
import requests

from tap_appsflyer_cohort.sandbox import SandboxServer, running_sandbox
from tap_appsflyer_cohort.sandbox.faults import STEPS, parse_fault
from tap_appsflyer_cohort.sandbox.rules import parse_rule
from tests.test_sandbox_support import IOS, base_body, post, read_csv, url

#: Two dates, six media sources each: twelve rows, few columns.
SMALL = base_body(kpis=["revenue"], filters={"period": [0, 7]}, **{"to": "2026-05-02"})
ROAS = {**SMALL, "kpis": ["roas"]}


def truth(server: SandboxServer, body: dict | None = None, fmt: str = "csv") -> bytes:
    status, _, content = server.answer(IOS, body or SMALL, fmt)
    assert status == 200
    return content


def lines_of(content: bytes) -> list[bytes]:
    return content.split(b"\n")


def raw_post(
    server: SandboxServer, body: dict, fmt: str = "csv"
) -> tuple[http.client.HTTPResponse, bytes]:
    """POST with http.client, to see the framing requests hides."""
    parts = urlsplit(url(server))
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request(
        "POST",
        f"{parts.path}?format={fmt}",
        body=json.dumps(body),
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    content = response.read()
    connection.close()
    return response, content


# -- the names --------------------------------------------------------------------------


def test_every_step_parses_and_composites_keep_stage_order() -> None:
    for kind, (_, argument) in STEPS.items():
        name = {"none": kind, "optional": kind, "required": f"{kind}:1"}[argument]
        if kind == "rename-column":
            name = "rename-column:a=b"
        assert parse_fault(name).steps[0].kind == kind
    fault = parse_fault("chunked+bom+time-suffix+cut-lines:3")
    assert [s.kind for s in fault.steps] == ["time-suffix", "cut-lines", "bom", "chunked"]


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        "500+503",  # two replacing steps
        "chunked+close-delimited",
        "bom+bom",
        "header-only:3",
        "short:x",
        "short:1.5",
        "trickle:0",
        "422",
        "cut-lines:-1",
        "header-only@kpi=roas",  # a rule, not a fault
    ],
)
def test_bad_fault_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError):
        parse_fault(name)


@pytest.mark.parametrize(
    "text", ["short@kpi", "short@color=red", "short@times=0", "short@times=x", "x@kpi=roas"]
)
def test_bad_rules_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rule(text)


# -- row quirks -------------------------------------------------------------------------


def test_header_only(sandbox: SandboxServer) -> None:
    sandbox.script("header-only")
    response = post(sandbox, SMALL)
    assert response.status_code == 200
    assert response.content == lines_of(truth(sandbox))[0] + b"\n"


def test_header_only_on_an_empty_answer_sends_the_header(sandbox: SandboxServer) -> None:
    future = {**SMALL, "from": "2026-07-01", "to": "2026-07-02"}
    assert truth(sandbox, future) == b""
    sandbox.script("header-only")
    columns, rows = read_csv(post(sandbox, future).text)
    assert rows == []
    assert columns[:5] == ["date", "pid", "users", "ecpi", "cost"]


@pytest.mark.parametrize(("quirk", "missing"), [("short", 6), ("short:1", 1), ("short:5", 5)])
def test_short_drops_rows_spread_through_the_answer(
    sandbox: SandboxServer, quirk: str, missing: int
) -> None:
    full = lines_of(truth(sandbox))
    sandbox.script(quirk)
    got = lines_of(post(sandbox, SMALL).content)
    assert got[0] == full[0]
    assert set(got) < set(full)
    assert len(full) - len(got) == missing
    assert got[-1] == b"", "a short answer is a whole CSV"
    if missing > 1:
        assert full[-2] in got or full[1] in got, "not just a prefix"


def test_duplicate_key_repeats_a_key_with_other_values(sandbox: SandboxServer) -> None:
    sandbox.script("duplicate-key")
    columns, rows = read_csv(post(sandbox, SMALL).text)
    _, full_rows = read_csv(truth(sandbox).decode())
    assert len(rows) == len(full_rows) + 1
    keys = [(r["date"], r["pid"]) for r in rows]
    repeated = [k for k in set(keys) if keys.count(k) == 2]
    assert len(repeated) == 1
    first, second = (r for r in rows if (r["date"], r["pid"]) == repeated[0])
    assert first in full_rows
    assert all(first[c] != second[c] for c in columns if c not in {"date", "pid"})


def test_duplicate_key_in_json(sandbox: SandboxServer) -> None:
    sandbox.script("duplicate-key:2")
    results = post(sandbox, SMALL, fmt="json").json()["results"]
    keys = [(r["date"], r["pid"]) for r in results]
    assert len(keys) - len(set(keys)) == 2


@pytest.mark.parametrize(
    ("quirk", "expected"), [("time-suffix", "2026-05-01 00:00:00"), ("slash-dates", "2026/05/01")]
)
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_date_shapes(sandbox: SandboxServer, quirk: str, expected: str, fmt: str) -> None:
    sandbox.script(quirk)
    response = post(sandbox, SMALL, fmt=fmt)
    if fmt == "csv":
        dates = [r["date"] for r in read_csv(response.text)[1]]
    else:
        dates = [r["date"] for r in response.json()["results"]]
    assert dates[0] == expected
    assert len(dates) == 12
    assert {len(d) for d in dates} == {len(expected)}


def test_duplicate_column_sends_a_name_twice_with_other_values(sandbox: SandboxServer) -> None:
    sandbox.script("duplicate-column:cost")
    reader = list(csv.reader(io.StringIO(post(sandbox, SMALL).text)))
    header = reader[0]
    assert header.count("cost") == 2
    first, last = header.index("cost"), len(header) - 1
    assert header[last] == "cost"
    assert all(row[first] != row[last] for row in reader[1:])
    sandbox.script("duplicate-column")  # default: the first KPI column
    header = next(csv.reader(io.StringIO(post(sandbox, SMALL).text)))
    assert header.count("revenue_count_day_0") == 2


def test_thousands_separators_are_quoted_numbers(sandbox: SandboxServer) -> None:
    _, plain = read_csv(truth(sandbox).decode())
    sandbox.script("thousands-separators")
    response = post(sandbox, SMALL)
    _, rows = read_csv(response.text)
    # a quoted amount with a thousands separator and decimals, whatever the seed's figures
    assert re.search(rb'"\d{1,3}(,\d{3})+\.\d+"', response.content)
    for got, want in zip(rows, plain, strict=True):
        assert {k: v.replace(",", "") for k, v in got.items()} == want
    assert any("," in v for row in rows for v in row.values())


def test_percent_suffix_on_rates(sandbox: SandboxServer) -> None:
    _, plain = read_csv(truth(sandbox, ROAS).decode())
    sandbox.script("percent-suffix")
    _, rows = read_csv(post(sandbox, ROAS).text)
    for got, want in zip(rows, plain, strict=True):
        for column, value in want.items():
            rate = column.startswith("roas_rate_day_") and value
            assert got[column] == (value + "%" if rate else value)
    assert any(v.endswith("%") for row in rows for v in row.values())


def test_odd_line_breaks_inside_unquoted_names(sandbox: SandboxServer) -> None:
    sandbox.script("odd-line-breaks")
    response = post(sandbox, SMALL)
    text = response.content.decode("utf-8")
    assert text.count("\n") == 13, "still 13 lines for the csv module"
    assert {"\u2028", "\x85", "\x0c"} <= set(text)
    assert '"' not in text, "not quoted"
    assert len(text.splitlines()) > 13, "str.splitlines() breaks them"
    _, rows = read_csv(text)
    pids = [r["pid"] for r in rows]
    _, plain = read_csv(truth(sandbox).decode())
    assert [p.replace("\u2028", "").replace("\x85", "").replace("\x0c", "") for p in pids] == [
        r["pid"] for r in plain
    ]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_latin1_body_is_not_utf8(sandbox: SandboxServer, fmt: str) -> None:
    sandbox.script("latin-1")
    response = post(sandbox, SMALL, fmt=fmt)
    assert b"Caf\xe9" in response.content
    with pytest.raises(UnicodeDecodeError):
        response.content.decode("utf-8")
    decoded = response.content.decode("latin-1")
    assert "Apple Search Ads Café" in decoded
    assert response.headers["Content-Type"].endswith("charset=utf-8") or fmt == "json"


def test_raw_gzip_without_content_encoding(sandbox: SandboxServer) -> None:
    sandbox.script("raw-gzip")
    response = post(sandbox, SMALL)
    assert "Content-Encoding" not in response.headers
    assert response.content[:2] == b"\x1f\x8b"
    assert gzip.decompress(response.content) == truth(sandbox)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_long_field_passes_the_csv_modules_limit(sandbox: SandboxServer, fmt: str) -> None:
    sandbox.script("long-field")
    response = post(sandbox, SMALL, fmt=fmt)
    if fmt == "csv":
        # Past the csv module's default limit (131,072; the tap raises its own limit).
        limit = csv.field_size_limit()
        try:
            csv.field_size_limit(1_000_000)
            first = read_csv(response.text)[1][0]
        finally:
            csv.field_size_limit(limit)
    else:
        first = response.json()["results"][0]
    assert len(first["pid"]) == 200_000
    assert first["pid"].startswith("Apple Search Ads")
    sandbox.script("long-field:131073")
    assert len(post(sandbox, SMALL, fmt=fmt).content) > 131_073


def test_bom_and_no_final_newline(sandbox: SandboxServer) -> None:
    full = truth(sandbox)
    sandbox.script("bom", "no-final-newline", "bom+no-final-newline")
    assert post(sandbox, SMALL).content == b"\xef\xbb\xbf" + full
    assert post(sandbox, SMALL).content == full[:-1]
    assert post(sandbox, SMALL).content == b"\xef\xbb\xbf" + full[:-1]
    assert full.endswith(b"\n")


@pytest.mark.parametrize("quirk", ["duplicate-column", "thousands-separators", "cut-lines"])
def test_csv_only_quirks_refuse_json_loudly(sandbox: SandboxServer, quirk: str) -> None:
    sandbox.script(quirk)
    response = post(sandbox, SMALL, fmt="json")
    assert response.status_code == 500
    assert "CSV answers only" in response.json()["error"]


@pytest.mark.parametrize("quirk", ["header-only", "time-suffix+bom", "latin-1", "short:3"])
def test_answer_gives_the_quirk_bytes_the_wire_carries(sandbox: SandboxServer, quirk: str) -> None:
    sandbox.script(quirk)
    assert post(sandbox, SMALL).content == sandbox.answer(IOS, SMALL, quirk=quirk)[2]


# -- cut at a line boundary, three framings ---------------------------------------------


def test_cut_lines_with_a_matching_content_length(sandbox: SandboxServer) -> None:
    full = lines_of(truth(sandbox))
    sandbox.script("cut-lines:3")
    response, content = raw_post(sandbox, SMALL)
    assert content == b"\n".join(full[:4]) + b"\n"
    assert response.getheader("Content-Length") == str(len(content))
    sandbox.script("cut-lines")  # default: half the data lines
    assert lines_of(post(sandbox, SMALL).content) == [*full[:7], b""]


def test_cut_lines_chunked(sandbox: SandboxServer) -> None:
    full = lines_of(truth(sandbox))
    sandbox.script("cut-lines:5+chunked")
    response, content = raw_post(sandbox, SMALL)
    assert response.chunked
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("Content-Length") is None
    assert content == b"\n".join(full[:6]) + b"\n"
    with requests.Session() as session:  # a chunked answer keeps the connection
        sandbox.script("cut-lines:5+chunked")
        assert post(sandbox, SMALL, session=session).content == content
        assert post(sandbox, SMALL, session=session).content == truth(sandbox)


def test_cut_lines_close_delimited(sandbox: SandboxServer) -> None:
    full = lines_of(truth(sandbox))
    sandbox.script("cut-lines:2+close-delimited")
    response, content = raw_post(sandbox, SMALL)
    assert response.getheader("Content-Length") is None
    assert response.getheader("Transfer-Encoding") is None
    assert response.getheader("Connection") == "close"
    assert content == b"\n".join(full[:3]) + b"\n"
    sandbox.script("close-delimited")
    assert post(sandbox, SMALL).content == truth(sandbox)


def test_cut_lines_beyond_the_answer_is_a_loud_sandbox_error(sandbox: SandboxServer) -> None:
    sandbox.script("cut-lines:12")
    response = post(sandbox, SMALL)
    assert response.status_code == 500
    assert "12 data lines" in response.json()["error"]


# -- trickle ----------------------------------------------------------------------------


def test_trickle_keeps_bytes_coming_past_a_read_timeout(sandbox: SandboxServer) -> None:
    header_line = lines_of(truth(sandbox))[0] + b"\n"
    sandbox.script("header-only+trickle:60")
    started = time.perf_counter()
    response = post(sandbox, SMALL, timeout=0.5)  # 0.5 s between bytes at most
    held = time.perf_counter() - started
    assert response.content == header_line
    assert held > 1.0, f"{len(header_line)} bytes at 60 B/s took {held:.2f} s"


def test_trickle_gives_up_when_the_server_stops() -> None:
    server = SandboxServer().start()
    server.options.today = date(2026, 6, 15)
    server.script("trickle:1")
    failures: list[BaseException] = []

    def read() -> None:
        try:
            post(server, SMALL, timeout=30)
        except requests.RequestException as error:
            failures.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    while not server.request_log:
        time.sleep(0.05)
    server.stop()
    reader.join(timeout=20)
    assert not reader.is_alive()
    assert failures, "the cut answer is an error, not a short body"


# -- replacing answers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quirk", "expected"),
    [("json-empty", {}), ("json-error", {"error": "Report generation failed"})],
)
def test_json_answers_with_200(sandbox: SandboxServer, quirk: str, expected: dict) -> None:
    sandbox.script(quirk, "json-error:Quota exceeded")
    response = post(sandbox, SMALL, fmt="json")
    assert (response.status_code, response.json()) == (200, expected)
    assert post(sandbox, SMALL, fmt="json").json() == {"error": "Quota exceeded"}


@pytest.mark.parametrize(
    ("quirk", "words"),
    [
        ("422-unknown-kpi", ["Invalid value: days_active for key: kpis"]),
        ("422-exceeds", ["exceeds", "for key: filters"]),
        ("422:Invalid value: 12 for key: period", ["Invalid value: 12 for key: period"]),
    ],
)
def test_misleading_422_texts(sandbox: SandboxServer, quirk: str, words: list[str]) -> None:
    sandbox.script(quirk)
    response = post(sandbox, SMALL)
    assert response.status_code == 422
    error = response.json()
    assert error["expose"] is False
    assert all(w in error["error"] for w in words)


def test_retry_after_as_http_dates(sandbox: SandboxServer) -> None:
    sandbox.script("429-date", "429-date:30", "429-date-tomorrow")
    waits = []
    for _ in range(3):
        response = post(sandbox, SMALL)
        assert response.status_code == 429
        sent = parsedate_to_datetime(response.headers["Date"])
        waits.append(parsedate_to_datetime(response.headers["Retry-After"]) - sent)
    assert waits[:2] == [timedelta(seconds=2), timedelta(seconds=30)]
    assert waits[2] == timedelta(hours=12)  # the server's clock reads 12:00 UTC
    tomorrow = parsedate_to_datetime(response.headers["Retry-After"])
    assert tomorrow == datetime(2026, 6, 16, tzinfo=timezone.utc)


def test_every_answer_is_dated_by_the_servers_clock(sandbox: SandboxServer) -> None:
    response = post(sandbox, SMALL)
    assert parsedate_to_datetime(response.headers["Date"]) == sandbox.now


# -- rules: faults aimed by KPI ---------------------------------------------------------


def test_rule_by_kpi_under_concurrency(sandbox: SandboxServer) -> None:
    sandbox.options.requests_per_minute = 10_000
    rule = sandbox.quirk("header-only", kpi="roas")
    header = lines_of(truth(sandbox, ROAS))[0] + b"\n"
    full = truth(sandbox)
    bodies = [ROAS, SMALL] * 10
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda b: post(sandbox, b).content, bodies))
    assert answers[0::2] == [header] * 10
    assert answers[1::2] == [full] * 10
    assert rule.used == 10
    faults = {(r.body or {})["kpis"][0]: r.fault for r in sandbox.request_log}
    assert faults == {"roas": "header-only", "revenue": None}
    assert len({((r.body or {})["kpis"][0], r.fault) for r in sandbox.request_log}) == 2


def test_rule_for_n_calls_then_full_answers(sandbox: SandboxServer) -> None:
    rule = sandbox.quirk("empty", kpi="revenue", times=2)
    contents = [post(sandbox, SMALL).content for _ in range(3)]
    assert contents[:2] == [b"", b""]
    assert contents[2] == truth(sandbox)
    assert rule.used == 2
    assert post(sandbox, ROAS).content == truth(sandbox, ROAS)


def test_rules_from_options_text_with_app_and_format() -> None:
    rules = ["short:2@kpi=roas@format=json@times=1", "time-suffix@app=com.example.app"]
    with running_sandbox(today=date(2026, 6, 15), quirks=rules) as server:
        assert len(post(server, ROAS, fmt="json").json()["results"]) == 10
        assert len(post(server, ROAS, fmt="json").json()["results"]) == 12
        assert post(server, ROAS).content == truth(server, ROAS)  # csv: not selected
        jpy = read_csv(post(server, SMALL, app="com.example.app").text)[1]
        assert jpy[0]["date"].endswith(" 00:00:00")
        assert [r.used for r in server.quirk_rules] == [1, 1]
        server.clear_quirks()
        assert server.quirk_rules == []


def test_script_comes_before_rules(sandbox: SandboxServer) -> None:
    sandbox.quirk("header-only", kpi="revenue")
    sandbox.script("503")
    assert post(sandbox, SMALL).status_code == 503
    assert read_csv(post(sandbox, SMALL).text)[1] == []


# -- completeness lag -------------------------------------------------------------------


def test_completeness_lag_serves_what_a_day_earlier_served() -> None:
    body = base_body(kpis=["revenue"], **{"from": "2026-06-01", "to": "2026-06-10"})
    partial = {**body, "partial_data": True}
    today = date(2026, 6, 15)
    with (
        running_sandbox(today=today, completeness_lag_days=1) as lagging,
        running_sandbox(today=today - timedelta(days=1)) as earlier,
        running_sandbox(today=today) as current,
    ):
        for query in (body, partial):
            got = post(lagging, query).content
            assert got == earlier.answer(IOS, query)[2]
            assert got != current.answer(IOS, query)[2]
        columns, _ = read_csv(post(lagging, body).text)
        periods = sorted({int(c.rsplit("_", 1)[1]) for c in columns if "_day_" in c})
        assert periods[-1] == (today - date(2026, 6, 10)).days - 2  # p < T - to - 1
        recent = base_body(**{"from": "2026-06-14", "to": "2026-06-14"})
        assert post(current, recent).content != b""
        assert post(lagging, recent).content == b""  # the 14th has no data yet
        assert post(lagging, {**recent, "from": "2024-06-16"}).status_code == 422


# -- settling ---------------------------------------------------------------------------


def settling_rows(server: SandboxServer, body: dict, as_of: str = "now") -> list[dict]:
    status, _, content = server.answer(IOS, body, as_of=as_of)
    assert status == 200
    return read_csv(content.decode())[1]


SETTLE = base_body(
    kpis=["roas"], filters={"period": [0, 1, 3]}, **{"from": "2026-06-08", "to": "2026-06-14"}
)


def test_settling_off_by_default_and_http_serves_as_of_now() -> None:
    with running_sandbox(today=date(2026, 6, 15)) as plain:
        assert plain.answer(IOS, SETTLE)[2] == plain.answer(IOS, SETTLE, as_of="final")[2]
    with running_sandbox(today=date(2026, 6, 15), settling_days=3) as server:
        now, final = (server.answer(IOS, SETTLE, as_of=a)[2] for a in ("now", "final"))
        assert now != final
        assert post(server, SETTLE).content == now
        assert final == plain.answer(IOS, SETTLE)[2]


def test_settling_cost_grows_every_pull_and_is_final_after_settling_days() -> None:
    day = "2026-06-10"
    body = {**SETTLE, "from": day, "to": day}
    with running_sandbox(today=date(2026, 6, 11), settling_days=2) as server:
        served: list[dict[str, float]] = []
        moment = datetime(2026, 6, 11, 0, 30, tzinfo=timezone.utc)
        while moment < datetime(2026, 6, 13, 12, tzinfo=timezone.utc):
            server.set_now(moment)
            rows = settling_rows(server, body)
            final = {r["pid"]: r for r in settling_rows(server, body, "final")}
            assert [r["pid"] for r in rows] == list(final)
            served.append({r["pid"]: float(r["cost"]) for r in rows})
            settled = moment >= datetime(2026, 6, 13, tzinfo=timezone.utc)  # T - D > 2
            for row in rows:
                want = final[row["pid"]]
                assert row["users"] == want["users"]
                if settled or not float(want["cost"]):
                    assert row == want
                    continue
                assert float(row["cost"]) < float(want["cost"])
                assert float(row["ecpi"]) == round(float(row["cost"]) / int(row["users"]), 2)
                for column in (c for c in row if c.startswith("roas_rate_day_")):
                    revenue_now = float(row[column]) * float(row["cost"]) / 100
                    revenue_final = float(want[column]) * float(want["cost"]) / 100
                    # Both are rounded to 0.01 %: revenue agrees to 0.01 % of the cost.
                    slack = float(want["cost"]) * 2e-4
                    assert revenue_now == pytest.approx(revenue_final, abs=slack)
                    assert float(row[column]) > float(want[column])
            moment += timedelta(hours=4)
        assert len(served) == 15
        for before, after in itertools.pairwise(served):
            assert all(after[k] >= before[k] for k in before)
        assert served[0] != served[-1]
        assert served[-3] == served[-1], "final from midnight of D + 3 on"
        assert served[-4] != served[-3]


def test_settling_is_seeded_and_revenue_settles_only_when_asked() -> None:
    revenue = {**SETTLE, "kpis": ["revenue"]}
    costs = []
    for seed in (1, 1, 2):
        with running_sandbox(today=date(2026, 6, 15), settling_days=3, seed=seed) as server:
            now = settling_rows(server, revenue)
            final = settling_rows(server, revenue, "final")
            pairs = [(float(n["cost"]), float(f["cost"])) for n, f in zip(now, final, strict=True)]
            costs.append([round(n / f, 6) for n, f in pairs if f])
            assert [r["revenue_sum_day_0"] for r in now] == [r["revenue_sum_day_0"] for r in final]
    assert costs[0] == costs[1]
    assert costs[0] != costs[2]
    with running_sandbox(today=date(2026, 6, 15), settling_days=3, settling_revenue=True) as s:
        now, final = settling_rows(s, revenue), settling_rows(s, revenue, "final")
        recent = [(n, f) for n, f in zip(now, final, strict=True) if n["date"] == "2026-06-14"]
        assert all(float(n["revenue_sum_day_0"]) < float(f["revenue_sum_day_0"]) for n, f in recent)
        assert all(n["revenue_count_day_0"] == f["revenue_count_day_0"] for n, f in recent)


def test_settling_without_a_date_grouping_sums_the_dates() -> None:
    with running_sandbox(today=date(2026, 6, 15), settling_days=3) as server:
        by_date = settling_rows(server, SETTLE)
        spans = settling_rows(server, {**SETTLE, "groupings": ["pid"]})
        final_spans = settling_rows(server, {**SETTLE, "groupings": ["pid"]}, "final")
        for row, final in zip(spans, final_spans, strict=True):
            days = [r for r in by_date if r["pid"] == row["pid"]]
            assert float(row["cost"]) == pytest.approx(
                sum(float(r["cost"]) for r in days), abs=0.01 * len(days)
            )
            if float(final["cost"]):
                assert float(row["cost"]) < float(final["cost"])


@pytest.mark.parametrize("quirk", ["duplicate-key", "long-field", "cut-lines"])
def test_quirks_that_need_a_row_refuse_an_empty_answer(sandbox: SandboxServer, quirk: str) -> None:
    future = {**SMALL, "from": "2026-07-01", "to": "2026-07-02"}
    sandbox.script(quirk, "time-suffix")
    refused = post(sandbox, future)
    assert refused.status_code == 500
    assert refused.json()["error"].startswith(f"sandbox error: {quirk}")
    assert post(sandbox, future).content == b"", "a quirk with nothing to change: as is"
