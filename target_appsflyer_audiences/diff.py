"""The difference between this run's membership and the last one sent, streamed.

Both sides come sorted by key (the staging table and the membership store iterate in
byte order), so one merge pass finds every change with nothing held in memory. A store
row marked *pending* was part of a batch whose answer never arrived: the API may or may not
have applied it, so it is sent again whichever way the new membership says (added again if
still a member, removed again if not; both are no-ops when already applied).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

ADD = "add"
REMOVE = "remove"


class Change(NamedTuple):
    """One planned operation: ``device`` is None for removals."""

    action: str
    key: str
    fingerprint: int
    device: str | None


class OrderError(RuntimeError):
    """A side was not sorted by key: the two sides' collations differ."""


def _checked(rows: Iterable[tuple[Any, ...]], side: str) -> Iterator[tuple[Any, ...]]:
    previous: str | None = None
    for row in rows:
        key = row[0]
        if previous is not None and key <= previous:
            msg = f"{side} is not in strict key order ({previous!r} then {key!r})"
            raise OrderError(msg)
        previous = key
        yield row


def membership_changes(
    staged: Iterable[tuple[str, int, str]],
    committed: Iterable[tuple[str, int, bool]],
) -> Iterator[Change]:
    """Changes that turn ``committed`` (key, fingerprint, pending) into ``staged``.

    ``staged`` rows are (key, fingerprint, device). New keys, changed fingerprints and
    pending rows still wanted are ADDs; keys no longer staged are REMOVEs (pending or not).
    """
    new_rows = _checked(staged, "the staged membership")
    old_rows = _checked(committed, "the membership store")
    new = next(new_rows, None)
    old = next(old_rows, None)
    while new is not None or old is not None:
        if old is None or (new is not None and new[0] < old[0]):
            assert new is not None
            yield Change(ADD, new[0], int(new[1]), str(new[2]))
            new = next(new_rows, None)
        elif new is None or old[0] < new[0]:
            yield Change(REMOVE, old[0], int(old[1]), None)
            old = next(old_rows, None)
        else:
            if old[1] != new[1] or old[2]:
                yield Change(ADD, new[0], int(new[1]), str(new[2]))
            new = next(new_rows, None)
            old = next(old_rows, None)
