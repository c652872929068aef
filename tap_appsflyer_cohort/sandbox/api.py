"""The API's answer to one well-authenticated call, without HTTP, limits or faults.

Kept apart from the HTTP layer so tests can ask for the exact answer in-process
(``SandboxServer.answer``) and compare it with what came over the wire.
"""

from __future__ import annotations

import json
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
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
from tap_appsflyer_cohort.sandbox.settling import Settling, settle
from tap_appsflyer_cohort.sandbox.validation import (
    Limits,
    Query,
    QueryError,
    parse_body,
    validate,
)

FORMATS = ("csv", "json")
AS_OF = ("now", "final")
APP_NOT_FOUND = "App not found or not enabled for Cohort API"


@dataclass
class Reply:
    """A status, headers and body, plus what the request log needs to know."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    rows: int = 0
    parsed_body: dict[str, Any] | None = None
    #: The CSV header the answer has or would have with rows (what ``header-only`` sends).
    columns: list[str] = field(default_factory=list)


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
        as_of: str = "now",
    ) -> Reply:
        """Answer one authenticated call (checks 4-8 of the contract, in order).

        ``as_of="final"`` gives settling values (``settling_days``) as they will end up.
        """
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
        settling = Settling(
            self.options.seed,
            app_id,
            self.options.settling_days if as_of == "now" else 0,
            self.options.settling_revenue,
            query.local_now,
            query.per_user,
        )
        query = lagging(query, self.options.completeness_lag_days)
        table = settle(self._table(app_id, query), settling, lambda: self._by_date(app_id, query))
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
        reply.columns = sent_columns(table.columns, edit)
        if rows:
            name = attachment_name(query, app)
            reply.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        header_only = self.options.no_data_body == "header"
        if edit or shuffle is not None:
            reply.body = render_csv(
                table, rows, edit=edit, shuffle=shuffle, header_when_empty=header_only
            )
            return reply
        hour = query.local_now.strftime("%F %H")
        body_key = (app_id, _canonical(body), hour, cap, header_only, settling.settling_days)
        cached = self._bodies.fetch(body_key)
        if cached is None:
            cached = render_csv(table, rows, header_when_empty=header_only)
            self._bodies.store(body_key, cached)
        reply.body = cached
        return reply

    def _table(self, app_id: str, query: Query) -> Table:
        """Evaluate, or reuse the table of the same query asked this hour."""
        key = (app_id, _canonical(query.body), query.local_now.strftime("%F %H"))
        table: Table | None = self._tables.fetch(key)
        if table is None:
            with self._evaluating:
                table = self._tables.fetch(key)  # a call that held the lock may have made it
                if table is None:
                    table = evaluate(query, self.account, self.account.apps[app_id])
                    self._tables.store(key, table)
        return table

    def _by_date(self, app_id: str, query: Query) -> Table:
        """The same query grouped by date first, every cohort kept (for settling spans)."""
        body = {**query.body, "groupings": ["date", *query.groupings], "min_cohort_size": 1}
        groupings = ("date", *query.groupings)
        return self._table(
            app_id, replace(query, body=body, groupings=groupings, min_cohort_size=1)
        )


def lagging(query: Query, lag_days: int) -> Query:
    """The query as an API whose complete days run ``lag_days`` behind its clock sees it.

    The vendor: a day's data appears at 00:01 in the app's time zone, so an API a day
    behind is normal. Validation (horizon, hourly window) already ran on the real clock;
    completeness, ``partial_data`` and the cohort dates with data follow the lagging one.
    """
    if lag_days <= 0:
        return query
    return replace(query, local_now=query.local_now - timedelta(days=lag_days))


def sent_columns(columns: list[str], edit: ColumnEdit | None) -> list[str]:
    """The header after a column edit (dropped columns gone, renamed ones renamed)."""
    if not edit:
        return list(columns)
    return [edit.rename.get(c, c) for c in columns if c not in edit.drop]


def _canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, default=str)
