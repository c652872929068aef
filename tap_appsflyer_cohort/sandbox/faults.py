"""Fault injection: what a scripted or random fault does to one call."""

from __future__ import annotations

from dataclasses import dataclass

#: Faults that replace the answer outright (the call is not counted or evaluated).
STATUS_FAULTS = frozenset({"500", "502", "503", "429", "429-bare"})
#: Faults with no argument.
SIMPLE_FAULTS = STATUS_FAULTS | {"reset", "truncate", "truncate-silent", "html", "empty"}
#: Faults written ``name:argument``.
ARGUMENT_FAULTS = frozenset({"timeout", "drop-column", "rename-column"})

HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><h1>Something went wrong</h1><p>Please try again later.</p></body></html>\n"
)


@dataclass(frozen=True)
class Fault:
    """A parsed fault name such as ``timeout:0.2`` or ``rename-column:cost=spend``."""

    name: str
    kind: str
    argument: str = ""

    @property
    def seconds(self) -> float:
        """The delay of a ``timeout`` fault."""
        return float(self.argument) if self.kind == "timeout" else 0.0

    @property
    def renamed(self) -> tuple[str, str]:
        """The (old, new) column names of a ``rename-column`` fault."""
        old, _, new = self.argument.partition("=")
        return old, new


def parse_fault(name: str) -> Fault:
    """Parse and check a fault name; raise ValueError for anything unknown."""
    if name in SIMPLE_FAULTS:
        return Fault(name, name)
    kind, sep, argument = name.partition(":")
    if not sep or kind not in ARGUMENT_FAULTS or not argument:
        raise ValueError(f"unknown fault {name!r}")
    if kind == "timeout":
        seconds = float(argument)
        if seconds < 0:
            raise ValueError(f"negative timeout in {name!r}")
    if kind == "rename-column" and "=" not in argument:
        raise ValueError(f"rename-column needs old=new, got {name!r}")
    return Fault(name, kind, argument)


def cut_mid_row(body: bytes) -> bytes:
    """Cut a CSV body in the middle of a row, leaving no final newline."""
    if not body:
        return body
    cut = max(1, len(body) // 2)
    while cut > 1 and (body[cut - 1 : cut] == b"\n" or body[cut : cut + 1] == b"\n"):
        cut -= 1
    return body[:cut]
