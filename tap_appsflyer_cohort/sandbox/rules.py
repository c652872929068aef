"""Faults aimed at calls by what they ask for, not by when they arrive.

With requests in flight at once, the order of calls across KPIs is not deterministic,
so a scripted "the next call" cannot say "the ``roas`` calls answer header-only while
``revenue`` answers in full". A rule can: it gives its fault to every call (or the
first ``times`` calls) whose KPI, app and format match. Text form, for options and the
command line: ``FAULT[@kpi=KPI][@app=APP_ID][@format=csv|json][@times=N]``, e.g.
``header-only@kpi=roas`` or ``cut-lines:40+chunked@kpi=revenue@times=2``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from tap_appsflyer_cohort.sandbox.faults import Fault, parse_fault

_SELECTORS = {"kpi", "app", "format", "times"}


@dataclass(frozen=True)
class CallTraits:
    """What a rule can select a call by."""

    app_id: str
    kpi: str | None
    fmt: str

    @classmethod
    def of(cls, app_id: str, params: dict[str, str], raw: bytes) -> CallTraits:
        """Read the traits of a call leniently (an unreadable body has no KPI)."""
        kpi = None
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        kpis = body.get("kpis") if isinstance(body, dict) else None
        if isinstance(kpis, list) and kpis and isinstance(kpis[0], str):
            kpi = kpis[0]
        return cls(app_id, kpi, params.get("format", "csv"))


@dataclass
class QuirkRule:
    """One rule; ``used`` counts the calls it gave its fault to."""

    fault: Fault
    kpi: str | None = None
    app_id: str | None = None
    fmt: str | None = None
    #: None: every matching call.
    times: int | None = None
    used: int = field(default=0, compare=False)

    def matches(self, call: CallTraits) -> bool:
        """Tell whether the rule selects this call and still has uses left."""
        if self.times is not None and self.used >= self.times:
            return False
        return (
            (self.kpi is None or self.kpi == call.kpi)
            and (self.app_id is None or self.app_id == call.app_id)
            and (self.fmt is None or self.fmt == call.fmt)
        )


def make_rule(
    fault: str,
    *,
    kpi: str | None = None,
    app_id: str | None = None,
    fmt: str | None = None,
    times: int | None = None,
) -> QuirkRule:
    """Build a rule, checking the fault name and the count."""
    if times is not None and times < 1:
        raise ValueError(f"times must be at least 1, got {times}")
    return QuirkRule(parse_fault(fault), kpi, app_id, fmt, times)


def parse_rule(text: str) -> QuirkRule:
    """Parse the text form ``FAULT[@kpi=...][@app=...][@format=...][@times=N]``."""
    name, *selectors = text.split("@")
    chosen: dict[str, str] = {}
    for selector in selectors:
        key, sep, value = selector.partition("=")
        if key not in _SELECTORS or not sep or not value or key in chosen:
            raise ValueError(f"bad selector {selector!r} in rule {text!r}")
        chosen[key] = value
    times = chosen.get("times")
    if times is not None and not times.isdigit():
        raise ValueError(f"times must be a whole number in rule {text!r}")
    return make_rule(
        name,
        kpi=chosen.get("kpi"),
        app_id=chosen.get("app"),
        fmt=chosen.get("format"),
        times=int(times) if times is not None else None,
    )


class RuleBook:
    """The rules of one server, first match wins; safe across handler threads."""

    def __init__(self, rules: list[QuirkRule] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules = list(rules or [])

    def add(self, rule: QuirkRule) -> QuirkRule:
        """Add a rule after the existing ones."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[QuirkRule]:
        """A snapshot of the rules."""
        with self._lock:
            return list(self._rules)

    def take(self, call: CallTraits) -> Fault | None:
        """The fault of the first rule selecting this call (that use is counted)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(call):
                    rule.used += 1
                    return rule.fault
        return None
