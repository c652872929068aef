"""The sync planner (issue 7): the vendor's rule, coverage, no regression, fewest calls.

Everything the planner must satisfy is computed here again from the definitions, in a
deliberately naive way (sets of periods, an exhaustive search over every possible window),
so a wrong planner cannot agree with itself. The simulation test imports the model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_appsflyer_cohort.contract import MAX_PERIOD
from tap_appsflyer_cohort.ledger import Ledger, LedgerError
from tap_appsflyer_cohort.planner import (
    Window,
    complete_periods,
    dates_to_query,
    plan,
    plan_windows,
    split_window,
)
from tap_appsflyer_cohort.tap import TapAppsFlyerCohort

TODAY = date(2026, 6, 15)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ago(days: int, today: date = TODAY) -> date:
    return today - timedelta(days=days)


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# ---- the model: the vendor rule and the minimum, from the definitions ---------------


def complete_set(day: date, today: date, periods: Iterable[int]) -> frozenset[int]:
    """Periods of cohort ``day`` whose cohort day has fully elapsed by ``today``."""
    return frozenset(p for p in periods if day + timedelta(days=p) < today)


def returned_periods(
    start: date, end: date, today: date, periods: Iterable[int], *, partial: bool
) -> frozenset[int]:
    """Periods a query ``[start, end]`` returns (vendor page; partial: up to today - from)."""
    if partial:
        return frozenset(p for p in periods if p <= min(MAX_PERIOD, (today - start).days))
    return frozenset(p for p in periods if p < (today - end).days)


def window_serves(
    start: date, end: date, day: date, today: date, periods: Iterable[int], *, partial: bool
) -> bool:
    """True when the window gives ``day`` every period complete today and nothing else.

    Without partial data every returned value is complete, so it must equal the set; with
    partial data the tap keeps only ``day + p < today`` itself, so the set must be inside.
    """
    if not start <= day <= end:
        return False
    got = returned_periods(start, end, today, periods, partial=partial)
    complete = complete_set(day, today, periods)
    return complete <= got if partial else got == complete


def serves_all(
    start: date,
    end: date,
    days: Iterable[date],
    today: date,
    periods: Sequence[int],
    max_window_days: int,
    *,
    partial_ok: bool,
) -> bool:
    """True when one window (partial or not, as allowed) serves every one of ``days``."""
    if (end - start).days + 1 > max_window_days:
        return False
    days = list(days)
    return any(
        all(window_serves(start, end, d, today, periods, partial=partial) for d in days)
        for partial in ((False, True) if partial_ok else (False,))
    )


def brute_force_min_windows(
    needed: Sequence[date],
    today: date,
    periods: Sequence[int],
    max_window_days: int,
    *,
    partial_ok: bool,
) -> int:
    """The fewest windows serving ``needed``: every possible window, exhaustive set cover."""
    needed = sorted(set(needed))
    if not needed:
        return 0
    masks: set[int] = set()
    lowest = needed[0] - timedelta(days=max_window_days)
    highest = min(needed[-1] + timedelta(days=max_window_days), today - timedelta(days=1))
    for end in day_range(lowest, highest):
        for length in range(1, max_window_days + 1):
            start = end - timedelta(days=length - 1)
            for partial in (False, True) if partial_ok else (False,):
                mask = 0
                for i, day in enumerate(needed):
                    if window_serves(start, end, day, today, periods, partial=partial):
                        mask |= 1 << i
                masks.add(mask)
    full = (1 << len(needed)) - 1
    distance = {0: 0}
    frontier = [0]
    while frontier:
        following = []
        for covered in frontier:
            for mask in masks:
                union = covered | mask
                if union not in distance:
                    distance[union] = distance[covered] + 1
                    following.append(union)
        frontier = following
    return distance[full]


def min_windows(
    needed: Iterable[date],
    today: date,
    periods: Sequence[int],
    max_window_days: int,
    *,
    partial_ok: bool,
) -> int:
    """The fewest windows by dynamic programming over runs of consecutive needed dates.

    Cross-checked against ``brute_force_min_windows`` below, then used where that is slow.
    """
    days = sorted(set(needed))
    best = [0] + [len(days) + 1] * len(days)
    for j in range(len(days)):
        for i in range(j, -1, -1):
            if (days[j] - days[i]).days + 1 > max_window_days:
                break
            run = days[i : j + 1]
            if serves_all(
                days[i], days[j], run, today, periods, max_window_days, partial_ok=partial_ok
            ):
                best[j + 1] = min(best[j + 1], best[i] + 1)
    return best[-1]


@dataclass(frozen=True)
class Scenario:
    """One planner input, with the ledger also kept as plain sets for the model."""

    periods: tuple[int, ...]
    today: date
    first: date
    last: date
    final_days: frozenset[date]
    elapsed: dict[date, int]
    ledger: Ledger
    max_window_days: int
    restatement_days: int
    partial_fetch: bool
    refresh_incomplete: bool

    def plan(self, ledger: Ledger | None = None) -> list[Window]:
        return plan(
            first_date=self.first,
            last_date=self.last,
            today=self.today,
            periods=self.periods,
            ledger=self.ledger if ledger is None else ledger,
            max_window_days=self.max_window_days,
            restatement_days=self.restatement_days,
            partial_fetch=self.partial_fetch,
            refresh_incomplete=self.refresh_incomplete,
        )


def needed_dates(s: Scenario) -> set[date]:
    """Dates rules 2-3 require today, straight from the issue's wording."""
    max_period = max(s.periods)
    needed = set()
    for day in day_range(s.first, min(s.last, s.today - timedelta(days=1))):
        age = (s.today - day).days
        if day in s.final_days and age > max_period:
            if age <= max_period + s.restatement_days:
                needed.add(day)  # final, but inside the restatement days
            continue
        loaded = frozenset(p for p in s.periods if p < s.elapsed.get(day, 0))
        behind = not complete_set(day, s.today, s.periods) <= loaded
        if behind or (s.refresh_incomplete and age <= max_period):
            needed.add(day)
    return needed


