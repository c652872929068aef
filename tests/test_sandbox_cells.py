"""The sandbox's fast paths give exactly what the plain code they replace would give.

Cell draws replay ``random.Random``'s methods on its C primitives, and group sums use
memos and C loops; each is checked here against the straightforward version.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from itertools import pairwise
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.catalog import (
    APPS,
    CURVES,
    GROWTH,
    Quality,
    app_profiles,
    stable_seed,
)
from tap_appsflyer_cohort.sandbox.cells import (
    NV_MAGICCONST,
    PHASES,
    below,
    draw_cell,
    draw_day,
    event_columns,
)
from tap_appsflyer_cohort.sandbox.groups import DayGroups, WeightedLru
from tap_appsflyer_cohort.sandbox.series import (
    SMALL_SPAN,
    Term,
    TermColumns,
    base_sums,
    cell_rows,
    half_sums,
    point_sums,
)


def test_magic_constant_is_randoms() -> None:
    assert NV_MAGICCONST == random.NV_MAGICCONST  # type: ignore[attr-defined]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 10, 12, 24, 1701, 2**20 + 1])
def test_below_is_randrange(n: int) -> None:
    fast, reference = random.Random(n), random.Random(n)
    drawn = [below(fast.getrandbits, n, n.bit_length()) for _ in range(2000)]
    assert drawn == [reference.randrange(n) for _ in range(2000)]
    assert fast.random() == reference.random()  # the generators stayed in step


def _reference_cell(
    rng: random.Random, profile: int, cpi_cents: int, quality: Quality, organic: bool
) -> tuple[Any, ...]:
    """The cell draw, written with ``random.Random``'s methods."""
    users = 1 + int(rng.lognormvariate(2.8, 0.9) * (4 if organic else 1))
    cost = 0 if organic else int(users * cpi_cents * rng.uniform(0.6, 1.5))
    active_base = int(users * rng.uniform(0.85, 1.0))
    active_span = int((users - active_base) * rng.uniform(0.3, 0.9))
    active_curve = rng.randrange(len(GROWTH))
    returning = active_base * rng.uniform(*quality.returning)
    first, choices = quality.decay
    active_decay = rng.randrange(first, first + choices)
    repeats = returning * rng.uniform(0.3, 3.0)
    regular = (
        int(users * quality.payer * rng.uniform(0.05, 0.4)),
        rng.randrange(2, 10),
        rng.randint(299, 1999),
    )
    ads = (int(users * quality.ads * rng.uniform(2, 30)), rng.randrange(5), rng.randint(1, 4))
    uninstalls = (int(users * quality.churn * rng.uniform(0.2, 0.6)), rng.randrange(len(GROWTH)))
    hour = rng.randrange(24)
    seed = rng.getrandbits(64)
    phases = rng.getrandbits(24)
    phase = [phases >> shift & 15 for shift in range(0, 24, 4)]
    return (
        profile,
        hour,
        users,
        cost,
        seed,
        active_base,
        active_span,
        active_curve,
        phase[0],
        int(returning),
        active_decay,
        phase[1],
        int(repeats),
        phase[2],
        *regular,
        phase[3],
        *ads,
        phase[4],
        *uninstalls,
        phase[5],
    )


@pytest.mark.parametrize("seed", [0, 42, 2**63 + 5])
def test_cell_draws_replay_the_random_methods(seed: int) -> None:
    qualities = app_profiles(APPS[0], 42).quality
    fast, reference = random.Random(seed), random.Random(seed)
    for index in range(3000):
        organic = index % 9 == 0
        cpi = 0 if organic else 90 + index % 400
        quality = qualities[index * 7 % len(qualities)]
        assert draw_cell(fast, index, cpi, quality, organic) == _reference_cell(
            reference, index, cpi, quality, organic
        )
    assert fast.random() == reference.random()


def _reference_event(
    users: int, seed: int, decay: int, engagement: float, name: str, kind: str
) -> tuple[Any, ...]:
    """The per-cell event parameters, in ``EventColumns`` field order."""
    rng = random.Random(stable_seed(seed, name))
    (low, high), back, (per_low, per_high) = {
        "af_purchase": ((0.02, 0.08), (0.1, 0.3), (1.0, 1.6)),
        "af_complete_registration": ((0.3, 0.6), (0.0, 0.03), (1.0, 1.1)),
        "af_level_achieved": ((0.2, 0.5), (0.4, 0.8), (2.0, 6.0)),
        "start trial auth": ((0.05, 0.15), (0.02, 0.08), (1.0, 1.2)),
    }.get(kind, ((0.05, 0.2), (0.1, 0.4), (1.0, 3.0)))
    share = min(0.95, rng.uniform(low, high) * engagement)
    base = int(users * share)
    ceiling = min(1.0, share * rng.uniform(1.5, 3.0))
    returning = base * rng.uniform(*back)
    repeats = returning * rng.uniform(per_low - 1, per_high - 1)
    curve = rng.randrange(len(GROWTH))
    price = rng.randint(199, 1999) if kind == "af_purchase" else 0
    phases = rng.getrandbits(12)
    return (
        base,
        max(0, int(users * ceiling) - base),
        curve,
        phases & 15,
        int(returning),
        decay,
        phases >> 4 & 15,
        int(repeats),
        phases >> 8 & 15,
        price,
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("af_purchase", "af_purchase"),
        ("Start Trial Auth", "start trial auth"),
        ("af_level_achieved", "af_level_achieved"),
        ("x", "x"),
    ],
)
def test_event_columns_replay_the_random_methods(name: str, kind: str) -> None:
    app = APPS[0]
    cells = draw_day(app_profiles(app, 42), 42, 1, app.app_id, date(2025, 3, 1))
    columns = event_columns(cells, name, kind)
    fast = list(zip(*(getattr(columns, f) for f in columns.__slots__), strict=True))
    reference = [
        _reference_event(users, seed, decay, cells.quality[profile].engagement, name, kind)
        for users, seed, decay, profile in zip(
            cells.users, cells.seed, cells.active_decay, cells.profile, strict=True
        )
    ]
    assert fast == reference


