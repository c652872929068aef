"""Per-cell integer series and their sums over groups of cells, without a loop per value.

A cell's value of a *term* on cohort day q is ``base + int(span * curve[q] + phase)``,
times a whole ``weight`` (cents per event) for revenue, where ``curve`` is one of the
shared tables of ``sandbox.catalog.CURVES`` and ``phase`` a fixed offset in (0, 1) of
that cell and term. Every term is cumulative (never decreasing in q); on-day values
are differences of consecutive days. The phase spreads a small cell's whole-number
steps over the days instead of cutting every fraction: truncating ``span * curve[q]``
alone would turn a tail of 0.3 expected returning users per cell into 0 in every cell.

The integer part must be taken per cell before summing, or the numbers would change,
so the arithmetic runs as C loops (``map``) over every (cell, day): about 50 ns each
instead of the microsecond a Python loop costs. Terms whose values are mostly small
(counts of a few events per cell) skip even that: a cell's row of values depends only
on (span, curve, phase, days), so small spans are looked up in a memo.

A KPI's series are sums of terms (``sandbox.cells`` explains the three of an
activity): the on-day unique users are first-timers plus returning users, the counts
those plus repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import chain, compress, pairwise, repeat
from math import trunc
from operator import add, and_, floordiv, ge, is_, itemgetter, lt, mul, or_, sub

from tap_appsflyer_cohort.sandbox.catalog import CURVES
from tap_appsflyer_cohort.sandbox.cells import PHASES, DayCells, EventColumns

Number = int | float


@dataclass(frozen=True)
class TermColumns:
    """One term's per-cell parameters, one entry per cell (all of a day, or a selection).

    ``phases`` are levels 0 .. PHASES - 1 (the offset is ``(level + 0.5) / PHASES``);
    ``bases`` and ``weights`` are None for terms without (0 and 1 in every cell).
    """

    spans: Sequence[int]
    curves: Sequence[int]
    phases: Sequence[int]
    bases: Sequence[int] | None = None
    weights: Sequence[int] | None = None

    def pick(self, order: Sequence[int]) -> TermColumns:
        """The columns of cells ``order``, in that order."""
        # itemgetter of one index returns the value, not a tuple (and needs one index)
        pick_all = itemgetter(*order) if len(order) > 1 else lambda c: [c[i] for i in order]

        def getter(column: Sequence[int]) -> Sequence[int]:
            return pick_all(column)

        def take(column: Sequence[int] | None) -> Sequence[int] | None:
            return None if column is None else getter(column)

        return TermColumns(
            getter(self.spans),
            getter(self.curves),
            getter(self.phases),
            take(self.bases),
            take(self.weights),
        )


@dataclass(frozen=True)
class Term:
    """One summable, never decreasing integer series of every cell.

    ``table`` names the curve table (``catalog.CURVES``). ``small`` terms have mostly
    small spans (see the module docstring); their rows are memoised.
    """

    name: str
    small: bool
    table: str
    columns: Callable[[DayCells], TermColumns]


#: Sessions: first-timers (the cumulative unique users), returning users, repeats.
ACTIVE = Term(
    "active",
    True,
    "growth",
    lambda c: TermColumns(c.active_span, c.active_curve, c.active_phase, c.active_base),
)
ACTIVE_RETURNED = Term(
    "active_returned",
    True,
    "returned",
    lambda c: TermColumns(c.active_returning, c.active_decay, c.returning_phase),
)
SESSION_REPEATS = Term(
    "session_repeats",
    True,
    "repeats",
    lambda c: TermColumns(c.active_repeats, c.active_decay, c.repeats_phase),
)
UNINSTALLS = Term(
    "uninstalls",
    True,
    "growth",
    lambda c: TermColumns(c.uninstalls_span, c.uninstalls_curve, c.uninstalls_phase),
)
#: Revenue events (purchases, ad impressions) and their cents, by revenue type.
REVENUE_COUNTS = {
    "regular": Term(
        "regular_count",
        True,
        "growth",
        lambda c: TermColumns(c.regular_span, c.regular_curve, c.regular_phase),
    ),
    "ad_monetization": Term(
        "ads_count",
        False,
        "growth",
        lambda c: TermColumns(c.ads_span, c.ads_curve, c.ads_phase),
    ),
}
REVENUE_CENTS = {
    "regular": Term(
        "regular_cents",
        True,
        "growth",
        lambda c: TermColumns(
            c.regular_span, c.regular_curve, c.regular_phase, weights=c.regular_price
        ),
    ),
    "ad_monetization": Term(
        "ads_cents",
        False,
        "growth",
        lambda c: TermColumns(c.ads_span, c.ads_curve, c.ads_phase, weights=c.ads_price),
    ),
}


@dataclass(frozen=True)
class EventTerms:
    """The terms of one in-app event (``sandbox.cells``).

    Its first-timers (converters), returns and repeats, and the cents of each.
    """

    converters: Term
    returned: Term
    repeats: Term
    cents: tuple[Term, Term, Term]

    @property
    def counts(self) -> tuple[Term, Term, Term]:
        """The terms whose sum is the event count."""
        return (self.converters, self.returned, self.repeats)


#: An event's parts: (name, table, its columns without weights).
_EVENT_PARTS: tuple[tuple[str, str, Callable[[EventColumns], TermColumns]], ...] = (
    ("converters", "growth", lambda e: TermColumns(e.span, e.curve, e.phase, e.base)),
    ("returned", "returned", lambda e: TermColumns(e.returning, e.decay, e.returning_phase)),
    ("repeats", "repeats", lambda e: TermColumns(e.repeats, e.decay, e.repeats_phase)),
)


def event_terms(name: str, kind: str) -> EventTerms:
    """The terms of an in-app event, named after it (the sums cache keys on names)."""

    def term(part: str, table: str, pick: Callable[[EventColumns], TermColumns]) -> Term:
        def columns(cells: DayCells) -> TermColumns:
            return pick(cells.event(name, kind))

        return Term(f"event:{name}:{part}", True, table, columns)

    def cents(part: str, table: str, pick: Callable[[EventColumns], TermColumns]) -> Term:
        def columns(cells: DayCells) -> TermColumns:
            event = cells.event(name, kind)
            return replace(pick(event), weights=event.price)

        return Term(f"event:{name}:{part}_cents", True, table, columns)

    converters, returned, repeats = (term(*part) for part in _EVENT_PARTS)
    first, second, third = (cents(*part) for part in _EVENT_PARTS)
    return EventTerms(converters, returned, repeats, (first, second, third))


#: The offset of each phase level: the middle of its 1 / PHASES slice of (0, 1).
_OFFSETS = tuple((level + 0.5) / PHASES for level in range(PHASES))


@lru_cache(maxsize=256)
def _curve_points(table: str, points: tuple[int, ...]) -> tuple[tuple[float, ...], ...]:
    """Each curve's values on ``points``: one tuple per curve index of the table."""
    return tuple(tuple(curve[q] for q in points) for curve in CURVES[table])