periods_strategy = st.lists(
    st.one_of(st.integers(0, 20), st.integers(0, MAX_PERIOD)), min_size=1, max_size=7, unique=True
).map(lambda values: tuple(sorted(values)))


@st.composite
def scenarios(
    draw: Any, *, restatements: bool = True, refresh: bool = True, max_span: int = 120
) -> Scenario:
    periods = draw(periods_strategy)
    today = TODAY + timedelta(days=draw(st.integers(0, 400)))
    first = ago(draw(st.integers(1, 230)), today)
    last = first + timedelta(days=draw(st.integers(0, max_span)))
    ranges = draw(st.lists(st.tuples(st.integers(-5, 240), st.integers(0, 60)), max_size=4))
    spans = [(ago(age + length, today), ago(age, today)) for age, length in ranges]
    elapsed = {
        ago(age, today): days
        for age, days in draw(
            st.dictionaries(st.integers(-3, 240), st.integers(0, 200), max_size=20)
        ).items()
    }
    state = {
        "version": 1,
        "final": [[a.isoformat(), b.isoformat()] for a, b in spans],
        "elapsed": {d.isoformat(): n for d, n in elapsed.items()},
    }
    return Scenario(
        periods=periods,
        today=today,
        first=first,
        last=last,
        final_days=frozenset(d for a, b in spans for d in day_range(a, b)),
        elapsed=elapsed,
        ledger=Ledger.from_state(state),
        max_window_days=draw(st.one_of(st.integers(1, 10), st.integers(1, 60))),
        restatement_days=draw(st.integers(0, 10)) if restatements else 0,
        partial_fetch=draw(st.booleans()),
        refresh_incomplete=draw(st.booleans()) if refresh else False,
    )


def planned_dates(windows: Sequence[Window]) -> list[date]:
    return [d for w in windows for d in w.dates]


# ---- the vendor rule ---------------------------------------------------------------


