"""Replay: recorded answers served byte for byte instead of computed ones, end to end."""

from __future__ import annotations

import gzip
import http.client
import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tap_appsflyer_cohort.sandbox import SandboxServer, running_sandbox
from tap_appsflyer_cohort.sandbox.record import parse_curl_headers, save_case
from tap_appsflyer_cohort.sandbox.replay import Replay
from tests.test_sandbox_support import IOS, base_body, post, url

TODAY = date(2026, 6, 15)
ODD_BODY = b"date,pid,users,ecpi,cost\r\n2026-05-01,Caf\xe9 Ads,10,1.5,15\r\n2026-05-01,x"
RECORD = [sys.executable, "-m", "tap_appsflyer_cohort.sandbox.record"]


def write_case(folder: Path, request: dict, meta: dict, body: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "request.json").write_text(json.dumps(request))
    (folder / "response.meta.json").write_text(json.dumps(meta))
    (folder / "response.body").write_bytes(body)
    return folder


def raw_post(
    server: SandboxServer, body: dict, app: str = IOS
) -> tuple[http.client.HTTPResponse, bytes]:
    """POST with http.client: the raw body and framing, which requests would decode."""
    parts = urlsplit(url(server, app))
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(
            "POST",
            parts.path + "?format=csv",
            body=json.dumps(body),
            headers={
                "Authorization": f"Bearer {server.token}",
                "Content-Type": "application/json",
            },
        )
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def test_a_recorded_answer_is_served_byte_for_byte(tmp_path: Path) -> None:
    meta = {
        "status": 200,
        "headers": {
            "Content-Type": "text/csv",
            "X-Request-Id": "abc",
            "Content-Length": "999",  # recorded framing is not replayed
            "Date": "Mon, 01 Jan 2001 00:00:00 GMT",
        },
    }
    write_case(tmp_path / "01-odd", {"app_id": IOS, "body": {"kpis": ["roas"]}}, meta, ODD_BODY)
    with running_sandbox(today=TODAY, replay_dir=tmp_path) as server:
        response, content = raw_post(server, base_body(kpis=["roas"]))
        assert content == ODD_BODY
        assert response.status == 200
        assert response.getheader("Content-Type") == "text/csv"
        assert response.getheader("X-Request-Id") == "abc"
        assert response.getheader("Content-Length") == str(len(ODD_BODY))
        assert response.getheader("Date") != meta["headers"]["Date"]
        assert server.request_log[-1].replayed == "01-odd"
        assert server.request_log[-1].fault is None


def test_sequences_by_folder_name_and_the_last_repeats(tmp_path: Path) -> None:
    for name, status, body in [("01-first", 503, b"busy"), ("02-then", 200, b"a,b\n1,2\n")]:
        write_case(tmp_path / name, {"body": {"kpis": ["roas"]}}, {"status": status}, body)
    with running_sandbox(today=TODAY, replay_dir=tmp_path) as server:
        answers = [post(server, base_body(kpis=["roas"])) for _ in range(3)]
        assert [(a.status_code, a.content) for a in answers] == [
            (503, b"busy"),
            (200, b"a,b\n1,2\n"),
            (200, b"a,b\n1,2\n"),
        ]
        server.replay.rewind()  # type: ignore[union-attr]
        assert post(server, base_body(kpis=["roas"])).status_code == 503


def test_unmatched_calls_fall_through_or_get_a_clear_404(tmp_path: Path) -> None:
    write_case(
        tmp_path / "case", {"format": "csv", "body": {"kpis": ["roas"]}}, {"status": 204}, b""
    )
    with running_sandbox(today=TODAY, replay_dir=tmp_path) as server:
        assert post(server, base_body(kpis=["roas"])).status_code == 204
        simulated = post(server, base_body(kpis=["revenue"]))
        assert simulated.content == server.answer(IOS, base_body(kpis=["revenue"]))[2]
        assert post(server, base_body(kpis=["roas"]), fmt="json").status_code == 200
        assert post(server, token="Bearer wrong").status_code == 401, "auth comes first"
    with running_sandbox(today=TODAY, replay_dir=tmp_path, replay_unmatched="404") as server:
        missed = post(server, base_body(kpis=["revenue"]))
        assert missed.status_code == 404
        assert f"no recorded answer in {tmp_path} matches this call" in missed.json()["error"]


def test_a_gzip_answer_keeps_its_content_encoding(tmp_path: Path) -> None:
    plain = b"date,pid\n2026-05-01,a\n"
    meta = {"status": 200, "headers": {"Content-Type": "text/csv", "Content-Encoding": "gzip"}}
    write_case(tmp_path / "gz", {}, meta, gzip.compress(plain, mtime=0))
    with running_sandbox(today=TODAY, replay_dir=tmp_path) as server:
        assert raw_post(server, base_body())[1] == gzip.compress(plain, mtime=0)
        assert post(server).content == plain  # requests decodes it, as the tap's session does


