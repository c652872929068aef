"""The cohort cells of one app on one LTV date, drawn fast and stored column by column.

The draws replay ``random.Random``'s own algorithms (``uniform``, ``randrange``,
``randint``, ``lognormvariate``) on its C primitives ``random()`` and ``getrandbits()``,
so the numbers are exactly those of the method calls (``tests/test_sandbox_cells.py``
checks the replay against the methods) without building a dict and an object per cell.

Columns (one compact ``array`` per field, one entry per cell) let a query gather the
spans and curves it needs with ``map``, and keep a day of cells near 25 KB.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from hashlib import sha256
from math import exp, log, sqrt
from typing import Any

from tap_appsflyer_cohort.sandbox.catalog import DECAY, GROWTH, AppProfiles, Profile, stable_seed

#: ``random.NV_MAGICCONST``, as ``random.normalvariate`` computes it.
NV_MAGICCONST = 4 * exp(-0.5) / sqrt(2.0)
#: The one event whose ``sum`` (revenue) is not zero.
REVENUE_EVENT = "af_purchase"
#: (low share, high share, events per converting user) by canonical event name.
_EVENT_SHAPES: dict[str, tuple[float, float, float]] = {
    "af_purchase": (0.02, 0.08, 1.6),
    "af_complete_registration": (0.3, 0.6, 1.1),
    "af_level_achieved": (0.2, 0.5, 9.0),
    "start trial auth": (0.05, 0.15, 1.2),
}
_OTHER_EVENT_SHAPE = (0.05, 0.2, 2.0)


#: ``array`` type codes of the ``EventColumns`` and ``DayCells`` columns, in field order:
#: curve indices, hours and prices are bytes or shorts, seeds unsigned 64-bit, counts
#: and cents 64-bit: about 90 bytes a cell.
_EVENT_TYPES = "dBqqBqBqB"
_CELL_TYPES = "IBqqQdBqBqBqBHqBBqB"
#: Bits ``randrange`` draws per attempt for each bound it is called with here.
_CURVE_BITS = len(GROWTH).bit_length()
_DECAY_BITS = len(DECAY).bit_length()


def below(getrandbits: Callable[[int], int], n: int, k: int) -> int:
    """``rng.randrange(n)`` with ``k = n.bit_length()``: ``_randbelow_with_getrandbits``."""
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r


def lognormal(rng: random.Random, mu: float, sigma: float) -> float:
    """``rng.lognormvariate(mu, sigma)`` (Kinderman-Monahan ``normalvariate``)."""
    draw = rng.random
    while True:
        u1 = draw()
        u2 = 1.0 - draw()
        z = NV_MAGICCONST * (u1 - 0.5) / u2
        if z * z / 4.0 <= -log(u2):
            return exp(mu + z * sigma)


@dataclass(slots=True)
class EventColumns:
    """One event's parameters in every cell of a day (see ``event_columns``)."""

    unique_share: array[float]
    decay: array[int]
    converters_base: array[int]
    converters_span: array[int]
    converters_curve: array[int]
    count_span: array[int]
    count_curve: array[int]
    cents_span: array[int]
    cents_curve: array[int]


@dataclass(slots=True)
class DayCells:
    """Every cell of one (app, date): entry i of each column describes cell i.

    Cumulative series are ``base + int(span * GROWTH[curve][q])``; daily unique series
    are ``int(users * share * DECAY[decay][q])`` (see ``sandbox.series``).
    """

    profiles: tuple[Profile, ...]
    profile: array[int]
    hour: array[int]
    users: array[int]
    cost_cents: array[int]
    seed: array[int]
    active_share: array[float]
    active_decay: array[int]
    active_span: array[int]
    active_curve: array[int]
    sessions_span: array[int]
    sessions_curve: array[int]
    regular_span: array[int]
    regular_curve: array[int]
    regular_price: array[int]
    ads_span: array[int]
    ads_curve: array[int]
    ads_price: array[int]
    uninstalls_span: array[int]
    uninstalls_curve: array[int]
    events: dict[str, EventColumns] = field(default_factory=dict, init=False)

    def __len__(self) -> int:
        """The number of cells."""
        return len(self.users)

    def event(self, name: str, kind: str) -> EventColumns:
        """Return (and remember) one event's columns; ``kind`` is its canonical name."""
        columns = self.events.get(name)
        if columns is None:
            columns = event_columns(self, name, kind)
            self.events[name] = columns
        return columns