def _no_columns(cells: Any) -> Any:
    raise AssertionError("the kernels take columns directly")


_GROWTH_TERM = Term("growth", True, "growth", _no_columns)
_PLAIN_TERM = Term("plain", False, "growth", _no_columns)
_REPEATS_TERM = Term("repeats", True, "repeats", _no_columns)
_RETURNED_TERM = Term("returned", False, "returned", _no_columns)


def _naive_row(table: str, span: int, curve: int, phase: int, points: tuple[int, ...]) -> list[int]:
    return [int(span * CURVES[table][curve][q] + (phase + 0.5) / PHASES) for q in points]


def _random_columns(rng: random.Random, table: str, count: int) -> TermColumns:
    """Zeros, memoised small spans and spans above the memo's range; some weights."""
    spans = [
        rng.choice([0, 1, 5, SMALL_SPAN - 1, SMALL_SPAN, 5000]) + rng.randrange(3)
        for _ in range(count)
    ]
    curves = [rng.randrange(len(CURVES[table])) for _ in range(count)]
    phases = [rng.randrange(PHASES) for _ in range(count)]
    bases = [rng.randrange(0, 50) for _ in range(count)]
    weights = [rng.choice([1, 2, 299, 1999]) for _ in range(count)]
    return TermColumns(spans, curves, phases, bases, weights)


@pytest.mark.parametrize("term", [_GROWTH_TERM, _PLAIN_TERM, _REPEATS_TERM, _RETURNED_TERM])
@pytest.mark.parametrize("weighted", [False, True])
def test_cell_rows_and_group_sums_are_the_plain_sums(term: Term, weighted: bool) -> None:
    count = 400
    columns = _random_columns(random.Random(3), term.table, count)
    if not weighted:
        columns = replace(columns, weights=None)
    weights = columns.weights or [1] * count
    starts = [0, 1, 2, 50, 51, 300, count]
    for points in [(0,), (0, 1, 2, 30, 180), tuple(range(181)), (179, 180)]:
        naive = [
            _naive_row(term.table, span, curve, phase, points)
            for span, curve, phase in zip(
                columns.spans, columns.curves, columns.phases, strict=True
            )
        ]
        rows = cell_rows(term, columns, points)
        assert [list(row) if row is not None else [0] * len(points) for row in rows] == naive
        expected = [
            [
                sum(naive[i][j] * weights[i] for i in range(first, end))
                for first, end in pairwise(starts)
            ]
            for j in range(len(points))
        ]
        assert point_sums(term, columns, points, starts) == expected
        assert point_sums(term, columns.pick(range(count)), points, starts) == expected
    bases = columns.bases
    assert bases is not None
    assert base_sums(columns, starts) == [
        sum(bases[i] * weights[i] for i in range(first, end)) for first, end in pairwise(starts)
    ]


@pytest.mark.parametrize("elapsed", [0, 1, 7, 180])
def test_half_sums_follow_the_partial_data_rule(elapsed: int) -> None:
    columns = _random_columns(random.Random(elapsed), "growth", 60)
    starts = [0, 10, 11, 60]
    expected = []
    for first, end in pairwise(starts):
        total = 0
        for i in range(first, end):
            values = GROWTH[columns.curves[i]]
            offset = (columns.phases[i] + 0.5) / PHASES
            base, span = columns.bases[i], columns.spans[i]  # type: ignore[index]
            before = base + int(span * values[elapsed - 1] + offset) if elapsed > 0 else 0
            today = base + int(span * values[elapsed] + offset)
            total += (before + (today - before) // 2) * columns.weights[i]  # type: ignore[index]
        expected.append(total)
    assert half_sums(_GROWTH_TERM, columns, elapsed, starts) == expected


def test_curve_tables_never_decrease() -> None:
    """Every series is cumulative: on-day values are differences, never negative."""
    for name, table in CURVES.items():
        for curve in table:
            assert list(curve) == sorted(curve), name
            assert curve[0] >= 0
    assert all(curve[0] == 0.0 for curve in CURVES["returned"])  # nobody returns on day 0
    assert all(curve[-1] == 1.0 for curve in CURVES["growth"])  # the span is reached


def test_weighted_lru_evicts_least_recently_used_over_budget() -> None:
    def groups(weight: int) -> DayGroups:
        return DayGroups([], [], [], [], [0], weight=weight)

    cache = WeightedLru(budget=100)
    first, second, third = groups(40), groups(40), groups(40)
    cache.store("a", first)
    cache.store("b", second)
    assert cache.fetch("a") is first  # now "b" is the least recently used
    cache.store("c", third)
    assert (cache.fetch("a"), cache.fetch("b"), cache.fetch("c")) == (first, None, third)
    first.weight = 90  # grew after a query added sums: re-weighed on store
    cache.store("a", first)
    assert (cache.fetch("a"), cache.fetch("c")) == (first, None)
