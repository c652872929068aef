"""Fixed facts of the synthetic account: apps, dimensions, curves and campaign trees.

Every number derives from the seed through ``random.Random`` instances seeded with
SHA-256 digests (never Python's salted ``hash()``), so two runs, two processes and two
query windows always see the same cohort with the same figures.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from tap_appsflyer_cohort.contract import MAX_PERIOD

#: Cell dimensions, in the order of a profile's values (``date`` aside).
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
    "cohort_type",
)
DIMENSION_INDEX: dict[str, int] = {name: i for i, name in enumerate(CELL_DIMENSIONS)}

GEOS: tuple[str, ...] = ("US", "GB", "DE", "JP", "BR", "IN", "FR")
TOUCH_TYPES: tuple[str, ...] = ("click", "impression")
ORGANIC = "Organic"
COMMON_EVENTS: tuple[str, ...] = ("af_purchase", "af_complete_registration", "af_level_achieved")

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

#: A cell's dimension values, in ``CELL_DIMENSIONS`` order.
Profile = tuple[str, ...]


@dataclass(frozen=True)
class AppProfiles:
    """Every dimension combination a cell of one app can have, drawn once per seed.

    ``ua`` and ``rt`` list profile indices in the order cells are sampled from them
    (ad by ad, then geo, then touch type); ``organic`` has one profile per geo.
    """

    values: tuple[Profile, ...]
    cpi_cents: tuple[int, ...]
    ua: list[int]
    rt: list[int]
    organic: tuple[int, ...]


def app_profiles(app: App, seed: int) -> AppProfiles:
    """Build the app's fixed campaign/adset/ad tree and every profile under it."""
    rng = random.Random(stable_seed(seed, "tree", app.app_id))
    values: list[Profile] = []
    cpis: list[int] = []
    ua: list[int] = []
    rt: list[int] = []
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
                    ad = (
                        pid,
                        agency,
                        campaign,
                        c_id,
                        f"{campaign}_adset_{s_index + 1}",
                        adset_id,
                        f"{campaign}_ad_{s_index + 1}{a_index + 1}",
                        str(rng.randrange(10**11, 10**12)),
                        rng.choice(channels),
                        f"site_{rng.randrange(1000, 9999)}" if has_sites else "",
                        rng.choice(("", "", "creative_a", "creative_b")),
                        (
                            _KEYWORDS[(s_index * 3 + a_index) % len(_KEYWORDS)]
                            if pid == "Apple Search Ads"
                            else ""
                        ),
                    )
                    cohort_type = "retargeting" if retargeting else "user_acquisition"
                    for geo in GEOS:
                        for touch in TOUCH_TYPES:
                            (rt if retargeting else ua).append(len(values))
                            values.append((*ad, geo, touch, cohort_type))
                            cpis.append(cpi)
    organic: list[int] = []
    for geo in GEOS:
        organic.append(len(values))
        blank = dict.fromkeys(CELL_DIMENSIONS, "")
        blank.update(pid=ORGANIC, geo=geo, cohort_type="user_acquisition")
        values.append(tuple(blank.values()))
        cpis.append(0)
    return AppProfiles(tuple(values), tuple(cpis), ua, rt, tuple(organic))
