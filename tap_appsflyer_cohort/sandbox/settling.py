"""Values that keep changing after a day is complete: cost (and revenue) still settling.

The vendor pulls campaign cost from the networks about every four hours, and networks
restate cost for days; ad revenue can arrive late too. So a cohort date's cost served
on day T can be below its final value although the date is complete.

The model (``settling_days`` = S > 0; S = 0 serves final values at once):

* A cohort date D's cost as served at the server's time ``now`` (in the query's time
  zone) is ``final x share``, with ``share = 1 - s x (1 - k / K) ** 2``: ``k`` counts the
  four-hour pulls since D began, ``K = 6 (S + 1)`` the pulls until it is final, and ``s``
  (0.2-0.5) is a shortfall drawn per (seed, app, D). The share grows at every pull, never
  falls, and is exactly 1 from ``T - D > S`` on (midnight of D + S + 1).
* ``ecpi`` follows from the served cost and ``users``; ``roas`` and ``roi`` are recomputed
  on the served cost from the final ones (so ROAS = revenue / cost still holds, to the
  0.01 the API rounds to).
* With ``settling_revenue`` the revenue KPIs' money (``revenue`` sums, and so ``roas`` and
  ``roi``) settles the same way with a smaller shortfall (0.05-0.2) of its own draw.
  Counts, users and event KPIs never settle.
* An answer without a ``date`` grouping spans several dates: its cost share is the
  cost-weighted share of its dates, its revenue share the revenue-weighted one, computed
  from the same query grouped by date.

It runs on the evaluated table at answer time, so the data model stays the final truth
(``SandboxServer.answer(..., as_of="final")``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from typing import Any

from tap_appsflyer_cohort.sandbox.catalog import stable_seed
from tap_appsflyer_cohort.sandbox.query import Table

PULL_HOURS = 4
COST_SHORTFALL = (0.2, 0.5)
REVENUE_SHORTFALL = (0.05, 0.2)
REVENUE_KPIS = frozenset({"revenue", "roas", "roi"})


@dataclass(frozen=True)
class Settling:
    """What one answer's settling depends on."""

    seed: int
    app_id: str
    settling_days: int
    revenue: bool
    #: The server's "now" in the query's time zone, naive.
    local_now: datetime
    per_user: bool = False

    def share(self, what: str, day: date) -> float:
        """The served share (0-1] of ``what`` ("cost" or "revenue") for cohort date ``day``."""
        if self.settling_days <= 0 or (what == "revenue" and not self.revenue):
            return 1.0
        hours = (self.local_now - datetime.combine(day, time())).total_seconds() / 3600
        pulls = max(0, int(hours // PULL_HOURS))
        final_after = (self.settling_days + 1) * 24 // PULL_HOURS
        if pulls >= final_after:
            return 1.0
        low, high = COST_SHORTFALL if what == "cost" else REVENUE_SHORTFALL
        draw = random.Random(stable_seed(self.seed, "settling", what, self.app_id, day))
        return 1.0 - draw.uniform(low, high) * (1.0 - pulls / final_after) ** 2


def settle(table: Table, settling: Settling, by_date: Callable[[], Table]) -> Table:
    """The table as served now; ``by_date`` gives the same query grouped by date."""
    if settling.settling_days <= 0 or not table.rows:
        return table
    layout = _Layout(table)
    if "date" in table.groupings:
        at = table.groupings.index("date")
        rows = []
        for row in table.rows:
            day = date.fromisoformat(str(row[at])[:10])
            cost_share = settling.share("cost", day)
            revenue_share = settling.share("revenue", day)
            rows.append(layout.served(row, cost_share, [revenue_share] * layout.width, settling))
        return replace(table, rows=rows)
    return replace(table, rows=_settle_spans(table, layout, settling, by_date()))


def _settle_spans(
    table: Table, layout: _Layout, settling: Settling, daily: Table
) -> list[list[Any]]:
    """Rows spanning several dates: weighted shares from the date-grouped table."""
    at = daily.groupings.index("date")
    daily_layout = _Layout(daily)
    cost: defaultdict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
    revenue: defaultdict[tuple[Any, ...], list[list[float]]] = defaultdict(
        lambda: [[0.0, 0.0] for _ in range(layout.width)]
    )  # key -> [final, served] (per KPI column for revenue)
    for row in daily.rows:
        key = tuple(v for i, v in enumerate(row[: len(daily.groupings)]) if i != at)
        day = date.fromisoformat(str(row[at])[:10])
        final_cost = row[daily_layout.cost] or 0.0
        cost[key][0] += final_cost
        cost[key][1] += final_cost * settling.share("cost", day)
        revenue_share = settling.share("revenue", day)
        for j, money in enumerate(daily_layout.revenues(row)):
            revenue[key][j][0] += money
            revenue[key][j][1] += money * revenue_share
    rows = []
    for row in table.rows:
        key = tuple(row[: len(table.groupings)])
        final, served = cost.get(key, (0.0, 0.0))
        cost_share = served / final if final else 1.0
        shares = [s / f if f else 1.0 for f, s in revenue.get(key, [])] or [1.0] * layout.width
        rows.append(layout.served(row, cost_share, shares, settling))
    return rows


class _Layout:
    """Where a table's cost and KPI values are, and how each KPI value follows money."""

    def __init__(self, table: Table) -> None:
        self.users = len(table.groupings)
        self.ecpi = self.users + 1
        self.cost = self.users + 2
        self.kpi = table.kpi
        self.functions = [f for _ in table.periods for f in table.functions]
        self.width = len(self.functions)

    def revenues(self, row: Sequence[Any]) -> list[float]:
        """Each KPI column's final revenue (0 where the column is not money)."""
        cost = row[self.cost] or 0.0
        values = row[self.cost + 1 :]
        if self.kpi == "revenue":
            return [v if f == "sum" else 0.0 for v, f in zip(values, self.functions, strict=True)]
        if self.kpi == "roas":
            return [(v or 0.0) * cost / 100 for v in values]
        if self.kpi == "roi":
            return [((v + 100) * cost / 100) if v is not None else 0.0 for v in values]
        return [0.0] * self.width

    def served(
        self, row: list[Any], cost_share: float, revenue_shares: list[float], settling: Settling
    ) -> list[Any]:
        """One row with its cost at ``cost_share`` and its revenue at ``revenue_shares``."""
        if cost_share == 1.0 and all(s == 1.0 for s in revenue_shares):
            return row
        out = list(row)
        users, cost = row[self.users], row[self.cost]
        served_cost = round(cost * cost_share, 2) if cost else cost
        out[self.cost] = served_cost
        out[self.ecpi] = round(served_cost / users, 2) if served_cost else None
        digits = 4 if settling.per_user else 2
        values = row[self.cost + 1 :]
        for j, (final, function) in enumerate(zip(values, self.functions, strict=True)):
            share = revenue_shares[j]
            value = final
            if final is None:
                continue
            if self.kpi == "revenue" and function == "sum":
                value = round(final * share, digits)
            elif self.kpi == "roas":
                value = round(final * cost * share / served_cost, 2) if served_cost else None
            elif self.kpi == "roi":
                value = (
                    round((final + 100) * cost * share / served_cost - 100, 2)
                    if served_cost
                    else None
                )
            out[self.cost + 1 + j] = value
        return out
