"""The API's answer to one well-authenticated call, without HTTP, limits or faults.

Kept apart from the HTTP layer so tests can ask for the exact answer in-process
(``SandboxServer.answer``) and compare it with what came over the wire.
"""

from __future__ import annotations

import json
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tap_appsflyer_cohort.sandbox.account import Account
from tap_appsflyer_cohort.sandbox.options import SandboxOptions
from tap_appsflyer_cohort.sandbox.query import Table, evaluate
from tap_appsflyer_cohort.sandbox.render import (
    CSV_TYPE,
    JSON_TYPE,
    ColumnEdit,
    attachment_name,
    render_csv,
    render_json,
)
from tap_appsflyer_cohort.sandbox.validation import (
    Limits,
    Query,
    QueryError,
    parse_body,
    validate,
)

FORMATS = ("csv", "json")
APP_NOT_FOUND = "App not found or not enabled for Cohort API"


@dataclass
class Reply:
    """A status, headers and body, plus what the request log needs to know."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    rows: int = 0
    parsed_body: dict[str, Any] | None = None


def json_reply(status: int, payload: object, **extra: str) -> Reply:
    """Build a JSON answer (errors use the vendor's ``{"error": ..., "expose": false}``)."""
    body = json.dumps(payload).encode()
    return Reply(status, {"Content-Type": JSON_TYPE, **extra}, body)


def error_reply(status: int, message: str, **extra: str) -> Reply:
    """Build a vendor-style error object."""
    return json_reply(status, {"error": message, "expose": False}, **extra)


class _Lru:
    """A tiny thread-safe least-recently-used map (the answers are large; keep few)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def store(self, key: tuple[Any, ...], value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class CohortApi:
    """Validation, evaluation, row cap and rendering, with small answer caches."""

    def __init__(self, account: Account, options: SandboxOptions) -> None:
        self.account = account
        self.options = options
        self._tables = _Lru(16)
        self._bodies = _Lru(32)
        # Evaluations run one at a time. Threads share one core anyway (the GIL), but
        # one at a time the first caller is answered first instead of every caller
        # late, and two calls over the same days (two KPIs of one window) reuse each
        # other's cells instead of drawing them twice.
        self._evaluating = threading.Lock()

    def respond(
        self,
        app_id: str,
        params: dict[str, str],
        raw: bytes | dict[str, Any],
        now: datetime,
        *,
        edit: ColumnEdit | None = None,
        shuffle: random.Random | None = None,
    ) -> Reply:
        """Answer one authenticated call (checks 4-8 of the contract, in order)."""
        for key, value in params.items():
            if key != "format":
                return error_reply(422, str(QueryError(value, key, "a JSON body field")))
        fmt = params.get("format", "csv")
        if fmt not in FORMATS:
            return error_reply(422, str(QueryError(fmt, "format", ", ".join(FORMATS))))
        app = self.account.apps.get(app_id)
        if app is None:
            return error_reply(404, APP_NOT_FOUND)
        body: dict[str, Any] | None = None
        try:
            body = raw if isinstance(raw, dict) else parse_body(raw)
            limits = Limits(self.options.max_range_days, self.options.horizon_days)
            query = validate(body, limits, now, app.timezone)
        except QueryError as error:
            reply = error_reply(422, str(error))
            reply.parsed_body = body
            return reply
        table = self._table(app_id, query)
        rows = table.rows
        cap = self.options.row_cap
        if len(rows) > cap:
            if self.options.over_cap == "error":
                message = (
                    f"Result is too large: {len(rows)} rows exceed the limit of {cap} rows. "
                    "Narrow the query."
                )
                reply = error_reply(422, message)
                reply.parsed_body = body
                return reply
            rows = rows[:cap]
        reply = Reply(200, rows=len(rows), parsed_body=body)
        if fmt == "json":
            reply.headers["Content-Type"] = JSON_TYPE
            reply.body = render_json(table, rows, body, edit=edit)
            return reply
        reply.headers["Content-Type"] = CSV_TYPE
        if rows:
            name = attachment_name(query, app)
            reply.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        header_only = self.options.no_data_body == "header"
        if edit or shuffle is not None:
            reply.body = render_csv(
                table, rows, edit=edit, shuffle=shuffle, header_when_empty=header_only
            )
            return reply
        body_key = (app_id, _canonical(body), query.local_now.strftime("%F %H"), cap, header_only)
        cached = self._bodies.fetch(body_key)
        if cached is None:
            cached = render_csv(table, rows, header_when_empty=header_only)
            self._bodies.store(body_key, cached)
        reply.body = cached
        return reply

    def _table(self, app_id: str, query: Query) -> Table:
        """Evaluate, or reuse the table of the same query asked this hour."""
        key = (app_id, _canonical(query.body), query.local_now.strftime("%F %H"))
        table = self._tables.fetch(key)
        if table is None:
            with self._evaluating:
                table = self._tables.fetch(key)  # a call that held the lock may have made it
                if table is None:
                    table = evaluate(query, self.account, self.account.apps[app_id])
                    self._tables.store(key, table)
        return table


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, default=str)