def test_complete_periods_are_those_whose_day_has_elapsed() -> None:
    periods = [0, 1, 3, 7, 14]
    assert complete_periods(ago(1), TODAY, periods) == [0]
    assert complete_periods(ago(2), TODAY, periods) == [0, 1]
    assert complete_periods(ago(7), TODAY, periods) == [0, 1, 3]
    assert complete_periods(ago(8), TODAY, periods) == [0, 1, 3, 7]
    assert complete_periods(ago(15), TODAY, periods) == periods
    assert complete_periods(TODAY, TODAY, periods) == []


@pytest.mark.parametrize(
    ("periods", "newer_age", "older_age", "share"),
    [
        # Window ending 1 day ago returns period 0 only; the 2-day-old cohort has 0 and 1.
        ([0, 1, 3, 7, 14], 1, 2, False),
        # Nothing requested in [2, 3): a window ending 2 days ago serves a 3-day-old date.
        ([0, 1, 3, 7, 14], 2, 3, True),
        ([0, 1, 3, 7, 14], 2, 4, False),
        ([0, 1, 3, 7, 14], 4, 7, True),
        ([0, 1, 3, 7, 14], 4, 8, False),
        # Both final: any window serves them.
        ([0, 1, 3, 7, 14], 15, 59, True),
        # The example: a 60-day window ending yesterday returns period 0 only.
        ([0, 7, 30], 1, 60, False),
        ([0, 7, 30], 8, 30, True),
        ([0, 7, 30], 8, 31, False),
    ],
)
def test_dates_share_a_window_iff_no_requested_period_lies_between(
    periods: list[int], newer_age: int, older_age: int, share: bool
) -> None:
    newer, older = ago(newer_age), ago(older_age)
    between = [p for p in periods if newer_age <= p < older_age]
    assert share == (not between)  # the rule, as the vendor page gives it
    windows = plan_windows([older, newer], today=TODAY, periods=periods, max_window_days=60)
    assert len(windows) == (1 if share else 2)
    assert window_serves(older, newer, older, TODAY, periods, partial=False) == share


def test_partial_fetch_shares_any_window_up_to_the_size_limit() -> None:
    needed = [ago(a) for a in (1, 2, 4, 8, 15)]
    windows = plan_windows(
        needed, today=TODAY, periods=[0, 1, 3, 7, 14], max_window_days=60, partial_fetch=True
    )
    assert [(w.start, w.end, w.partial) for w in windows] == [(ago(15), ago(1), True)]
    narrow = plan_windows(
        needed, today=TODAY, periods=[0, 1, 3, 7, 14], max_window_days=7, partial_fetch=True
    )
    assert [len(w.dates) for w in narrow] == [1, 1, 3]


def test_final_dates_are_never_partial_and_share_up_to_the_size_limit() -> None:
    needed = day_range(ago(200), ago(20))
    windows = plan_windows(
        needed, today=TODAY, periods=[0, 1, 3, 7, 14], max_window_days=60, partial_fetch=True
    )
    assert [w.days for w in windows] == [1, 60, 60, 60]
    assert not any(w.partial for w in windows)


# ---- properties of plan() -----------------------------------------------------------


@PROPERTY
@given(scenarios())
def test_plan_covers_exactly_what_is_needed_and_serves_it_fully(s: Scenario) -> None:
    windows = s.plan()
    dates = planned_dates(windows)
    # (a) every date behind what is complete today (and every restatement), nothing else
    assert set(dates) == needed_dates(s)
    assert len(dates) == len(set(dates))
    partial_ok = s.partial_fetch or s.refresh_incomplete
    for i, window in enumerate(windows):
        # (b) the API's range limit
        assert 1 <= window.days <= s.max_window_days
        assert window.dates == tuple(sorted(window.dates))
        assert (window.start, window.end) == (window.dates[0], window.dates[-1])
        assert window.end < s.today
        # (d) oldest first and disjoint
        if i:
            assert windows[i - 1].end < window.start
        # (c) every date gets exactly its complete periods: nothing to regress, nothing
        # incomplete passed off as complete
        assert partial_ok or not window.partial
        for day in window.dates:
            assert window_serves(
                window.start, window.end, day, s.today, s.periods, partial=window.partial
            ), (window, day)


