"""One day's matching cells grouped by a query's groupings, with the sums queries reuse.

A ``DayGroups`` is what every query over that day, that selection (cohort types and
filters) and those groupings shares: the groups, their users and cost, and each
term's per-group sums on each cohort day asked so far. Another KPI, another period
set or another ``min_cohort_size`` only computes what is missing.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from operator import add, sub
from threading import Lock
from typing import Any

from tap_appsflyer_cohort.sandbox.catalog import DIMENSION_INDEX, Profile
from tap_appsflyer_cohort.sandbox.cells import DayCells
from tap_appsflyer_cohort.sandbox.series import (
    Term,
    TermColumns,
    base_sums,
    half_sums,
    point_sums,
)

#: One output series (the sum of its terms), e.g. revenue cents of both revenue types.
Series = tuple[Term, ...]
_COHORT_TYPE = DIMENSION_INDEX["cohort_type"]


@dataclass(frozen=True)
class Selection:
    """Which cells a query covers: cohort types and dimension filters."""

    cohort_types: frozenset[str]
    #: (dimension index, accepted values), sorted by index.
    checks: tuple[tuple[int, frozenset[str]], ...] = ()

    def accepts(self, profile: Profile) -> bool:
        """Tell whether a cell with these dimension values is covered."""
        if profile[_COHORT_TYPE] not in self.cohort_types:
            return False
        return all(profile[index] in allowed for index, allowed in self.checks)


@dataclass
class DayGroups:
    """The groups of one day's selected cells, and the sums computed for them so far."""

    #: Group keys (the grouping dimensions' values, then the hour for hourly queries).
    keys: list[tuple[Any, ...]]
    users: list[int]
    cost_cents: list[int]
    #: Selected cell indices, group by group; group g is ``order[starts[g]:starts[g+1]]``.
    order: list[int]
    starts: list[int]
    _points: dict[str, dict[int, array[int]]] = field(default_factory=dict)
    _bases: dict[str, array[int]] = field(default_factory=dict)
    _halves: dict[tuple[str, int], array[int]] = field(default_factory=dict)
    weight: int = 0

    def point_sums(
        self, term: Term, points: Sequence[int], load: Callable[[], DayCells]
    ) -> dict[int, array[int]]:
        """Per cohort day in ``points``: per-group sums of the term (bases apart)."""
        known = self._points.setdefault(term.name, {})
        missing = tuple(q for q in points if q not in known)
        if missing:
            found = point_sums(term, self._gather(term, load()), missing, self.starts)
            for q, sums in zip(missing, found, strict=True):
                known[q] = array("q", sums)
            self.weight += len(missing) * (len(self.keys) + 8)
        return known

    def base_sums(self, term: Term, load: Callable[[], DayCells]) -> array[int] | None:
        """Per-group sums of a term's (weighted) base, or None when it has none."""
        if term.name not in self._bases:
            sums = base_sums(self._gather(term, load()), self.starts)
            if sums is None:
                return None
            self._bases[term.name] = array("q", sums)
        return self._bases[term.name]

    def half_sums(self, term: Term, elapsed: int, load: Callable[[], DayCells]) -> array[int]:
        """Per-group partial-data value on cohort day ``elapsed`` (today, counted half)."""
        key = (term.name, elapsed)
        if key not in self._halves:
            columns = self._gather(term, load())
            self._halves[key] = array("q", half_sums(term, columns, elapsed, self.starts))
        return self._halves[key]

    def _gather(self, term: Term, cells: DayCells) -> TermColumns:
        """The term's columns for the selected cells, in group order."""
        return term.columns(cells).pick(self.order)

    def _group_totals(self, values: Sequence[int]) -> list[int]:
        return [sum(values[first:end]) for first, end in pairwise(self.starts)]


@dataclass(frozen=True)
class ProfileGroups:
    """An app's profiles (dimension combinations) sorted into a query's groups.

    ``group_of[p]`` is profile p's group, -1 when the selection does not cover it.
    """

    group_of: list[int]
    keys: list[tuple[str, ...]]


def profile_groups(
    profiles: Sequence[Profile], selection: Selection, key_indices: tuple[int, ...]
) -> ProfileGroups:
    """Group an app's profiles by their values at ``key_indices``."""
    number: dict[tuple[str, ...], int] = {}
    group_of = []
    for values in profiles:
        if selection.accepts(values):
            key = tuple(values[i] for i in key_indices)
            group_of.append(number.setdefault(key, len(number)))
        else:
            group_of.append(-1)
    return ProfileGroups(group_of, list(number))


def group_day(cells: DayCells, groups: ProfileGroups, hours: frozenset[int] | None) -> DayGroups:
    """Select a day's cells and group them.

    ``hours`` (hourly queries) keeps the cells of those hours and adds the hour to the
    group key.
    """
    cell_group = list(map(groups.group_of.__getitem__, cells.profile))
    if hours is not None:
        return _group_by_hour(cells, cell_group, groups.keys, hours)
    order = sorted(range(len(cells)), key=cell_group.__getitem__)
    sorted_groups = list(map(cell_group.__getitem__, order))
    skip = bisect_left(sorted_groups, 0)  # cells the selection does not cover
    sizes = Counter(sorted_groups[skip:])
    keys = list(map(groups.keys.__getitem__, sizes))
    return _day_groups(cells, keys, order[skip:], [0, *accumulate(sizes.values())])


def _group_by_hour(
    cells: DayCells,
    cell_group: list[int],
    keys: list[tuple[str, ...]],
    hours: frozenset[int],
) -> DayGroups:
    members: dict[tuple[Any, ...], list[int]] = {}
    for i, (group, hour) in enumerate(zip(cell_group, cells.hour, strict=True)):
        if group >= 0 and hour in hours:
            members.setdefault((*keys[group], hour), []).append(i)
    order = [i for cell_list in members.values() for i in cell_list]
    starts = [0, *accumulate(map(len, members.values()))]
    return _day_groups(cells, list(members), order, starts)


def _day_groups(
    cells: DayCells, keys: list[tuple[Any, ...]], order: list[int], starts: list[int]
) -> DayGroups:
    groups = DayGroups(keys, [], [], order, starts)
    groups.users = groups._group_totals(list(map(cells.users.__getitem__, order)))
    groups.cost_cents = groups._group_totals(list(map(cells.cost_cents.__getitem__, order)))
    groups.weight = 2 * len(order) + 4 * len(keys) + 64
    return groups


def combine(left: Sequence[int], right: Sequence[int]) -> list[int]:
    """Element-wise sum."""
    return list(map(add, left, right))


def difference(left: Sequence[int], right: Sequence[int]) -> list[int]:
    """Element-wise difference."""
    return list(map(sub, left, right))


class WeightedLru:
    """A thread-safe least-recently-used map bounded by the total weight of its values."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._items: OrderedDict[Any, DayGroups] = OrderedDict()
        self._weights: dict[Any, int] = {}
        self._total = 0
        self._lock = Lock()

    def fetch(self, key: Any) -> DayGroups | None:
        """Return the value (now most recently used) or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def store(self, key: Any, value: DayGroups) -> None:
        """Insert or re-weigh ``value``, then evict the least recently used over budget."""
        with self._lock:
            self._total += value.weight - self._weights.get(key, 0)
            self._items[key] = value
            self._weights[key] = value.weight
            self._items.move_to_end(key)
            while self._total > self.budget and len(self._items) > 1:
                old, _ = self._items.popitem(last=False)
                self._total -= self._weights.pop(old)
