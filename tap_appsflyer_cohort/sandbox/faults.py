"""Fault names: what a scripted, rule-targeted or random fault does to one call.

A fault is one step (``503``, ``timeout:0.2``, ``rename-column:cost=spend``) or several
joined by ``+`` (``cut-lines:40+chunked``: the body cut after 40 data lines, sent
chunked). Every step belongs to one stage, and a call runs the stages in this order
whatever order the steps were written in:

1. ``replace``: the call gets a canned answer instead of the API's (no rate limit counts
   it); at most one such step per fault.
2. ``edit``: the API renders without or under other column names.
3. ``rows``: the rendered 200 answer is parsed and changed row by row (``sandbox.quirks``).
4. ``bytes``: the encoded body is changed as bytes.
5. ``delivery``: how the bytes travel (framing, pace, a broken connection).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Step kind -> (stage, argument: "none", "optional" or "required").
STEPS: dict[str, tuple[str, str]] = {
    # replace
    "500": ("replace", "none"),
    "502": ("replace", "none"),
    "503": ("replace", "none"),
    "429": ("replace", "none"),
    "429-bare": ("replace", "none"),
    "429-date": ("replace", "optional"),
    "429-date-tomorrow": ("replace", "none"),
    "422": ("replace", "required"),
    "422-unknown-kpi": ("replace", "none"),
    "422-exceeds": ("replace", "none"),
    "html": ("replace", "none"),
    "empty": ("replace", "none"),
    "json-empty": ("replace", "none"),
    "json-error": ("replace", "optional"),
    "reset": ("replace", "none"),
    # edit
    "drop-column": ("edit", "required"),
    "rename-column": ("edit", "required"),
    # rows (the order here is the order they run in)
    "header-only": ("rows", "none"),
    "short": ("rows", "optional"),
    "duplicate-key": ("rows", "optional"),
    "time-suffix": ("rows", "none"),
    "slash-dates": ("rows", "none"),
    "duplicate-column": ("rows", "optional"),
    "thousands-separators": ("rows", "none"),
    "percent-suffix": ("rows", "none"),
    "odd-line-breaks": ("rows", "none"),
    "latin-1": ("rows", "none"),
    "long-field": ("rows", "optional"),
    # bytes (likewise in running order)
    "cut-lines": ("bytes", "optional"),
    "truncate-silent": ("bytes", "none"),
    "no-final-newline": ("bytes", "none"),
    "bom": ("bytes", "none"),
    "raw-gzip": ("bytes", "none"),
    # delivery
    "timeout": ("delivery", "required"),
    "truncate": ("delivery", "none"),
    "chunked": ("delivery", "none"),
    "close-delimited": ("delivery", "none"),
    "trickle": ("delivery", "optional"),
}
STAGES = ("replace", "edit", "rows", "bytes", "delivery")
#: Steps answering with a status other than 200 (the call is not evaluated).
STATUS_STEPS = frozenset(
    {"500", "502", "503", "429", "429-bare", "429-date", "429-date-tomorrow", "422"}
    | {"422-unknown-kpi", "422-exceeds"}
)
_NUMERIC_ARGUMENTS = {"429-date", "short", "duplicate-key", "long-field", "cut-lines"}
_FRAMINGS = frozenset({"chunked", "close-delimited", "truncate"})

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Something went wrong</h1><p>Please try again later.</p></body></html>\n"
)


@dataclass(frozen=True)
class Step:
    """One step of a fault, such as ``timeout:0.2`` or ``short:3``."""

    kind: str
    argument: str = ""

    @property
    def stage(self) -> str:
        """The stage the step runs in (see the module docstring)."""
        return STEPS[self.kind][0]

    @property
    def number(self) -> float | None:
        """The step's numeric argument, or None when it was left out."""
        return float(self.argument) if self.argument else None

    @property
    def renamed(self) -> tuple[str, str]:
        """The (old, new) column names of a ``rename-column`` step."""
        old, _, new = self.argument.partition("=")
        return old, new


@dataclass(frozen=True)
class Fault:
    """A parsed fault name: its steps, kept in stage order."""

    name: str
    steps: tuple[Step, ...]

    def stage(self, stage: str) -> tuple[Step, ...]:
        """The steps of one stage, in running order."""
        return tuple(s for s in self.steps if s.stage == stage)

    def has(self, kind: str) -> bool:
        """Tell whether a step of this kind is part of the fault."""
        return any(s.kind == kind for s in self.steps)

    def find(self, kind: str) -> Step | None:
        """The step of this kind, if any."""
        return next((s for s in self.steps if s.kind == kind), None)

    @property
    def seconds(self) -> float:
        """The silent delay before answering (``timeout:S``), else 0."""
        step = self.find("timeout")
        return float(step.argument) if step else 0.0


def parse_fault(name: str) -> Fault:
    """Parse and check a fault name; raise ValueError for anything unknown."""
    if not name or "@" in name:
        raise ValueError(f"unknown fault {name!r}")
    steps = [_parse_step(part, name) for part in name.split("+")]
    kinds = [s.kind for s in steps]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"a step is repeated in {name!r}")
    if sum(s.stage == "replace" for s in steps) > 1:
        raise ValueError(f"{name!r} has more than one replacing step")
    if len(_FRAMINGS.intersection(kinds)) > 1:
        raise ValueError(f"{name!r} has more than one framing (chunked, close-delimited, truncate)")
    order = list(STEPS)
    steps.sort(key=lambda s: order.index(s.kind))
    return Fault(name, tuple(steps))


def _parse_step(part: str, name: str) -> Step:
    kind, sep, argument = part.partition(":")
    if kind not in STEPS:
        raise ValueError(f"unknown fault {name!r}")
    takes = STEPS[kind][1]
    missing = (takes == "required" or sep) and not argument
    if (takes == "none" and sep) or missing:
        raise ValueError(f"bad argument in fault {name!r}")
    if kind in _NUMERIC_ARGUMENTS | {"timeout", "trickle"} and argument:
        try:
            value = float(argument)
        except ValueError:
            raise ValueError(f"{kind} needs a number, got {name!r}") from None
        if value < 0 or (kind == "trickle" and value == 0):
            raise ValueError(f"out-of-range number in {name!r}")
        if kind in _NUMERIC_ARGUMENTS - {"429-date"} and value != int(value):
            raise ValueError(f"{kind} needs a whole number, got {name!r}")
    if kind == "rename-column" and "=" not in argument:
        raise ValueError(f"rename-column needs old=new, got {name!r}")
    return Step(kind, argument)


def cut_mid_row(body: bytes) -> bytes:
    """Cut a CSV body in the middle of a row, leaving no final newline."""
    if not body:
        return body
    cut = max(1, len(body) // 2)
    while cut > 1 and (body[cut - 1 : cut] == b"\n" or body[cut : cut + 1] == b"\n"):
        cut -= 1
    return body[:cut]