def _cell_values(term: Term, columns: TermColumns, points: tuple[int, ...]) -> list[int]:
    """``int(span * curve[q] + phase)`` for every cell, point after point (cell-major, flat).

    Spans are made floats: ``float(s) * x`` is ``s * x`` bit for bit (the int is
    converted exactly either way) and a float-by-float product is faster.
    """
    width = len(points)
    on_points = _curve_points(term.table, points)
    products = map(
        mul,
        chain.from_iterable(map(repeat, map(float, columns.spans), repeat(width))),
        chain.from_iterable(map(on_points.__getitem__, columns.curves)),
    )
    offsets = chain.from_iterable(
        map(repeat, map(_OFFSETS.__getitem__, columns.phases), repeat(width))
    )
    return list(map(trunc, map(add, products, offsets)))


#: Spans below this have their values memoised per (span, curve, phase, points): most
#: counts of a cell (uninstalls, purchases, converters, regular revenue) are small.
SMALL_SPAN = 64


@lru_cache(maxsize=64)
def _small_rows(table: str, points: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """Memo, filled lazily: ``span << 8 | curve << 4 | phase`` -> row of values."""
    return {}


def _memo_keys(columns: TermColumns) -> Iterator[int]:
    """Each cell's memo key (curves and phase levels are below 16)."""
    shifted = map(or_, map(mul, columns.spans, repeat(256)), map(mul, columns.curves, repeat(16)))
    return map(or_, shifted, columns.phases)


def cell_rows(
    term: Term, columns: TermColumns, points: tuple[int, ...]
) -> list[Sequence[int] | None]:
    """Each cell's values ``int(span * curve[q] + phase)`` on ``points``, a row per cell.

    Bases and weights are not applied. Rows of ``small`` terms with a zero span (all
    zeros) are None.
    """
    if not term.small:
        return list(_computed_rows(term, columns, points))
    spans = columns.spans
    memo = _small_rows(term.table, points)
    rows: list[Sequence[int] | None] = list(map(memo.get, _memo_keys(columns)))
    unknown = map(is_, rows, repeat(None))
    small = map(lt, spans, repeat(SMALL_SPAN))
    on_points = _curve_points(term.table, points)
    for i in compress(range(len(rows)), map(and_, unknown, small)):
        span, curve, phase = spans[i], columns.curves[i], columns.phases[i]
        if span:  # zero spans stay None: floor(phase) is 0
            products = map(mul, repeat(float(span)), on_points[curve])
            values = tuple(map(trunc, map(add, products, repeat(_OFFSETS[phase]))))
            rows[i] = memo[span << 8 | curve << 4 | phase] = values
    left = list(compress(range(len(spans)), map(ge, spans, repeat(SMALL_SPAN))))
    if left:
        found = _computed_rows(term, columns.pick(left), points)
        for i, row in zip(left, found, strict=True):
            rows[i] = row
    return rows


def _computed_rows(
    term: Term, columns: TermColumns, points: tuple[int, ...]
) -> Iterator[tuple[int, ...]]:
    """Each cell's row, computed product by product."""
    values = _cell_values(term, columns, points)
    return zip(*[iter(values)] * len(points), strict=True)


def point_sums(
    term: Term, columns: TermColumns, points: tuple[int, ...], starts: Sequence[int]
) -> list[list[int]]:
    """Per point, per group: the sum of ``weight * int(span * curve[q] + phase)``.

    Bases are summed apart (``base_sums``). Cells come grouped: group g is cells
    ``starts[g]`` to ``starts[g + 1]``.
    """
    if len(starts) < 2:
        return [[] for _ in points]  # no groups
    rows = cell_rows(term, columns, points)
    weights = columns.weights
    if weights is not None:
        for i in compress(range(len(rows)), rows):  # the rows that are not None
            rows[i] = tuple(map(mul, rows[i], repeat(weights[i])))  # type: ignore[arg-type]
    zero = [0] * len(points)
    by_group: list[Sequence[int]] = []
    for first, end in pairwise(starts):
        members = list(filter(None, rows[first:end]))  # rows of zeros are None
        if len(members) > 1:
            by_group.append(list(map(sum, zip(*members, strict=True))))
        else:
            by_group.append(members[0] if members else zero)
    return [list(column) for column in zip(*by_group, strict=True)]


def base_sums(columns: TermColumns, starts: Sequence[int]) -> list[int] | None:
    """Per group: the sum of ``weight * base``, or None for a term without bases."""
    if columns.bases is None:
        return None
    bases: Sequence[int] = columns.bases
    if columns.weights is not None:
        bases = list(map(mul, bases, columns.weights))
    return [sum(bases[first:end]) for first, end in pairwise(starts)]


def half_sums(term: Term, columns: TermColumns, elapsed: int, starts: Sequence[int]) -> list[int]:
    """Per group: the partial-data value of the day ``elapsed`` (today), which counts half.

    For one cell: ``weight * (before + (today - before) // 2)`` with ``before`` the value
    through yesterday (0 for a cohort of today) and ``today`` the value through today.
    """
    count = len(columns.spans)
    zeros = [0] * count
    base = columns.bases if columns.bases is not None else zeros
    if elapsed > 0:
        pairs = _cell_values(term, columns, (elapsed - 1, elapsed))
        before = list(map(add, base, pairs[0::2]))
        today = list(map(add, base, pairs[1::2]))
    else:
        before = zeros
        today = list(map(add, base, _cell_values(term, columns, (elapsed,))))
    halves = list(map(add, before, map(floordiv, map(sub, today, before), repeat(2))))
    if columns.weights is not None:
        halves = list(map(mul, halves, columns.weights))
    return [sum(halves[first:end]) for first, end in pairwise(starts)]
