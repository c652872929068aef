"""Fixed facts of the synthetic account: apps, dimensions, curves and campaign trees.

Every number derives from the seed through ``random.Random`` instances seeded with
SHA-256 digests (never Python's salted ``hash()``), so two runs, two processes and two
query windows always see the same cohort with the same figures.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from itertools import accumulate

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
#: Retention-like decay curves ``(q + 1) ** -b``, 1.0 on cohort day 0.
DECAY: tuple[tuple[float, ...], ...] = tuple(
    tuple((q + 1) ** -b for q in range(_PERIODS)) for b in _BETAS
)
#: Returning users up to day q: running sums of ``DECAY`` without day 0 (nobody "comes
#: back" on the day of install), so day q adds ``DECAY[d][q]``.
RETURNED: tuple[tuple[float, ...], ...] = tuple(
    tuple(accumulate((0.0, *curve[1:]))) for curve in DECAY
)
#: Repeat activity (sessions or events beyond a user's first) up to day q: running
#: sums of ``DECAY``, day 0 included.
REPEATS: tuple[tuple[float, ...], ...] = tuple(tuple(accumulate(curve)) for curve in DECAY)
#: The curve tables by name (every one never decreasing: all series are cumulative).
CURVES: dict[str, tuple[tuple[float, ...], ...]] = {
    "growth": GROWTH,
    "returned": RETURNED,
    "repeats": REPEATS,
}


@dataclass(frozen=True)
class Quality:
    """How the users of one media source behave: the sandbox's sources differ visibly.

    Retention on day q (q >= 1) is about ``returning * (q + 1) ** -b`` of the cohort,
    with ``b`` from the ``DECAY`` curves ``decay[0] .. decay[0] + decay[1] - 1``;
    ``engagement`` scales in-app event conversion, ``payer`` in-app purchases, ``ads``
    ad impressions per user and ``churn`` uninstalls.
    """

    decay: tuple[int, int]
    returning: tuple[float, float]
    engagement: float
    payer: float
    ads: float
    churn: float


#: Organic users (no cost) by platform: the best retention and engagement.
ORGANIC_QUALITY: dict[str, Quality] = {
    "ios": Quality((0, 3), (0.76, 0.88), 1.3, 1.2, 1.0, 0.8),
    "android": Quality((0, 3), (0.72, 0.84), 1.3, 0.6, 1.0, 0.85),
}
#: Media sources per platform: (pid, cost per install in cents, channels, has site ids,
#: quality). High-intent search installs retain and pay best; ad networks are cheap,
#: churn fast and earn mostly (early) ad revenue.
_MEDIA_SOURCES: dict[str, tuple[tuple[str, int, tuple[str, ...], bool, Quality], ...]] = {
    "ios": (
        (
            "Facebook Ads",
            260,
            ("Facebook", "Instagram"),
            False,
            Quality((2, 3), (0.64, 0.78), 1.0, 1.1, 1.0, 1.0),
        ),
        (
            "googleadwords_int",
            310,
            ("ACI_Search", "ACI_Youtube", "ACI_Display"),
            False,
            Quality((3, 3), (0.62, 0.76), 0.95, 1.0, 1.0, 1.0),
        ),
        (
            "tiktokglobal_int",
            180,
            ("TikTok", "Pangle"),
            True,
            Quality((3, 3), (0.56, 0.69), 0.75, 0.35, 1.0, 1.15),
        ),
        ("Apple Search Ads", 420, ("",), False, Quality((1, 3), (0.68, 0.82), 1.2, 1.9, 1.0, 0.9)),
        ("unityads_int", 140, ("",), True, Quality((4, 3), (0.5, 0.64), 0.6, 0.2, 2.5, 1.25)),
    ),
    "android": (
        (
            "Facebook Ads",
            150,
            ("Facebook", "Instagram", "Audience Network"),
            False,
            Quality((2, 3), (0.6, 0.74), 1.0, 0.55, 0.9, 1.0),
        ),
        (
            "googleadwords_int",
            170,
            ("ACI_Search", "ACI_Youtube", "ACI_Play"),
            False,
            Quality((2, 3), (0.62, 0.76), 1.05, 0.6, 0.9, 0.95),
        ),
        (
            "tiktokglobal_int",
            110,
            ("TikTok", "Pangle"),
            True,
            Quality((3, 3), (0.54, 0.66), 0.75, 0.2, 0.9, 1.15),
        ),
        ("unityads_int", 90, ("",), True, Quality((4, 3), (0.48, 0.62), 0.6, 0.1, 2.2, 1.25)),
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
    #: The users' behaviour, by profile (its media source's ``Quality``).
    quality: tuple[Quality, ...]
    ua: list[int]
    rt: list[int]
    organic: tuple[int, ...]


def app_profiles(app: App, seed: int) -> AppProfiles:
    """Build the app's fixed campaign/adset/ad tree and every profile under it."""
    rng = random.Random(stable_seed(seed, "tree", app.app_id))
    values: list[Profile] = []
    cpis: list[int] = []
    qualities: list[Quality] = []
    ua: list[int] = []
    rt: list[int] = []
    for pid, cpi, channels, has_sites, quality in _MEDIA_SOURCES[app.platform]:
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
                            qualities.append(quality)
    organic: list[int] = []
    for geo in GEOS:
        organic.append(len(values))
        blank = dict.fromkeys(CELL_DIMENSIONS, "")
        blank.update(pid=ORGANIC, geo=geo, cohort_type="user_acquisition")
        values.append(tuple(blank.values()))
        cpis.append(0)
        qualities.append(ORGANIC_QUALITY[app.platform])
    return AppProfiles(tuple(values), tuple(cpis), tuple(qualities), ua, rt, tuple(organic))
