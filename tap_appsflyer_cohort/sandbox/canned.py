"""Canned answers of the ``replace`` fault stage: statuses, odd 200s, HTTP-date waits."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from email.utils import formatdate

from tap_appsflyer_cohort.sandbox.api import Reply, error_reply
from tap_appsflyer_cohort.sandbox.faults import HTML_PAGE, Step
from tap_appsflyer_cohort.sandbox.render import CSV_TYPE, JSON_TYPE

#: 422 texts with words ("days", "exceeds") that are not about the window or the row cap.
UNKNOWN_KPI_TEXT = "Invalid value: days_active for key: kpis"
EXCEEDS_TEXT = (
    "Invalid value: 101 for key: filters.geo. The number of values exceeds the maximum of 100"
)
JSON_ERROR_TEXT = "Report generation failed"
#: Default wait of ``429-date``, in seconds.
NEAR_RETRY_SECONDS = 2
_MESSAGES = {"500": "Internal Server Error", "502": "Bad Gateway", "503": "Service Unavailable"}


def canned_reply(step: Step, now: datetime) -> Reply:  # noqa: C901 (one flat branch per step kind)
    """The answer a ``replace`` step gives; ``now`` is the server's (simulated) UTC time.

    HTTP-date ``Retry-After`` values are on the server's clock, as is the ``Date``
    header of every answer, so ``Retry-After - Date`` is the wait the server means.
    """
    kind = step.kind
    if kind in _MESSAGES:
        return error_reply(int(kind), _MESSAGES[kind])
    if kind == "429":
        return error_reply(429, "Too many requests", **{"Retry-After": "1"})
    if kind == "429-bare":
        return error_reply(429, "Too many requests")
    if kind in {"429-date", "429-date-tomorrow"}:
        if kind == "429-date":
            wait = math.ceil(step.number if step.number is not None else NEAR_RETRY_SECONDS)
        else:
            midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time())
            wait = math.ceil((midnight.replace(tzinfo=now.tzinfo) - now).total_seconds())
        stamp = math.floor(now.timestamp())
        return error_reply(
            429,
            "Too many requests",
            Date=formatdate(stamp, usegmt=True),
            **{"Retry-After": formatdate(stamp + max(1, wait), usegmt=True)},
        )
    if kind == "422":
        return error_reply(422, step.argument)
    if kind == "422-unknown-kpi":
        return error_reply(422, UNKNOWN_KPI_TEXT)
    if kind == "422-exceeds":
        return error_reply(422, EXCEEDS_TEXT)
    if kind == "html":
        return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, HTML_PAGE)
    if kind == "empty":
        return Reply(200, {"Content-Type": CSV_TYPE})
    if kind == "json-empty":
        return Reply(200, {"Content-Type": JSON_TYPE}, b"{}")
    if kind == "json-error":
        body = json.dumps({"error": step.argument or JSON_ERROR_TEXT}).encode()
        return Reply(200, {"Content-Type": JSON_TYPE}, body)
    if kind == "reset":
        return Reply(0)
    raise ValueError(f"{kind} is not a replacing step")