def test_delivery_of_a_recorded_answer(tmp_path: Path) -> None:
    meta = {"status": 200, "headers": {"Content-Type": "text/csv"}, "delivery": "chunked"}
    write_case(tmp_path / "c", {}, meta, ODD_BODY)
    with running_sandbox(today=TODAY, replay_dir=tmp_path) as server:
        response, content = raw_post(server, base_body())
        assert response.chunked
        assert content == ODD_BODY


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"request.json": "{}", "response.meta.json": '{"status": 200}'}, "response.body: missing"),
        ({"request.json": "[]", "response.meta.json": "{}", "response.body": ""}, "JSON object"),
        (
            {"request.json": '{"kpi": 1}', "response.meta.json": "{}", "response.body": ""},
            "unknown keys ['kpi']",
        ),
        (
            {"request.json": "{}", "response.meta.json": '{"status": 9}', "response.body": ""},
            "status",
        ),
        (
            {
                "request.json": "{}",
                "response.meta.json": '{"status": 200, "delivery": "bom"}',
                "response.body": "",
            },
            "delivery steps only",
        ),
    ],
)
def test_a_bad_case_is_refused_naming_its_file(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    (tmp_path / "bad").mkdir()
    for name, text in files.items():
        (tmp_path / "bad" / name).write_text(text)
    with pytest.raises(ValueError, match="bad") as raised:
        Replay(tmp_path)
    assert message in str(raised.value)


def test_record_by_calling_then_replay_serves_the_same_bytes(tmp_path: Path) -> None:
    """A quirky answer from one sandbox, recorded by the command, replayed by another."""
    body = base_body(kpis=["roas"], filters={"period": [0, 1]})
    (tmp_path / "request.json").write_text(json.dumps(body))
    with running_sandbox(today=TODAY, quirks=("odd-line-breaks+bom@kpi=roas",)) as source:
        token_file = tmp_path / "token"
        token_file.write_text(source.token)
        original = post(source, body)
        command = [
            *RECORD,
            str(tmp_path / "cases" / "01-roas"),
            "--app-id",
            IOS,
            "--request",
            str(tmp_path / "request.json"),
            "--match",
            "kpis,from,to",
            "--call",
            source.base_url,
            "--token-file",
            str(token_file),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        token = source.token
    assert done.returncode == 0, done.stderr
    assert "saved" in done.stdout
    saved = [p.read_bytes() for p in (tmp_path / "cases" / "01-roas").iterdir()]
    assert not any(token.encode() in content for content in saved)
    with running_sandbox(today=TODAY, replay_dir=tmp_path / "cases") as replaying:
        again = post(replaying, {**body, "filters": {}})  # matched on kpis, from, to only
        assert again.content == original.content
        assert again.content.startswith(b"\xef\xbb\xbf")
        assert again.headers["Content-Disposition"] == original.headers["Content-Disposition"]


def test_record_from_a_curl_answer(tmp_path: Path) -> None:
    body = base_body(kpis=["revenue"])
    (tmp_path / "request.json").write_text(json.dumps(body))
    with running_sandbox(today=TODAY) as source:
        source.script("time-suffix")
        curl = [
            "curl",
            "-sS",
            "-D",
            str(tmp_path / "answer.headers"),
            "-o",
            str(tmp_path / "answer.body"),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            f"Authorization: Bearer {source.token}",
            "-d",
            f"@{tmp_path / 'request.json'}",
            url(source) + "?format=csv",
        ]
        subprocess.run(curl, check=True, timeout=60, capture_output=True)
        expected = source.answer(IOS, body, quirk="time-suffix")[2]
    status, headers = parse_curl_headers((tmp_path / "answer.headers").read_text())
    assert status == 200
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    command = [
        *RECORD,
        str(tmp_path / "cases" / "curl"),
        "--request",
        str(tmp_path / "request.json"),
        "--headers",
        str(tmp_path / "answer.headers"),
        "--body",
        str(tmp_path / "answer.body"),
    ]
    subprocess.run(command, check=True, timeout=60, capture_output=True)
    with running_sandbox(today=TODAY, replay_dir=tmp_path / "cases") as replaying:
        assert post(replaying, body).content == expected
        assert post(replaying, base_body()).content != expected  # another body: simulated


def test_save_case_and_curl_header_dumps(tmp_path: Path) -> None:
    dump = "HTTP/1.1 100 Continue\r\n\r\nHTTP/2 429\r\nretry-after: 30\r\ndate: x\r\n\r\n"
    assert parse_curl_headers(dump) == (429, {"retry-after": "30", "date": "x"})
    with pytest.raises(ValueError):
        parse_curl_headers("garbage\n")
    folder = save_case(
        tmp_path / "c", status=429, headers={"retry-after": "30", "date": "x"}, body=b"{}"
    )
    meta = json.loads((folder / "response.meta.json").read_text())
    assert meta == {"status": 429, "headers": {"retry-after": "30"}}
    with running_sandbox(today=TODAY, replay_dir=tmp_path) as server:
        response = post(server)
        assert (response.status_code, response.headers["Retry-After"]) == (429, "30")