@PROPERTY
@given(scenarios())
def test_dates_to_query_is_what_plan_covers(s: Scenario) -> None:
    dates = dates_to_query(
        first_date=s.first,
        last_date=s.last,
        today=s.today,
        periods=s.periods,
        ledger=s.ledger,
        restatement_days=s.restatement_days,
        refresh_incomplete=s.refresh_incomplete,
    )
    assert dates == sorted(needed_dates(s))
    assert planned_dates(s.plan()) == dates


@st.composite
def small_cases(draw: Any) -> tuple[list[date], tuple[int, ...], int, bool]:
    periods = tuple(sorted(draw(st.lists(st.integers(0, 40), min_size=1, max_size=6, unique=True))))
    ages = draw(st.lists(st.integers(1, 45), min_size=1, max_size=8, unique=True))
    return [ago(a) for a in ages], periods, draw(st.integers(1, 12)), draw(st.booleans())


@PROPERTY
@given(small_cases())
def test_window_count_is_the_brute_force_minimum(
    case: tuple[list[date], tuple[int, ...], int, bool],
) -> None:
    needed, periods, max_window_days, partial = case
    windows = plan_windows(
        needed, today=TODAY, periods=periods, max_window_days=max_window_days, partial_fetch=partial
    )
    fewest = brute_force_min_windows(needed, TODAY, periods, max_window_days, partial_ok=partial)
    assert len(windows) == fewest
    # The faster model the simulation uses agrees with the exhaustive one.
    assert min_windows(needed, TODAY, periods, max_window_days, partial_ok=partial) == fewest


@settings(PROPERTY, max_examples=60)
@given(scenarios(max_span=200))
def test_window_count_is_minimal_on_large_plans(s: Scenario) -> None:
    windows = s.plan()
    partial_ok = s.partial_fetch or s.refresh_incomplete
    fewest = min_windows(
        planned_dates(windows), s.today, s.periods, s.max_window_days, partial_ok=partial_ok
    )
    assert len(windows) == fewest


@PROPERTY
@given(scenarios())
def test_split_halves_still_serve_their_dates(s: Scenario) -> None:
    pending = s.plan()
    while pending:
        window = pending.pop()
        halves = split_window(window)
        if halves is None:
            assert len(window.dates) == 1
            continue
        older, newer = halves
        assert older.dates + newer.dates == window.dates
        assert older.end < newer.start
        assert window.start <= older.start
        assert newer.end <= window.end
        for half in halves:
            assert half.partial == window.partial
            assert (half.start, half.end) == (half.dates[0], half.dates[-1])
            for day in half.dates:
                assert window_serves(
                    half.start, half.end, day, s.today, s.periods, partial=half.partial
                )
        pending.extend(halves)


# ---- the ledger ---------------------------------------------------------------------


def record_windows(
    ledger: Ledger, windows: Iterable[Window], today: date, max_period: int
) -> Ledger:
    for window in windows:
        ledger = ledger.record(window.dates, today, max_period)
    return ledger


@PROPERTY
@given(scenarios(restatements=False, refresh=False))
def test_after_recording_the_plan_the_same_day_nothing_is_due(s: Scenario) -> None:
    ledger = record_windows(s.ledger, s.plan(), s.today, max(s.periods))
    assert s.plan(ledger) == []


@PROPERTY
@given(scenarios(restatements=False, refresh=False), st.data())
def test_a_killed_refresh_resumes_exactly_where_it_stopped(s: Scenario, data: Any) -> None:
    windows = s.plan()
    done = data.draw(st.integers(0, len(windows)))
    ledger = record_windows(s.ledger, windows[:done], s.today, max(s.periods))
    assert s.plan(ledger) == windows[done:]


@PROPERTY
@given(scenarios())
def test_ledger_round_trips_through_json_state(s: Scenario) -> None:
    ledger = record_windows(s.ledger, s.plan(), s.today, max(s.periods))
    for value in (s.ledger, ledger):
        state = json.loads(json.dumps(value.to_state()))
        assert Ledger.from_state(state) == value


