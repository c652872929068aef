"""Per-cell integer series and their sums over groups of cells, without a loop per value.

A cell's value of a *term* on cohort day q is ``int(span * curve[q])`` (plus a ``base``
for cumulative counts of users), where ``curve`` is one of the shared ``GROWTH`` or
``DECAY`` tables. The integer part must be taken per cell before summing, or the
numbers would change, so the products run as C loops (``map``) over every (cell, day):
about 40 ns each instead of the microsecond a Python loop costs. Terms whose values
are mostly small (counts of a few events per cell) skip even that: a cell's row of
values depends only on (span, curve, days), so small spans are looked up in a memo
and daily spans below 1 are all zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, compress, pairwise, repeat
from math import trunc
from operator import add, and_, floordiv, ge, is_, lt, mul, sub

from tap_appsflyer_cohort.sandbox.catalog import DECAY, GROWTH
from tap_appsflyer_cohort.sandbox.cells import DayCells, EventColumns

Number = int | float
#: (spans, curve indices, bases or None), one entry per cell of a day.
TermColumns = tuple[Sequence[Number], Sequence[int], Sequence[int] | None]


@dataclass(frozen=True)
class Term:
    """One summable integer series of every cell.

    ``daily`` terms are daily values (``int(users * share * DECAY[d][q])``); the others
    are cumulative (``base + int(span * GROWTH[g][q])``) and give on-day values as
    differences of consecutive days. ``small`` terms have mostly small values (see the
    module docstring); their rows are memoised or skipped instead of computed.
    """

    name: str
    daily: bool
    small: bool
    columns: Callable[[DayCells], TermColumns]


def _scaled(left: Sequence[int], right: Sequence[Number]) -> list[Number]:
    """Element-wise products (``users * share``, ``span * price``)."""
    return list(map(mul, left, right))


SESSIONS = Term("sessions", False, False, lambda c: (c.sessions_span, c.sessions_curve, None))
ACTIVE = Term(
    "active",
    False,
    True,
    lambda c: (c.active_span, c.active_curve, list(map(int, _scaled(c.users, c.active_share)))),
)
ACTIVE_DAILY = Term(
    "active_daily", True, False, lambda c: (_scaled(c.users, c.active_share), c.active_decay, None)
)
UNINSTALLS = Term(
    "uninstalls", False, True, lambda c: (c.uninstalls_span, c.uninstalls_curve, None)
)
REVENUE_COUNTS = {
    "regular": Term(
        "regular_count", False, True, lambda c: (c.regular_span, c.regular_curve, None)
    ),
    "ad_monetization": Term("ads_count", False, False, lambda c: (c.ads_span, c.ads_curve, None)),
}
REVENUE_CENTS = {
    "regular": Term(
        "regular_cents",
        False,
        False,
        lambda c: (_scaled(c.regular_span, c.regular_price), c.regular_curve, None),
    ),
    "ad_monetization": Term(
        "ads_cents", False, False, lambda c: (_scaled(c.ads_span, c.ads_price), c.ads_curve, None)
    ),
}


def event_terms(name: str, kind: str) -> dict[str, Term]:
    """The terms of an in-app event: count, cents, converters (cumulative), uniques (daily)."""

    def columns(
        pick: Callable[[DayCells, EventColumns], TermColumns],
    ) -> Callable[[DayCells], TermColumns]:
        return lambda cells: pick(cells, cells.event(name, kind))

    return {
        "count": Term(
            f"event:{name}:count",
            False,
            True,
            columns(lambda c, e: (e.count_span, e.count_curve, None)),
        ),
        "cents": Term(
            f"event:{name}:cents",
            False,
            False,
            columns(lambda c, e: (e.cents_span, e.cents_curve, None)),
        ),
        "converters": Term(
            f"event:{name}:converters",
            False,
            True,
            columns(lambda c, e: (e.converters_span, e.converters_curve, e.converters_base)),
        ),
        "uniques": Term(
            f"event:{name}:uniques",
            True,
            True,
            columns(lambda c, e: (_scaled(c.users, e.unique_share), e.decay, None)),
        ),
    }


@lru_cache(maxsize=256)
def _curve_points(daily: bool, points: tuple[int, ...]) -> tuple[tuple[float, ...], ...]:
    """Each curve's values on ``points``: one tuple per curve index."""
    return tuple(tuple(curve[q] for q in points) for curve in (DECAY if daily else GROWTH))


