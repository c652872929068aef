"""A deterministic synthetic AppsFlyer account: apps, campaigns and cohort cells.

Every number derives from the seed through ``random.Random`` instances seeded with
SHA-256 digests (never Python's salted ``hash()``), so two runs, two processes and two
query windows always see the same cohort with the same figures.

Cohort series are closed-form: each cumulative series is ``base + int(span * curve[q])``
over a shared, non-decreasing curve, and each daily unique series is
``int(users * share * decay[q])``. That keeps a cell's value on any cohort day an O(1)
lookup, so a 60-day query never has to build 181-day arrays for thousands of cells.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from tap_appsflyer_cohort.contract import MAX_PERIOD

#: Cell dimensions, in the order of ``Cell.dims`` (``date`` and ``cohort_type`` aside).
CELL_DIMENSIONS: tuple[str, ...] = (
    "pid",
    "af_prt",
    "c",
    "af_c_id",
    "af_adset",
    "af_adset_id",
    "af_ad",
    "af_ad_id",
    "af_channel",
    "site_id",
    "af_sub1",
    "af_keywords",
    "geo",
    "attributed_touch_type",
)
DIMENSION_INDEX: dict[str, int] = {name: i for i, name in enumerate(CELL_DIMENSIONS)}

GEOS: tuple[str, ...] = ("US", "GB", "DE", "JP", "BR", "IN", "FR")
TOUCH_TYPES: tuple[str, ...] = ("click", "impression")
ORGANIC = "Organic"
COMMON_EVENTS: tuple[str, ...] = ("af_purchase", "af_complete_registration", "af_level_achieved")
#: The only event whose ``sum`` (revenue) is not zero.
REVENUE_EVENT = "af_purchase"

_PERIODS = MAX_PERIOD + 1
_GAMMAS = (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)
_BETAS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)
#: Concave growth curves from ``1/181 ** g`` up to exactly 1.0 on cohort day 180.
GROWTH: tuple[tuple[float, ...], ...] = tuple(
    tuple(((q + 1) / _PERIODS) ** g for q in range(_PERIODS)) for g in _GAMMAS
)
#: Retention-like decay curves, 1.0 on cohort day 0.
DECAY: tuple[tuple[float, ...], ...] = tuple(
    tuple((q + 1) ** -b for q in range(_PERIODS)) for b in _BETAS
)

#: Media sources per platform: (pid, cost per install in cents, channels, has site ids).
_MEDIA_SOURCES: dict[str, tuple[tuple[str, int, tuple[str, ...], bool], ...]] = {
    "ios": (
        ("Facebook Ads", 260, ("Facebook", "Instagram"), False),
        ("googleadwords_int", 310, ("ACI_Search", "ACI_Youtube", "ACI_Display"), False),
        ("tiktokglobal_int", 180, ("TikTok", "Pangle"), True),
        ("Apple Search Ads", 420, ("",), False),
        ("unityads_int", 140, ("",), True),
    ),
    "android": (
        ("Facebook Ads", 150, ("Facebook", "Instagram", "Audience Network"), False),
        ("googleadwords_int", 170, ("ACI_Search", "ACI_Youtube", "ACI_Play"), False),
        ("tiktokglobal_int", 110, ("TikTok", "Pangle"), True),
        ("unityads_int", 90, ("",), True),
    ),
}
_AGENCIES = ("mobiquity_agency", "growthwave")
_KEYWORDS = ("puzzle game", "match 3", "free games", "brain teaser", "casual", "offline game")


def stable_seed(*parts: object) -> int:
    """Return a 64-bit seed from ``parts``, identical in every process (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class App:
    """One app of the account."""

    app_id: str
    platform: str
    timezone: str
    currency: str
    #: Units of ``currency`` per USD.
    rate: float
    events: frozenset[str]


APPS: tuple[App, ...] = (
    App(
        "id123456789",
        "ios",
        "America/Los_Angeles",
        "USD",
        1.0,
        frozenset({*COMMON_EVENTS, "Start Trial Auth"}),
    ),
    App(
        "com.example.app",
        "android",
        "Asia/Tokyo",
        "JPY",
        150.0,
        frozenset({*COMMON_EVENTS, "start trial auth"}),
    ),
    App(
        "com.example.game",
        "android",
        "Europe/Berlin",
        "EUR",
        0.92,
        frozenset({*COMMON_EVENTS, "start trial auth"}),
    ),
)


@dataclass(frozen=True, slots=True)
class EventParams:
    """How one event behaves inside one cell (see the module docstring)."""

    unique_share: float
    decay: int
    converters_base: int
    converters_span: int
    converters_curve: int
    count_span: int
    count_curve: int
    cents_span: int
    cents_curve: int


@dataclass(slots=True)
class Cell:
    """One cohort: the finest grain the sandbox knows, summed into every answer."""

    dims: tuple[str, ...]
    cohort_type: str
    hour: int
    users: int
    cost_cents: int
    seed: int
    active_share: float
    active_decay: int
    active_span: int
    active_curve: int
    sessions_span: int
    sessions_curve: int
    revenue: dict[str, tuple[int, int, int]]
    uninstalls_span: int
    uninstalls_curve: int
    _events: dict[str, EventParams] = field(default_factory=dict)

    def event(self, name: str, event_kind: str) -> EventParams:
        """Return (and remember) this cell's parameters for one event kind."""
        params = self._events.get(name)
        if params is None:
            params = _event_params(self, name, event_kind)
            self._events[name] = params
        return params


@dataclass(frozen=True)
class _Ad:
    """A leaf of the campaign tree: everything but geo and touch type."""

    cohort_type: str
    pid: str
    cpi_cents: int
    values: dict[str, str]


def _event_params(cell: Cell, name: str, kind: str) -> EventParams:
    """Draw one event's parameters for ``cell``; ``kind`` is the canonical event name."""
    rng = random.Random(stable_seed(cell.seed, name))
    low, high, per_user = {
        "af_purchase": (0.02, 0.08, 1.6),
        "af_complete_registration": (0.3, 0.6, 1.1),
        "af_level_achieved": (0.2, 0.5, 9.0),
        "start trial auth": (0.05, 0.15, 1.2),
    }.get(kind, (0.05, 0.2, 2.0))
    users = cell.users
    share = rng.uniform(low, high)
    base = int(users * share)
    ceiling = min(1.0, share * rng.uniform(1.5, 3.0))
    count_span = int(users * ceiling * per_user * rng.uniform(1.0, 3.0))
    cents_span = int(count_span * rng.uniform(199, 1999)) if kind == REVENUE_EVENT else 0
    return EventParams(
        unique_share=share,
        decay=rng.randrange(len(DECAY)),
        converters_base=base,
        converters_span=max(0, int(users * ceiling) - base),
        converters_curve=rng.randrange(len(GROWTH)),
        count_span=count_span,
        count_curve=rng.randrange(len(GROWTH)),
        cents_span=cents_span,
        cents_curve=rng.randrange(len(GROWTH)),
    )


class Account:
    """The synthetic account; cohort cells are generated per (app, date) on demand."""

    #: UA cells drawn per app and date at scale 1 (before organic and retargeting).
    UA_CELLS_PER_DAY = 215
    RT_CELLS_PER_DAY = 30

    def __init__(self, seed: int = 42, scale: int = 1) -> None:
        self.seed = seed
        self.scale = max(1, scale)
        self.apps: dict[str, App] = {app.app_id: app for app in APPS}
        self._ads: dict[str, tuple[list[_Ad], list[_Ad]]] = {
            app.app_id: self._campaign_tree(app) for app in APPS
        }
        self.cells = lru_cache(maxsize=512)(self._generate_cells)

    def event_kind(self, app: App, kpi: str) -> str | None:
        """Return the canonical kind of an event the app has, or None (all zeros)."""
        if kpi not in app.events:
            return None
        return kpi.lower()

    def _campaign_tree(self, app: App) -> tuple[list[_Ad], list[_Ad]]:
        """Build the app's fixed campaign/adset/ad structure for UA and retargeting."""
        rng = random.Random(stable_seed(self.seed, "tree", app.app_id))
        ua: list[_Ad] = []
        rt: list[_Ad] = []
        for pid, cpi, channels, has_sites in _MEDIA_SOURCES[app.platform]:
            short = pid.split()[0].split("_")[0].lower()
            for c_index in range(4):
                agency = rng.choice(_AGENCIES) if short in {"tiktokglobal", "unityads"} else ""
                retargeting = c_index == 3
                campaign = f"{'RT' if retargeting else 'UA'}_{short}_{app.platform}_{c_index + 1}"
                c_id = str(rng.randrange(10**11, 10**12))
                for s_index in range(3):
                    adset_id = str(rng.randrange(10**11, 10**12))
                    for a_index in range(3):
                        values = {
                            "pid": pid,
                            "af_prt": agency,
                            "c": campaign,
                            "af_c_id": c_id,
                            "af_adset": f"{campaign}_adset_{s_index + 1}",
                            "af_adset_id": adset_id,
                            "af_ad": f"{campaign}_ad_{s_index + 1}{a_index + 1}",
                            "af_ad_id": str(rng.randrange(10**11, 10**12)),
                            "af_channel": rng.choice(channels),
                            "site_id": f"site_{rng.randrange(1000, 9999)}" if has_sites else "",
                            "af_sub1": rng.choice(("", "", "creative_a", "creative_b")),
                            "af_keywords": (
                                _KEYWORDS[(s_index * 3 + a_index) % len(_KEYWORDS)]
                                if pid == "Apple Search Ads"
                                else ""
                            ),
                        }
                        ad = _Ad(
                            "retargeting" if retargeting else "user_acquisition",
                            pid,
                            cpi,
                            values,
                        )
                        (rt if retargeting else ua).append(ad)
        return ua, rt

    def _generate_cells(self, app_id: str, day: date) -> tuple[Cell, ...]:
        """Generate the cohort cells of one app on one LTV date (cached by the caller)."""
        app = self.apps[app_id]
        rng = random.Random(stable_seed(self.seed, "cells", app_id, day.isoformat()))
        ua, rt = self._ads[app_id]
        cells: list[Cell] = []
        for ads, per_day in ((ua, self.UA_CELLS_PER_DAY), (rt, self.RT_CELLS_PER_DAY)):
            pool = [(ad, geo, touch) for ad in ads for geo in GEOS for touch in TOUCH_TYPES]
            wanted = int(per_day * self.scale * rng.uniform(0.92, 1.08))
            for ad, geo, touch in rng.sample(pool, min(wanted, len(pool))):
                values = {**ad.values, "geo": geo, "attributed_touch_type": touch}
                cells.append(self._cell(rng, app, ad.cohort_type, values, ad.cpi_cents))
        blank = dict.fromkeys(CELL_DIMENSIONS, "")
        for geo in GEOS:
            for _ in range(self.scale):
                values = {**blank, "pid": ORGANIC, "geo": geo}
                cells.append(self._cell(rng, app, "user_acquisition", values, 0, organic=True))
        return tuple(cells)

    def _cell(
        self,
        rng: random.Random,
        app: App,
        cohort_type: str,
        values: dict[str, str],
        cpi_cents: int,
        *,
        organic: bool = False,
    ) -> Cell:
        """Draw one cell's size, cost and series parameters."""
        users = 1 + int(rng.lognormvariate(2.8, 0.9) * (4 if organic else 1))
        cost = 0 if organic else int(users * cpi_cents * rng.uniform(0.6, 1.5))
        active_share = rng.uniform(0.85, 1.0)
        active_base = int(users * active_share)
        revenue = {
            "regular": (
                int(users * rng.uniform(0.05, 0.4)),
                rng.randrange(len(GROWTH)),
                rng.randint(299, 1999),
            ),
            "ad_monetization": (
                int(users * rng.uniform(2, 30)),
                rng.randrange(len(GROWTH)),
                rng.randint(1, 4),
            ),
        }
        return Cell(
            dims=tuple(values[name] for name in CELL_DIMENSIONS),
            cohort_type=cohort_type,
            hour=rng.randrange(24),
            users=users,
            cost_cents=cost,
            seed=rng.getrandbits(64),
            active_share=active_share,
            active_decay=rng.randrange(len(DECAY)),
            active_span=int((users - active_base) * rng.uniform(0.3, 0.9)),
            active_curve=rng.randrange(len(GROWTH)),
            sessions_span=int(users * rng.uniform(4, 25)),
            sessions_curve=rng.randrange(len(GROWTH)),
            revenue=revenue,
            uninstalls_span=int(users * rng.uniform(0.2, 0.6)),
            uninstalls_curve=rng.randrange(len(GROWTH)),
        )
