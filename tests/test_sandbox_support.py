"""Helpers shared by the sandbox tests (importable as ``tests.test_sandbox_support``)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import requests

from tap_appsflyer_cohort.contract import API_PATH
from tap_appsflyer_cohort.sandbox.testing import SandboxServer

IOS = "id123456789"
JPY_APP = "com.example.app"
EUR_APP = "com.example.game"
TODAY_TEXT = "2026-06-15"


def base_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "cohort_type": "user_acquisition",
        "from": "2026-05-01",
        "to": "2026-05-05",
        "groupings": ["date", "pid"],
        "kpis": ["af_purchase"],
        "aggregation_type": "cumulative",
    }
    body.update(overrides)
    return body


def url(server: SandboxServer, app: str = IOS) -> str:
    return server.base_url + API_PATH.format(app_id=app)


def post(
    server: SandboxServer,
    body: Any = None,
    *,
    app: str = IOS,
    fmt: str | None = None,
    token: str | None = "valid",
    params: dict[str, str] | None = None,
    session: requests.Session | None = None,
    timeout: float = 10,
) -> requests.Response:
    headers = {"Accept": "application/json"}
    if token == "valid":
        headers["Authorization"] = f"Bearer {server.token}"
    elif token is not None:
        headers["Authorization"] = token
    query = dict(params or {})
    if fmt is not None:
        query["format"] = fmt
    sender = session or requests
    if isinstance(body, (bytes, str)):
        headers["Content-Type"] = "application/json"
        return sender.post(
            url(server, app), data=body, headers=headers, params=query, timeout=timeout
        )
    return sender.post(
        url(server, app),
        json=base_body() if body is None else body,
        headers=headers,
        params=query,
        timeout=timeout,
    )


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def rows_of(server: SandboxServer, app: str = IOS, **overrides: Any) -> list[dict[str, str]]:
    response = post(server, base_body(**overrides), app=app)
    assert response.status_code == 200, response.text
    return read_csv(response.text)[1]


def columns_of(server: SandboxServer, app: str = IOS, **overrides: Any) -> list[str]:
    response = post(server, base_body(**overrides), app=app)
    assert response.status_code == 200, response.text
    return read_csv(response.text)[0]


def periods_in(columns: list[str], stem: str) -> list[int]:
    prefix = f"{stem}_day_"
    return sorted(int(c[len(prefix) :]) for c in columns if c.startswith(prefix))


def dec(value: str) -> Decimal:
    return Decimal(value or "0")


def test_base_body_is_accepted(sandbox: SandboxServer) -> None:
    assert post(sandbox).status_code == 200
