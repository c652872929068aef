"""HTTP behaviour of the sandbox: auth, routing, limits, faults, log, row cap."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timezone

import pytest
import requests

from tap_appsflyer_cohort.sandbox import SandboxOptions, SandboxServer, running_sandbox
from tests.test_sandbox_support import (
    IOS,
    base_body,
    post,
    read_csv,
    url,
)

WIDE = ["date", "pid", "c", "af_adset", "af_ad", "geo"]


def test_generated_token_is_jwt_like(sandbox: SandboxServer) -> None:
    parts = sandbox.token.split(".")
    assert len(sandbox.token) >= 760
    assert len(parts) == 3
    assert all(p and "=" not in p for p in parts)


def test_public_api_reexported() -> None:
    options = SandboxOptions(token="t")
    server = SandboxServer(options).start()
    try:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.token == "t"
        assert server.options is options
    finally:
        server.stop()


def test_no_authorization_header_gives_200_empty(sandbox: SandboxServer) -> None:
    response = post(sandbox, token=None)
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.parametrize("header", ["Bearer wrong", "wrong", "bearer {token}", "Token {token}", ""])
def test_bad_token_gives_401(sandbox: SandboxServer, header: str) -> None:
    response = post(sandbox, token=header.format(token=sandbox.token))
    assert response.status_code == 401
    assert response.json() == "Authentication error"


def test_unknown_app_gives_404(sandbox: SandboxServer) -> None:
    response = post(sandbox, app="com.unknown.app")
    assert response.status_code == 404
    assert response.json() == {
        "error": "App not found or not enabled for Cohort API",
        "expose": False,
    }


def test_other_paths_give_404(sandbox: SandboxServer) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    response = requests.post(sandbox.base_url + "/api/other", json={}, headers=headers, timeout=5)
    assert response.status_code == 404


def test_body_fields_as_query_params_give_422(sandbox: SandboxServer) -> None:
    response = post(sandbox, b"", params={"cohort_type": "user_acquisition"})
    assert response.status_code == 422
    assert "for key: cohort_type" in response.json()["error"]


@pytest.mark.parametrize("fmt", ["xml", "CSV", ""])
def test_bad_format_gives_422(sandbox: SandboxServer, fmt: str) -> None:
    response = post(sandbox, fmt=fmt)
    assert response.status_code == 422
    assert "for key: format" in response.json()["error"]


def test_csv_headers(sandbox: SandboxServer) -> None:
    response = post(sandbox)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="cohort_cumulative_af_purchase_')
    assert "_2026-05-01_2026-05-05_UTC_USD_" in disposition
    assert response.text.endswith("\n")
    assert "\r" not in response.text


def test_rate_limit_per_minute_returns_429_with_retry_after() -> None:
    with running_sandbox(today=date(2026, 6, 15), requests_per_minute=3) as server:
        assert post(server, token="Bearer nope").status_code == 401  # not counted
        with requests.Session() as session:
            statuses = [post(server, session=session).status_code for _ in range(3)]
            limited = post(server, session=session)
            again = post(server, session=session)
        assert statuses == [200, 200, 200]
        assert limited.status_code == 429
        assert limited.json() == {"error": "Too many requests", "expose": False}
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert again.status_code == 429  # rejected calls do not free or take slots
        assert [r.status for r in server.request_log][-2:] == [429, 429]


def test_rate_limit_window_slides() -> None:
    with running_sandbox(today=date(2026, 6, 15), requests_per_minute=1) as server:
        assert post(server).status_code == 200
        assert post(server).status_code == 429
        limiter = server._limiter
        recent = limiter._recent[server.token]
        recent[0] -= 61  # pretend the accepted call is a minute old
        assert post(server).status_code == 200


def test_daily_budget_returns_429_until_utc_midnight() -> None:
    with running_sandbox(today=date(2026, 6, 15), requests_per_day=2) as server:
        assert [post(server).status_code for _ in range(2)] == [200, 200]
        limited = post(server)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == str(12 * 3600)  # server time is 12:00 UTC
        server.set_today(date(2026, 6, 16))
        assert post(server).status_code == 200


def test_row_cap_truncates_silently(sandbox: SandboxServer) -> None:
    sandbox.options.row_cap = 50
    response = post(sandbox, base_body(groupings=WIDE))
    assert response.status_code == 200
    _, rows = read_csv(response.text)
    assert len(rows) == 50
    status, _, full = sandbox.answer(IOS, base_body(groupings=WIDE))
    assert status == 200
    assert response.content == full  # truncation keeps the first rows
    assert sandbox.request_log[-1].rows == 50


def test_row_cap_error_mode(sandbox: SandboxServer) -> None:
    sandbox.options.row_cap = 50
    sandbox.options.over_cap = "error"
    sandbox.options.row_cap = 50
    response = post(sandbox, base_body(groupings=WIDE))
    assert response.status_code == 422
    error = response.json()
    assert error["expose"] is False
    assert error["error"].startswith("Result is too large: ")
    assert error["error"].endswith("rows exceed the limit of 50 rows. Narrow the query.")


def test_sixty_days_wide_grouping_exceeds_the_default_cap(sandbox: SandboxServer) -> None:
    body = base_body(groupings=WIDE, **{"from": "2026-03-01", "to": "2026-04-30"})
    sandbox.options.row_cap = 1_000_000
    assert len(read_csv(post(sandbox, body).text)[1]) > 11_000
    sandbox.options.row_cap = 10_000
    assert len(read_csv(post(sandbox, body).text)[1]) == 10_000
    small = base_body(groupings=["date", "pid"], **{"from": "2026-03-01", "to": "2026-04-30"})
    assert len(read_csv(post(sandbox, small).text)[1]) < 500


def test_shuffle_columns_changes_order_not_data(sandbox: SandboxServer) -> None:
    _, _, plain = sandbox.answer(IOS, base_body())
    plain_columns, plain_rows = read_csv(plain.decode())
    sandbox.options.shuffle_columns = True
    orders = set()
    for _ in range(4):
        columns, rows = read_csv(post(sandbox).text)
        orders.add(tuple(columns))
        assert sorted(columns) == sorted(plain_columns)
        assert rows == plain_rows  # DictReader compares by name
    assert len(orders) > 1 or next(iter(orders)) != tuple(plain_columns)


def test_no_data_body_modes(sandbox: SandboxServer) -> None:
    future = base_body(**{"from": "2026-07-01", "to": "2026-07-02"})
    empty = post(sandbox, future)
    assert (empty.status_code, empty.content) == (200, b"")
    sandbox.options.no_data_body = "header"
    header_only = post(sandbox, future)
    assert header_only.status_code == 200
    assert header_only.text == "date,pid,users,ecpi,cost\n"


def test_latency_is_added(sandbox: SandboxServer) -> None:
    sandbox.options.latency = 0.15
    started = time.perf_counter()
    post(sandbox)
    assert time.perf_counter() - started >= 0.15


def test_request_log_records_every_call(sandbox: SandboxServer) -> None:
    post(sandbox, token=None)
    post(sandbox, token="Bearer bad")
    post(sandbox, app="nope")
    post(sandbox, fmt="json")
    sandbox.script("503")
    post(sandbox)
    log = sandbox.request_log
    assert [r.status for r in log] == [200, 401, 404, 200, 503]
    last_ok = log[3]
    assert last_ok.method == "POST"
    assert last_ok.path == "/api/cohorts/v1/data/app/id123456789"
    assert last_ok.app_id == IOS
    assert last_ok.query == {"format": "json"}
    assert last_ok.body == base_body()
    assert last_ok.rows > 0
    assert last_ok.fault is None
    assert last_ok.at == datetime(2026, 6, 15, 12, 0, tzinfo=timezone.utc)
    assert log[4].fault == "503"
    sandbox.clear_log()
    assert sandbox.request_log == []


def test_keep_alive_connection_is_reused(sandbox: SandboxServer) -> None:
    with requests.Session() as session:
        first = post(sandbox, session=session)
        second = post(sandbox, session=session)
    assert first.status_code == second.status_code == 200
    assert first.headers.get("Connection", "").lower() != "close"


# -- faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_scripted_server_errors(sandbox: SandboxServer, status: str) -> None:
    sandbox.script(status)
    assert post(sandbox).status_code == int(status)
    assert post(sandbox).status_code == 200  # one fault per call


def test_scripted_429_with_and_without_retry_after(sandbox: SandboxServer) -> None:
    sandbox.script("429", "429-bare")
    first, second = post(sandbox), post(sandbox)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert second.status_code == 429
    assert "Retry-After" not in second.headers


def test_scripted_faults_come_after_auth(sandbox: SandboxServer) -> None:
    sandbox.script("500")
    assert post(sandbox, token="Bearer bad").status_code == 401
    assert post(sandbox).status_code == 500


def test_reset_fault_breaks_the_connection(sandbox: SandboxServer) -> None:
    sandbox.script("reset")
    with pytest.raises(requests.ConnectionError):
        post(sandbox)
    assert post(sandbox).status_code == 200
    assert sandbox.request_log[0].fault == "reset"


def test_truncate_fault_breaks_the_read(sandbox: SandboxServer) -> None:
    sandbox.script("truncate")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        post(sandbox)
    assert post(sandbox).status_code == 200


def test_truncate_silent_cuts_mid_row(sandbox: SandboxServer) -> None:
    _, _, full = sandbox.answer(IOS, base_body())
    sandbox.script("truncate-silent")
    response = post(sandbox)
    assert response.status_code == 200
    assert full.startswith(response.content)
    assert len(response.content) < len(full)
    assert not response.content.endswith(b"\n")
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_html_fault(sandbox: SandboxServer) -> None:
    sandbox.script("html")
    response = post(sandbox)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text


def test_timeout_fault_delays_then_answers(sandbox: SandboxServer) -> None:
    sandbox.script("timeout:0.3")
    with pytest.raises(requests.Timeout):
        post(sandbox, timeout=0.1)
    sandbox.script("timeout:0.1")
    started = time.perf_counter()
    assert post(sandbox).status_code == 200
    assert time.perf_counter() - started >= 0.1


def test_drop_and_rename_column_faults(sandbox: SandboxServer) -> None:
    sandbox.script("drop-column:cost", "rename-column:users=installs")
    dropped, _ = read_csv(post(sandbox).text)
    renamed, _ = read_csv(post(sandbox).text)
    assert "cost" not in dropped
    assert "users" in dropped
    assert "installs" in renamed
    assert "users" not in renamed


def test_drop_column_fault_in_json(sandbox: SandboxServer) -> None:
    sandbox.script("drop-column:ecpi")
    results = post(sandbox, fmt="json").json()["results"]
    assert results
    assert all("ecpi" not in r and "cost" in r for r in results)


def test_empty_fault(sandbox: SandboxServer) -> None:
    sandbox.script("empty")
    response = post(sandbox)
    assert (response.status_code, response.content) == (200, b"")


def test_unknown_fault_names_are_rejected(sandbox: SandboxServer) -> None:
    for name in ("418", "timeout", "rename-column:a", "timeout:-1"):
        with pytest.raises(ValueError):
            sandbox.script(name)


def test_random_faults_are_seeded() -> None:
    def statuses() -> list[int]:
        with running_sandbox(today=date(2026, 6, 15), seed=7, error_rate=0.5) as server:
            return [post(server).status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert set(first) - {200} <= {500, 502, 503}
    assert 200 in first
    assert set(first) != {200}


@pytest.mark.parametrize(
    ("option", "expected"),
    [("reset_rate", requests.ConnectionError), ("truncate_rate", requests.ConnectionError)],
)
def test_random_transport_faults(option: str, expected: type[Exception]) -> None:
    with running_sandbox(today=date(2026, 6, 15), **{option: 1.0}) as server:
        with pytest.raises((expected, requests.exceptions.ChunkedEncodingError)):
            post(server)
        assert server.request_log[0].fault in {"reset", "truncate"}


def test_random_html_fault() -> None:
    with running_sandbox(today=date(2026, 6, 15), html_rate=1.0) as server:
        response = post(server)
        assert response.headers["Content-Type"].startswith("text/html")
        assert server.request_log[0].fault == "html"


def test_answer_matches_http(sandbox: SandboxServer) -> None:
    status, headers, body = sandbox.answer(IOS, base_body(), "json")
    response = post(sandbox, fmt="json")
    assert status == response.status_code
    assert headers["Content-Type"] == response.headers["Content-Type"]
    assert json.loads(body) == response.json()


def test_url_helper_matches_contract(sandbox: SandboxServer) -> None:
    assert url(sandbox).endswith("/api/cohorts/v1/data/app/id123456789")


def test_concurrent_clients_get_identical_answers(sandbox: SandboxServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = base_body(groupings=["date", "pid", "geo"])
    _, _, expected = sandbox.answer(IOS, body)
    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(lambda _: post(sandbox, body).content, range(24)))
    assert all(b == expected for b in bodies)
