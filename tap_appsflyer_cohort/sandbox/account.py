"""The synthetic account: apps, their cohort cells per date, and the caches queries share.

Cells are drawn per (app, date) on demand (``sandbox.cells``) and summed into answers
through ``DayGroups`` (``sandbox.groups``), which remember per-group sums so the next
query over the same days only computes what it has not seen.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from tap_appsflyer_cohort.sandbox.catalog import APPS, App, AppProfiles, app_profiles
from tap_appsflyer_cohort.sandbox.cells import DayCells, draw_day
from tap_appsflyer_cohort.sandbox.groups import (
    ProfileGroups,
    Selection,
    WeightedLru,
    profile_groups,
)

#: (App, date) pairs whose cells are kept: two apps over the 730-day horizon, so a
#: backfill of several reports draws each day once (about 25 KB each at scale 1).
DAY_CELLS_KEPT = 1536
#: Total weight of the kept ``DayGroups`` (about 12 bytes per unit: some 24 MB).
GROUP_SUMS_BUDGET = 2_000_000


class Account:
    """The synthetic account; cohort cells are generated per (app, date) on demand."""

    def __init__(self, seed: int = 42, scale: int = 1) -> None:
        self.seed = seed
        self.scale = max(1, scale)
        self.apps: dict[str, App] = {app.app_id: app for app in APPS}
        self.profiles: dict[str, AppProfiles] = {
            app.app_id: app_profiles(app, seed) for app in APPS
        }
        self.day_cells = lru_cache(maxsize=DAY_CELLS_KEPT)(self._draw_day)
        self.day_groups = WeightedLru(GROUP_SUMS_BUDGET)
        self.profile_groups = lru_cache(maxsize=64)(self._profile_groups)

    def event_kind(self, app: App, kpi: str) -> str | None:
        """Return the canonical kind of an event the app has, or None (all zeros)."""
        if kpi not in app.events:
            return None
        return kpi.lower()

    def _draw_day(self, app_id: str, day: date) -> DayCells:
        return draw_day(self.profiles[app_id], self.seed, self.scale, app_id, day)

    def _profile_groups(
        self, app_id: str, selection: Selection, key_indices: tuple[int, ...]
    ) -> ProfileGroups:
        return profile_groups(self.profiles[app_id].values, selection, key_indices)
