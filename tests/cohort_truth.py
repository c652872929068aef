"""What the tap should emit, read from the sandbox's own answers (no tap code involved).

Each LTV date is asked alone (``from == to``), without row cap, so the answer holds every
period complete today for that date: exactly the long-layout records a correct sync emits.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from tap_appsflyer_cohort.columns import output_column
from tap_appsflyer_cohort.naming import api_column, kpi_functions
from tap_appsflyer_cohort.sandbox.server import SandboxServer

Key = tuple[Any, ...]


def days(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@contextmanager
def uncapped(server: SandboxServer) -> Iterator[None]:
    """Lift the sandbox's row cap while the truth is read."""
    saved = server.options.row_cap, server.options.over_cap
    server.options.row_cap, server.options.over_cap = 10**9, "truncate"
    try:
        yield
    finally:
        server.options.row_cap, server.options.over_cap = saved


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


def day_rows(
    server: SandboxServer,
    app_id: str,
    report: dict[str, Any],
    day: date,
    kpi: str,
    *,
    as_of: str = "now",
) -> list[dict[str, str]]:
    """The sandbox's CSV rows for one KPI on one LTV date (row cap lifted).

    ``as_of="final"``: values that keep changing after a day (cost) as they end up.
    """
    body: dict[str, Any] = {
        "cohort_type": report.get("cohort_type", "user_acquisition"),
        "from": day.isoformat(),
        "to": day.isoformat(),
        "groupings": ["date", *[g for g in report["groupings"] if g != "date"]],
        "kpis": [kpi],
        "aggregation_type": report.get("aggregation_type", "cumulative"),
        "filters": report.get("filters", {}),
        "min_cohort_size": report.get("min_cohort_size", 1),
        "per_user": report.get("per_user", False),
        "preferred_currency": report.get("preferred_currency", False),
        "preferred_timezone": report.get("preferred_timezone", False),
    }
    if report.get("granularity") == "hour":
        body.update({"granularity": "hour", "from": f"{day} 00:00:00", "to": f"{day} 23:59:59"})
    with uncapped(server):
        status, _, raw = server.answer(app_id, body, as_of=as_of)
    assert status == 200, raw
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


def truth(
    server: SandboxServer,
    app_id: str,
    report: dict[str, Any],
    dates: Iterable[date],
    *,
    as_of: str = "now",
) -> dict[Key, dict[str, Any]]:
    """Long-layout records keyed by (app_id, date, *dimensions, period)."""
    aggregation = report.get("aggregation_type", "cumulative")
    periods: Sequence[int] = report.get("filters", {}).get("period", [*range(31), 60, 90, 180])
    dimensions = [g for g in report["groupings"] if g != "date"]
    expected: dict[Key, dict[str, Any]] = {}
    for day in dates:
        for kpi in report["kpis"]:
            for row in day_rows(server, app_id, report, day, kpi, as_of=as_of):
                head = (app_id, row["date"], *[row[d] for d in dimensions])
                for period in periods:
                    for function in kpi_functions(kpi, aggregation):
                        header = api_column(kpi, function, period)
                        if header not in row:
                            continue
                        record = expected.setdefault(
                            (*head, period),
                            {
                                "users": int(row["users"]),
                                "ecpi": _number(row["ecpi"]),
                                "cost": _number(row["cost"]),
                            },
                        )
                        record[output_column(kpi, function)] = _number(row[header])
    return expected


def emitted(records: Iterable[dict[str, Any]], report: dict[str, Any]) -> dict[Key, dict[str, Any]]:
    """The same view of what the tap emitted (only the columns the truth has)."""
    dimensions = [g for g in report["groupings"] if g != "date"]
    aggregation = report.get("aggregation_type", "cumulative")
    columns = ["users", "ecpi", "cost"] + [
        output_column(kpi, function)
        for kpi in report["kpis"]
        for function in kpi_functions(kpi, aggregation)
    ]
    view: dict[Key, dict[str, Any]] = {}
    for record in records:
        key = (record["app_id"], record["date"], *[record[d] for d in dimensions], record["period"])
        assert key not in view, f"duplicate record {key}"
        view[key] = {c: record[c] for c in columns if c in record}
    return view
