"""The sandbox's fast paths give exactly what the plain code they replace would give.

Cell draws replay ``random.Random``'s methods on its C primitives, and group sums use
memos and C loops; each is checked here against the straightforward version.
"""

from __future__ import annotations

import random
from datetime import date
from itertools import pairwise
from typing import Any

import pytest

from tap_appsflyer_cohort.sandbox.catalog import APPS, DECAY, GROWTH, app_profiles, stable_seed
from tap_appsflyer_cohort.sandbox.cells import (
    NV_MAGICCONST,
    below,
    draw_cell,
    draw_day,
    event_columns,
)
from tap_appsflyer_cohort.sandbox.groups import DayGroups, WeightedLru
from tap_appsflyer_cohort.sandbox.series import (
    SMALL_SPAN,
    Term,
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
    rng: random.Random, profile: int, cpi_cents: int, organic: bool
) -> tuple[Any, ...]:
    """The original cell draw, written with ``random.Random``'s methods."""
    users = 1 + int(rng.lognormvariate(2.8, 0.9) * (4 if organic else 1))
    cost = 0 if organic else int(users * cpi_cents * rng.uniform(0.6, 1.5))
    active_share = rng.uniform(0.85, 1.0)
    active_base = int(users * active_share)
    regular = (int(users * rng.uniform(0.05, 0.4)), rng.randrange(12), rng.randint(299, 1999))
    ads = (int(users * rng.uniform(2, 30)), rng.randrange(12), rng.randint(1, 4))
    hour = rng.randrange(24)
    seed = rng.getrandbits(64)
    active_decay = rng.randrange(len(DECAY))
    active_span = int((users - active_base) * rng.uniform(0.3, 0.9))
    active_curve = rng.randrange(len(GROWTH))
    sessions = (int(users * rng.uniform(4, 25)), rng.randrange(len(GROWTH)))
    uninstalls = (int(users * rng.uniform(0.2, 0.6)), rng.randrange(len(GROWTH)))
    return (
        profile,
        hour,
        users,
        cost,
        seed,
        active_share,
        active_decay,
        active_span,
        active_curve,
        *sessions,
        *regular,
        *ads,
        *uninstalls,
    )


@pytest.mark.parametrize("seed", [0, 42, 2**63 + 5])
def test_cell_draws_replay_the_random_methods(seed: int) -> None:
    fast, reference = random.Random(seed), random.Random(seed)
    for index in range(3000):
        organic = index % 9 == 0
        cpi = 0 if organic else 90 + index % 400
        assert draw_cell(fast, index, cpi, organic) == _reference_cell(
            reference, index, cpi, organic
        )
    assert fast.random() == reference.random()


def _reference_event(users: int, seed: int, name: str, kind: str) -> tuple[Any, ...]:
    """The original per-cell event parameters, in ``EventColumns`` field order."""
    rng = random.Random(stable_seed(seed, name))
    low, high, per_user = {
        "af_purchase": (0.02, 0.08, 1.6),
        "af_complete_registration": (0.3, 0.6, 1.1),
        "af_level_achieved": (0.2, 0.5, 9.0),
        "start trial auth": (0.05, 0.15, 1.2),
    }.get(kind, (0.05, 0.2, 2.0))
    share = rng.uniform(low, high)
    base = int(users * share)
    ceiling = min(1.0, share * rng.uniform(1.5, 3.0))
    count_span = int(users * ceiling * per_user * rng.uniform(1.0, 3.0))
    cents_span = int(count_span * rng.uniform(199, 1999)) if kind == "af_purchase" else 0
    decay = rng.randrange(len(DECAY))
    converters = (max(0, int(users * ceiling) - base), rng.randrange(len(GROWTH)))
    count_curve = rng.randrange(len(GROWTH))
    cents_curve = rng.randrange(len(GROWTH))
    return (share, decay, base, *converters, count_span, count_curve, cents_span, cents_curve)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("af_purchase", "af_purchase"), ("Start Trial Auth", "start trial auth"), ("x", "x")],
)
def test_event_columns_replay_the_random_methods(name: str, kind: str) -> None:
    app = APPS[0]
    cells = draw_day(app_profiles(app, 42), 42, 1, app.app_id, date(2025, 3, 1))
    columns = event_columns(cells, name, kind)
    fast = list(zip(*(getattr(columns, f) for f in columns.__slots__), strict=True))
    reference = [
        _reference_event(users, seed, name, kind)
        for users, seed in zip(cells.users, cells.seed, strict=True)
    ]
    assert fast == reference


def _no_columns(cells: Any) -> Any:
    raise AssertionError("the kernels take columns directly")


_GROWTH_TERM = Term("growth", False, True, _no_columns)
_PLAIN_TERM = Term("plain", False, False, _no_columns)
_DAILY_TERM = Term("daily", True, True, _no_columns)


def _naive_row(daily: bool, span: float, curve: int, points: tuple[int, ...]) -> list[int]:
    table = DECAY if daily else GROWTH
    return [int(span * table[curve][q]) for q in points]


@pytest.mark.parametrize("term", [_GROWTH_TERM, _PLAIN_TERM, _DAILY_TERM])
def test_cell_rows_and_group_sums_are_the_plain_sums(term: Term) -> None:
    rng = random.Random(3)
    count = 400
    if term.daily:
        spans: list[Any] = [
            rng.choice([0.3, 0.99, 1.0, 7.5]) * rng.random() * 40 for _ in range(count)
        ]
    else:  # zeros, memoised small spans, and spans above the memo's range
        spans = [
            rng.choice([0, 1, 5, SMALL_SPAN - 1, SMALL_SPAN, 5000]) + rng.randrange(3)
            for _ in range(count)
        ]
    curves = [rng.randrange(len(DECAY) if term.daily else len(GROWTH)) for _ in range(count)]
    starts = [0, 1, 2, 50, 51, 300, count]
    for points in [(0,), (0, 1, 2, 30, 180), tuple(range(181)), (179, 180)]:
        naive = [_naive_row(term.daily, s, c, points) for s, c in zip(spans, curves, strict=True)]
        rows = cell_rows(term, spans, curves, points)
        assert [list(row) if row is not None else [0] * len(points) for row in rows] == naive
        expected = [
            [sum(row[j] for row in naive[first:end]) for first, end in pairwise(starts)]
            for j in range(len(points))
        ]
        assert point_sums(term, spans, curves, points, starts) == expected


@pytest.mark.parametrize("elapsed", [0, 1, 7, 180])
def test_half_sums_follow_the_partial_data_rule(elapsed: int) -> None:
    rng = random.Random(elapsed)
    spans = [rng.randrange(0, 3000) for _ in range(60)]
    curves = [rng.randrange(len(GROWTH)) for _ in range(60)]
    bases = [rng.randrange(0, 50) for _ in range(60)]
    starts = [0, 10, 11, 60]
    expected = []
    for first, end in pairwise(starts):
        total = 0
        for span, curve, base in zip(
            spans[first:end], curves[first:end], bases[first:end], strict=True
        ):
            values = GROWTH[curve]
            before = base + int(span * values[elapsed - 1]) if elapsed > 0 else 0
            today = base + int(span * values[elapsed])
            total += before + (today - before) // 2
        expected.append(total)
    assert half_sums(_GROWTH_TERM, spans, curves, bases, elapsed, starts) == expected


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