def draw_cell(rng: random.Random, profile: int, cpi_cents: int, organic: bool) -> tuple[Any, ...]:
    """Draw one cell, as a row in ``DayCells`` field order.

    The draws and their order are those of the original ``rng.uniform``/``randrange``/
    ``randint``/``getrandbits``/``lognormvariate`` calls: users, cost (paid cells only),
    active share, regular revenue (span, curve, price), ad revenue (span, curve,
    price), hour, seed, active decay, active span and curve, sessions span and curve,
    uninstalls span and curve.
    """
    draw, bits = rng.random, rng.getrandbits
    users = 1 + int(lognormal(rng, 2.8, 0.9) * (4 if organic else 1))
    cost = 0 if organic else int(users * cpi_cents * (0.6 + (1.5 - 0.6) * draw()))
    active_share = 0.85 + (1.0 - 0.85) * draw()
    active_base = int(users * active_share)
    regular_span = int(users * (0.05 + (0.4 - 0.05) * draw()))
    regular_curve = below(bits, len(GROWTH), _CURVE_BITS)
    regular_price = 299 + below(bits, 1701, 11)  # randint(299, 1999)
    ads_span = int(users * (2 + (30 - 2) * draw()))
    ads_curve = below(bits, len(GROWTH), _CURVE_BITS)
    ads_price = 1 + below(bits, 4, 3)  # randint(1, 4)
    hour = below(bits, 24, 5)
    seed = bits(64)
    active_decay = below(bits, len(DECAY), _DECAY_BITS)
    active_span = int((users - active_base) * (0.3 + (0.9 - 0.3) * draw()))
    active_curve = below(bits, len(GROWTH), _CURVE_BITS)
    sessions_span = int(users * (4 + (25 - 4) * draw()))
    sessions_curve = below(bits, len(GROWTH), _CURVE_BITS)
    uninstalls_span = int(users * (0.2 + (0.6 - 0.2) * draw()))
    uninstalls_curve = below(bits, len(GROWTH), _CURVE_BITS)
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
        sessions_span,
        sessions_curve,
        regular_span,
        regular_curve,
        regular_price,
        ads_span,
        ads_curve,
        ads_price,
        uninstalls_span,
        uninstalls_curve,
    )


def event_columns(cells: DayCells, name: str, kind: str) -> EventColumns:
    """Draw one event's parameters for every cell, each from its own seeded generator.

    Seeding (SHA-256 of the cell's seed and the event name, as ``stable_seed`` does,
    then Mersenne Twister initialisation) is most of the cost, so one generator is
    re-seeded per cell.
    """
    low, high, per_user = _EVENT_SHAPES.get(kind, _OTHER_EVENT_SHAPE)
    revenue = kind == REVENUE_EVENT
    suffix = f"\x1f{name}".encode()
    rng = random.Random()
    reseed, draw, bits = rng.seed, rng.random, rng.getrandbits
    rows = []
    for users, seed in zip(cells.users, cells.seed, strict=True):
        reseed(int.from_bytes(sha256(b"%d" % seed + suffix).digest()[:8], "big"))
        share = low + (high - low) * draw()
        base = int(users * share)
        ceiling = min(1.0, share * (1.5 + (3.0 - 1.5) * draw()))
        count_span = int(users * ceiling * per_user * (1.0 + (3.0 - 1.0) * draw()))
        cents_span = int(count_span * (199 + (1999 - 199) * draw())) if revenue else 0
        rows.append(
            (
                share,
                below(bits, len(DECAY), _DECAY_BITS),
                base,
                max(0, int(users * ceiling) - base),
                below(bits, len(GROWTH), _CURVE_BITS),
                count_span,
                below(bits, len(GROWTH), _CURVE_BITS),
                cents_span,
                below(bits, len(GROWTH), _CURVE_BITS),
            )
        )
    return EventColumns(*map(array, _EVENT_TYPES, zip(*rows, strict=True)))


#: Cells drawn per app and date at scale 1 (before organic ones), by cohort type.
UA_CELLS_PER_DAY = 215
RT_CELLS_PER_DAY = 30


def draw_day(profiles: AppProfiles, seed: int, scale: int, app_id: str, day: date) -> DayCells:
    """Draw the cohort cells of one app on one LTV date (the caller caches them)."""
    rng = random.Random(stable_seed(seed, "cells", app_id, day.isoformat()))
    rows = []
    for pool, per_day in ((profiles.ua, UA_CELLS_PER_DAY), (profiles.rt, RT_CELLS_PER_DAY)):
        wanted = int(per_day * scale * rng.uniform(0.92, 1.08))
        for index in rng.sample(pool, min(wanted, len(pool))):
            rows.append(draw_cell(rng, index, profiles.cpi_cents[index], organic=False))
    for index in profiles.organic:
        for _ in range(scale):
            rows.append(draw_cell(rng, index, 0, organic=True))
    return DayCells(profiles.values, *map(array, _CELL_TYPES, zip(*rows, strict=True)))