def test_record_moves_dates_past_the_horizon_to_final_ranges() -> None:
    ledger = Ledger().record([ago(16), ago(15), ago(14), ago(3)], TODAY, max_period=14)
    assert ledger.final == ((ago(16), ago(15)),)
    assert dict(ledger.elapsed) == {ago(14): 14, ago(3): 3}
    assert ledger.is_final(ago(16))
    assert not ledger.is_final(ago(14))
    assert ledger.loaded_days(ago(3)) == 3
    assert ledger.loaded_days(ago(4)) == 0
    assert ledger.high_water_mark() == ago(3)
    assert Ledger().high_water_mark() is None
    # A later record of the same date never lowers what is loaded.
    assert ledger.record([ago(3)], ago(1), max_period=14).loaded_days(ago(3)) == 3


def test_restatement_rereads_the_last_final_dates_only() -> None:
    ledger = Ledger(final=((ago(40), ago(15)),))
    common = {"first_date": ago(40), "last_date": ago(15), "today": TODAY, "ledger": ledger}
    periods = [0, 1, 3, 7, 14]
    assert dates_to_query(periods=periods, **common) == []
    assert dates_to_query(periods=periods, restatement_days=3, **common) == [
        ago(17),
        ago(16),
        ago(15),
    ]


def test_a_final_claim_inside_the_horizon_is_refreshed_once_not_every_run() -> None:
    # Hand-edited (or a clock that went back): a 5-day-old date cannot be final.
    ledger = Ledger(final=((ago(5), ago(5)),))
    common = {"first_date": ago(5), "last_date": ago(5), "today": TODAY, "max_window_days": 60}
    windows = plan(periods=[0, 1, 3, 7, 14], ledger=ledger, **common)
    assert planned_dates(windows) == [ago(5)]
    ledger = record_windows(ledger, windows, TODAY, max_period=14)
    assert plan(periods=[0, 1, 3, 7, 14], ledger=ledger, **common) == []


@pytest.mark.parametrize(
    "state",
    [
        None,
        [],
        "ledger",
        {},
        {"version": 2, "final": [], "elapsed": {}},
        {"version": "1", "final": [], "elapsed": {}},
        {"version": 1, "final": None},
        {"version": 1, "final": "2026-01-01"},
        {"version": 1, "final": [["2026-01-01"]]},
        {"version": 1, "final": [["2026-01-01", "2026-01-02", "2026-01-03"]]},
        {"version": 1, "final": [["2026-02-01", "2026-01-01"]]},
        {"version": 1, "final": [["2026-01-01", "yesterday"]]},
        {"version": 1, "final": [[20260101, 20260102]]},
        {"version": 1, "final": [], "elapsed": []},
        {"version": 1, "final": [], "elapsed": {"2026-01-01": -1}},
        {"version": 1, "final": [], "elapsed": {"2026-01-01": 1.5}},
        {"version": 1, "final": [], "elapsed": {"2026-01-01": "3"}},
        {"version": 1, "final": [], "elapsed": {"2026-01-01": True}},
        {"version": 1, "final": [], "elapsed": {"2026-13-01": 3}},
    ],
)
def test_malformed_ledgers_raise_ledger_error(state: Any) -> None:
    with pytest.raises(LedgerError):
        Ledger.from_state(state)


def test_overlapping_final_ranges_are_merged() -> None:
    state = {
        "version": 1,
        "final": [
            ["2026-01-05", "2026-01-09"],
            ["2026-01-01", "2026-01-06"],
            ["2026-01-10", "2026-01-10"],
        ],
        "elapsed": {},
    }
    assert Ledger.from_state(state).final == ((date(2026, 1, 1), date(2026, 1, 10)),)


@st.composite
def histories(draw: Any) -> tuple[Scenario, list[date], int]:
    """A tap's past: runs on increasing days, each applying its plan (the last maybe killed)."""
    s = draw(scenarios(max_span=200))
    gaps = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6))
    return (
        s,
        [s.today + timedelta(days=sum(gaps[: i + 1])) for i in range(len(gaps))],
        draw(st.integers(0, 50)),
    )


