"""The cohort cells of one app on one LTV date, drawn fast and stored column by column.

A cell is the users of one profile (media source, campaign, ..., geo, touch type)
who installed on that date. Each activity of a cell (sessions, or one in-app event)
is three never decreasing integer series (``sandbox.series`` computes them), which
make every invariant of a real account hold by construction, in every cell and so in
every sum of cells:

* first-timers ``U(q) = base + int(span * GROWTH[curve][q] + phase)``: the cumulative
  unique users (``base`` of them on day 0), never more than the cell's users;
* returned ``B(q) = int(returning * RETURNED[decay][q] + phase)``: returns of earlier
  users, so ``B(q) - B(q - 1)`` users come back on day q (none on day 0), never more
  than ``ceil(returning * DECAY[decay][q]) <= base`` (``returning <= base``);
* repeats ``R(q) = int(repeats * REPEATS[decay][q] + phase)``: every session or event
  beyond those.

The on-day unique users are ``U(q) - U(q - 1) + B(q) - B(q - 1)`` (never more than
``U(q)``), the count is ``U + B + R`` (never less than the unique users, on any day or
cumulatively), and on-day counts are differences of cumulative ones. Revenue is a whole
number of cents per event (``price``), so a day without events has no revenue. The
media source's ``Quality`` (``sandbox.catalog``) sets the retention curve, engagement,
spending and churn of its cells.

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

from tap_appsflyer_cohort.sandbox.catalog import (
    GROWTH,
    AppProfiles,
    Profile,
    Quality,
    stable_seed,
)

#: ``random.NV_MAGICCONST``, as ``random.normalvariate`` computes it.
NV_MAGICCONST = 4 * exp(-0.5) / sqrt(2.0)
#: The one event whose ``sum`` (revenue) is not zero.
REVENUE_EVENT = "af_purchase"
#: Canonical event name -> (low, high) share of the cohort converting on day 0,
#: (low, high) share of those coming back to it (scaled by retention), and (low, high)
#: events per returning user and day.
_EVENT_SHAPES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "af_purchase": ((0.02, 0.08), (0.1, 0.3), (1.0, 1.6)),
    "af_complete_registration": ((0.3, 0.6), (0.0, 0.03), (1.0, 1.1)),
    "af_level_achieved": ((0.2, 0.5), (0.4, 0.8), (2.0, 6.0)),
    "start trial auth": ((0.05, 0.15), (0.02, 0.08), (1.0, 1.2)),
}
_OTHER_EVENT_SHAPE = ((0.05, 0.2), (0.1, 0.4), (1.0, 3.0))
#: The highest share of a cohort that does an event at all.
_MAX_EVENT_SHARE = 0.95


#: Phase levels: a term's offset in a cell is ``(level + 0.5) / PHASES`` (``series``).
PHASES = 16
#: ``array`` type codes of the ``EventColumns`` and ``DayCells`` columns, in field order:
#: curve indices, phases and hours are bytes, prices shorts, seeds unsigned 64-bit,
#: counts 64-bit: about 100 bytes a cell.
_EVENT_TYPES = "qqBBqBBqBH"
_CELL_TYPES = "IBqqQqqBBqBBqBqBHBqBBBqBB"
#: Bits ``randrange`` draws per attempt for each bound it is called with here.
_CURVE_BITS = len(GROWTH).bit_length()
#: Regular (in-app purchase) revenue grows along GROWTH curves 2-9; ad revenue comes
#: early, along the steepest five.
_REGULAR_CURVES = (2, 8)
_ADS_CURVES = 5


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
    """One event's parameters in every cell of a day (see ``event_columns``).

    The event's returning users follow the cell's retention curve (``decay``).
    """

    base: array[int]
    span: array[int]
    curve: array[int]
    phase: array[int]
    returning: array[int]
    decay: array[int]
    returning_phase: array[int]
    repeats: array[int]
    repeats_phase: array[int]
    price: array[int]


@dataclass(slots=True)
class DayCells:
    """Every cell of one (app, date): entry i of each column describes cell i.

    ``active_*`` are the sessions' first-timers (base, span, curve, phase), returning
    users (span, decay curve, phase) and repeats (span, phase); see the module
    docstring. ``quality`` is by profile, not by cell.
    """

    profiles: tuple[Profile, ...]
    quality: tuple[Quality, ...]
    profile: array[int]
    hour: array[int]
    users: array[int]
    cost_cents: array[int]
    seed: array[int]
    active_base: array[int]
    active_span: array[int]
    active_curve: array[int]
    active_phase: array[int]
    active_returning: array[int]
    active_decay: array[int]
    returning_phase: array[int]
    active_repeats: array[int]
    repeats_phase: array[int]
    regular_span: array[int]
    regular_curve: array[int]
    regular_price: array[int]
    regular_phase: array[int]
    ads_span: array[int]
    ads_curve: array[int]
    ads_price: array[int]
    ads_phase: array[int]
    uninstalls_span: array[int]
    uninstalls_curve: array[int]
    uninstalls_phase: array[int]
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


def draw_cell(
    rng: random.Random, profile: int, cpi_cents: int, quality: Quality, organic: bool
) -> tuple[Any, ...]:
    """Draw one cell, as a row in ``DayCells`` field order (from ``profile`` on).

    The draws and their order are those of ``rng.uniform``/``randrange``/``randint``/
    ``getrandbits``/``lognormvariate`` calls: users, cost (paid cells only), active
    base share, first-timers' span and curve, returning share, decay curve, sessions
    per returning user, regular revenue (span, curve, price), ad revenue (span, curve,
    price), uninstalls (span, curve), hour, seed, and 24 bits of phases.
    """
    draw, bits = rng.random, rng.getrandbits
    users = 1 + int(lognormal(rng, 2.8, 0.9) * (4 if organic else 1))
    cost = 0 if organic else int(users * cpi_cents * (0.6 + (1.5 - 0.6) * draw()))
    active_base = int(users * (0.85 + (1.0 - 0.85) * draw()))
    active_span = int((users - active_base) * (0.3 + (0.9 - 0.3) * draw()))
    active_curve = below(bits, len(GROWTH), _CURVE_BITS)
    low, high = quality.returning
    returning = active_base * (low + (high - low) * draw())
    first, choices = quality.decay
    active_decay = first + below(bits, choices, choices.bit_length())
    repeats = returning * (0.3 + (3.0 - 0.3) * draw())  # 1.3 to 4 sessions a day
    regular_span = int(users * quality.payer * (0.05 + (0.4 - 0.05) * draw()))
    regular_curve = _REGULAR_CURVES[0] + below(bits, _REGULAR_CURVES[1], 4)
    regular_price = 299 + below(bits, 1701, 11)  # randint(299, 1999)
    ads_span = int(users * quality.ads * (2 + (30 - 2) * draw()))
    ads_curve = below(bits, _ADS_CURVES, 3)
    ads_price = 1 + below(bits, 4, 3)  # randint(1, 4)
    uninstalls_span = int(users * quality.churn * (0.2 + (0.6 - 0.2) * draw()))
    uninstalls_curve = below(bits, len(GROWTH), _CURVE_BITS)
    hour = below(bits, 24, 5)
    seed = bits(64)
    phases = bits(24)
    return (
        profile,
        hour,
        users,
        cost,
        seed,
        active_base,
        active_span,
        active_curve,
        phases & 15,
        int(returning),
        active_decay,
        phases >> 4 & 15,
        int(repeats),
        phases >> 8 & 15,
        regular_span,
        regular_curve,
        regular_price,
        phases >> 12 & 15,
        ads_span,
        ads_curve,
        ads_price,
        phases >> 16 & 15,
        uninstalls_span,
        uninstalls_curve,
        phases >> 20 & 15,
    )


def event_columns(cells: DayCells, name: str, kind: str) -> EventColumns:
    """Draw one event's parameters for every cell, each from its own seeded generator.

    Seeding (SHA-256 of the cell's seed and the event name, as ``stable_seed`` does,
    then Mersenne Twister initialisation) is most of the cost, so one generator is
    re-seeded per cell.
    """
    (low, high), (back_low, back_high), (per_low, per_high) = _EVENT_SHAPES.get(
        kind, _OTHER_EVENT_SHAPE
    )
    revenue = kind == REVENUE_EVENT
    suffix = f"\x1f{name}".encode()
    rng = random.Random()
    reseed, draw, bits = rng.seed, rng.random, rng.getrandbits
    engagement = [cells.quality[profile].engagement for profile in cells.profile]
    rows = []
    for users, seed, decay, scale in zip(
        cells.users, cells.seed, cells.active_decay, engagement, strict=True
    ):
        reseed(int.from_bytes(sha256(b"%d" % seed + suffix).digest()[:8], "big"))
        share = min(_MAX_EVENT_SHARE, (low + (high - low) * draw()) * scale)
        base = int(users * share)
        ceiling = min(1.0, share * (1.5 + (3.0 - 1.5) * draw()))
        returning = base * (back_low + (back_high - back_low) * draw())
        repeats = returning * (per_low - 1 + (per_high - per_low) * draw())
        curve = below(bits, len(GROWTH), _CURVE_BITS)
        price = 199 + below(bits, 1801, 11) if revenue else 0  # randint(199, 1999)
        phases = bits(12)
        rows.append(
            (
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
            cpi, quality = profiles.cpi_cents[index], profiles.quality[index]
            rows.append(draw_cell(rng, index, cpi, quality, organic=False))
    for index in profiles.organic:
        for _ in range(scale):
            rows.append(draw_cell(rng, index, 0, profiles.quality[index], organic=True))
    columns = map(array, _CELL_TYPES, zip(*rows, strict=True))
    return DayCells(profiles.values, profiles.quality, *columns)