def _cell_values(
    term: Term, spans: Sequence[float], curves: Sequence[int], points: tuple[int, ...]
) -> list[int]:
    """``int(span * curve[q])`` for every cell, point after point (cell-major, flat).

    Spans are floats: ``float(s) * x`` is ``s * x`` bit for bit (the int is converted
    exactly either way) and a float-by-float product is faster.
    """
    width = len(points)
    on_points = _curve_points(term.daily, points)
    products = map(
        mul,
        chain.from_iterable(map(repeat, spans, repeat(width))),
        chain.from_iterable(map(on_points.__getitem__, curves)),
    )
    return list(map(trunc, products))


#: Integer spans below this have their values memoised per (span, curve, points): most
#: counts of a cell (uninstalls, purchases, converters, regular revenue) are small.
SMALL_SPAN = 64


@lru_cache(maxsize=16)
def _small_rows(points: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """Memo, filled lazily: ``span * 16 + curve`` (curve < 16) -> row of values."""
    return {}


def cell_rows(
    term: Term, spans: Sequence[Number], curves: Sequence[int], points: tuple[int, ...]
) -> list[Sequence[int] | None]:
    """Each cell's values ``int(span * curve[q])`` on ``points``, a row per cell.

    Rows of ``small`` terms that are all zeros are None.
    """
    if not term.small:
        return list(_computed_rows(term, spans, curves, points))
    rows: list[Sequence[int] | None]
    if term.daily:
        # A daily span below 1 times a curve value <= 1 stays below 1: all zeros.
        rows = [None] * len(spans)
        left = list(compress(range(len(spans)), map(ge, spans, repeat(1.0))))
    else:  # zero spans stay None; spans from SMALL_SPAN on are computed
        memo = _small_rows(points)
        rows = list(map(memo.get, map(add, map(mul, spans, repeat(16)), curves)))
        unknown = map(is_, rows, repeat(None))
        small = map(lt, spans, repeat(SMALL_SPAN))
        on_points = _curve_points(False, points)
        for i in compress(range(len(rows)), map(and_, unknown, small)):
            span, curve = int(spans[i]), curves[i]
            if span:
                values = map(trunc, map(mul, repeat(float(span)), on_points[curve]))
                rows[i] = memo[span * 16 + curve] = tuple(values)
        left = list(compress(range(len(spans)), map(ge, spans, repeat(SMALL_SPAN))))
    if left:
        pick_span, pick_curve = spans.__getitem__, curves.__getitem__
        found = _computed_rows(
            term, list(map(pick_span, left)), list(map(pick_curve, left)), points
        )
        for i, row in zip(left, found, strict=True):
            rows[i] = row
    return rows


def _computed_rows(
    term: Term, spans: Sequence[Number], curves: Sequence[int], points: tuple[int, ...]
) -> Iterator[tuple[int, ...]]:
    """Each cell's row, computed product by product."""
    values = _cell_values(term, list(map(float, spans)), curves, points)
    return zip(*[iter(values)] * len(points), strict=True)


def point_sums(
    term: Term,
    spans: Sequence[Number],
    curves: Sequence[int],
    points: tuple[int, ...],
    starts: Sequence[int],
) -> list[list[int]]:
    """Per point, per group: the sum of ``int(span * curve[q])`` over the group's cells.

    Cells come grouped: group g is cells ``starts[g]`` to ``starts[g + 1]``.
    """
    if len(starts) < 2:
        return [[] for _ in points]  # no groups
    rows = cell_rows(term, spans, curves, points)
    zero = [0] * len(points)
    by_group: list[Sequence[int]] = []
    for first, end in pairwise(starts):
        members = list(filter(None, rows[first:end]))  # rows of zeros are None
        if len(members) > 1:
            by_group.append(list(map(sum, zip(*members, strict=True))))
        else:
            by_group.append(members[0] if members else zero)
    return [list(column) for column in zip(*by_group, strict=True)]


def half_sums(
    term: Term,
    spans: Sequence[Number],
    curves: Sequence[int],
    bases: Sequence[int] | None,
    elapsed: int,
    starts: Sequence[int],
) -> list[int]:
    """Per group: the partial-data value of the day ``elapsed`` (today), which counts half.

    For one cell: ``before + (today - before) // 2`` with ``before`` the value through
    yesterday (0 for a cohort of today) and ``today`` the value through today.
    """
    count = len(spans)
    zeros = [0] * count
    base = bases if bases is not None else zeros
    if elapsed > 0:
        pairs = _cell_values(term, spans, curves, (elapsed - 1, elapsed))
        before = list(map(add, base, pairs[0::2]))
        today = list(map(add, base, pairs[1::2]))
    else:
        before = zeros
        today = list(map(add, base, _cell_values(term, spans, curves, (elapsed,))))
    halves = list(map(add, before, map(floordiv, map(sub, today, before), repeat(2))))
    return [sum(halves[first:end]) for first, end in pairwise(starts)]