@PROPERTY
@given(histories())
def test_a_bare_bookmark_plans_a_superset_of_what_is_needed(
    history: tuple[Scenario, list[date], int],
) -> None:
    s, run_days, killed_after = history
    max_period = max(s.periods)
    ledger = Ledger()
    for i, today in enumerate(run_days[:-1]):
        windows = replace(s, today=today, ledger=ledger).plan()
        if i == len(run_days) - 2:
            windows = windows[:killed_after]
        ledger = record_windows(ledger, windows, today, max_period)
    mark = ledger.high_water_mark()
    if mark is None:
        return
    true = replace(
        s,
        today=run_days[-1],
        ledger=ledger,
        final_days=frozenset(d for a, b in ledger.final for d in day_range(a, b)),
        elapsed=dict(ledger.elapsed),
    )
    from_mark = true.plan(Ledger.from_bookmark(mark, max_period))
    assert needed_dates(true) <= set(planned_dates(from_mark))
    for window in from_mark:
        for day in window.dates:
            assert window_serves(
                window.start, window.end, day, true.today, s.periods, partial=window.partial
            )


@PROPERTY
@given(scenarios(restatements=False), st.lists(st.integers(1, 20), min_size=1, max_size=30))
def test_daily_runs_keep_every_date_current_and_never_regress(s: Scenario, gaps: list[int]) -> None:
    """Runs on random days: after each, every date holds exactly its complete periods."""
    max_period = max(s.periods)
    loaded: dict[date, frozenset[int]] = {}
    ledger = Ledger()
    today = s.today
    for gap in gaps:
        today += timedelta(days=gap)
        run = replace(s, today=today, ledger=ledger)
        for window in run.plan():
            for day in window.dates:
                got = returned_periods(
                    window.start, window.end, today, s.periods, partial=window.partial
                )
                kept = got & complete_set(day, today, s.periods)
                assert loaded.get(day, frozenset()) <= kept  # no regression
                loaded[day] = kept
            ledger = ledger.record(window.dates, today, max_period)
        for day in day_range(s.first, min(s.last, today - timedelta(days=1))):
            assert loaded.get(day, frozenset()) == complete_set(day, today, s.periods), day


# ---- "today" per app time zone ------------------------------------------------------


def _stream(**report: Any) -> Any:
    config = {
        "api_token": "not-a-real-token-for-tests",
        "app_ids": ["id123456789", "com.example.app", "com.example.game"],
        "start_date": "2026-06-01",
        "app_timezone": {"id123456789": "America/Los_Angeles", "com.example.app": "Asia/Tokyo"},
        "reports": [{"name": "r", "groupings": ["date"], "kpis": ["sessions"], **report}],
    }
    return TapAppsFlyerCohort(config=config).streams["r"]


@pytest.mark.parametrize(
    ("utc_time", "app_id", "preferred", "expected"),
    [
        # 20:00 UTC on the 15th: Tokyo is already on the 16th, Los Angeles on the 15th.
        ("2026-06-15T20:00", "com.example.app", True, date(2026, 6, 16)),
        ("2026-06-15T20:00", "id123456789", True, date(2026, 6, 15)),
        ("2026-06-15T20:00", "com.example.app", False, date(2026, 6, 15)),
        # 03:00 UTC on the 15th: Los Angeles is still on the 14th.
        ("2026-06-15T03:00", "id123456789", True, date(2026, 6, 14)),
        ("2026-06-15T03:00", "id123456789", False, date(2026, 6, 15)),
        # No app_timezone for the game: UTC-12, the earliest date anywhere.
        ("2026-06-15T11:00", "com.example.game", True, date(2026, 6, 14)),
        ("2026-06-15T13:00", "com.example.game", True, date(2026, 6, 15)),
        ("2026-06-15T11:00", "com.example.game", False, date(2026, 6, 15)),
    ],
)
def test_app_today_follows_the_report_time_zone(
    utc_time: str, app_id: str, preferred: bool, expected: date
) -> None:
    stream = _stream(preferred_timezone=preferred)
    moment = datetime.fromisoformat(utc_time).replace(tzinfo=timezone.utc)
    with time_machine.travel(moment, tick=False):
        assert stream.app_today(app_id) == expected
