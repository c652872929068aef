"""Read one Cohort API answer (CSV, or JSON behind a setting) into compact typed rows.

Columns are mapped by header name, never by position (users report the order changes).
The CSV is read as it arrives, line by line, so memory does not grow with the raw body;
the parsed rows are kept (compactly) because a page is only known to be whole, and not
cut at the row cap, once its last line is read.
"""

from __future__ import annotations

import csv
import json
import math
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tap_appsflyer_cohort.errors import AnswerError, PartialDataShortfall
from tap_appsflyer_cohort.naming import parse_kpi_header, parse_measure_key

_BLANKS = frozenset({"", "N/A", "n/a", "NA", "null", "NULL", "None", "-"})


def to_number(text: str) -> float | None:
    """A CSV cell as a number; blanks and ``N/A`` are null (raises ValueError for junk)."""
    try:
        value = float(text)
    except ValueError:
        if text in _BLANKS:
            return None
        raise
    return value if value - value == 0.0 else None  # NaN and infinities are null


def to_int(text: str) -> int | None:
    """A CSV cell as an integer (``users``); blanks are null."""
    if text in _BLANKS:
        return None
    try:
        return int(text)
    except ValueError:
        return round(float(text))


@dataclass
class CohortTable:
    """One KPI's answer: rows keyed by grouping values, KPI values by (function, period)."""

    kpi: str
    columns: list[tuple[str, int]] = field(default_factory=list)
    rows: list[
        tuple[tuple[str, ...], int | None, float | None, float | None, list[float | None]]
    ] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    #: Always-present columns (``ecpi``, ``cost``) the answer lacked: read as null.
    missing_columns: list[str] = field(default_factory=list)

    @property
    def periods(self) -> set[int]:
        """Periods present in the answer."""
        return {period for _, period in self.columns}


def _lines(chunks: Iterable[bytes], state: dict[str, bool]) -> Iterator[str]:
    """Decode byte chunks into text lines (newlines kept), noting how the body ended."""
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        pending += chunk
        cut = pending.rfind(b"\n") + 1
        if cut:
            # Whole lines in one decode (a chunk never ends inside a character it keeps).
            yield from pending[:cut].decode("utf-8").splitlines(keepends=True)
            pending = pending[cut:]
    state["ended_with_newline"] = not pending
    if pending:
        yield pending.decode("utf-8")


def parse_csv(chunks: Iterable[bytes], *, kpi: str, groupings: tuple[str, ...]) -> CohortTable:
    """Parse a CSV answer; raise AnswerError when it is not a whole table.

    KPI cells take a fast path (``float`` or null); a "nan" or "inf" cell stays a float
    there, which the msgspec writer encodes as null, as ``to_number`` would give.
    """
    state: dict[str, bool] = {}
    reader = csv.reader(_lines(chunks, state))
    table = CohortTable(kpi=kpi)
    header = next(reader, None)
    if header is None or header == []:
        return table  # an empty 200 means no data
    if header[0].lstrip().startswith("<"):
        raise AnswerError("the API answered with an HTML page instead of CSV")
    index = {name: i for i, name in enumerate(header)}
    missing = [name for name in (*groupings, "users") if name not in index]
    if missing:
        raise AnswerError(f"the answer lacks column(s) {', '.join(missing)}")
    group_idx = [index[g] for g in groupings]
    users_idx = index["users"]
    ecpi_idx = index.get("ecpi")
    cost_idx = index.get("cost")
    table.missing_columns = [name for name in ("ecpi", "cost") if name not in index]
    kpi_idx: list[int] = []
    known = {*groupings, "users", "ecpi", "cost"}
    for i, name in enumerate(header):
        if name in known:
            continue
        parsed = parse_kpi_header(name, kpi)
        if parsed is None:
            table.unknown_columns.append(name)
            continue
        table.columns.append((parsed.function, parsed.period))
        kpi_idx.append(i)
    width = len(header)
    append = table.rows.append
    pick_kpis = _picker(kpi_idx)
    try:
        for row in reader:
            if len(row) != width:
                if not row:
                    continue
                raise AnswerError(
                    f"a row has {len(row)} fields where the header has {width}: the body was cut"
                )
            picked = pick_kpis(row)
            try:  # the common case: numbers and empty cells, at C speed
                values = [float(text) if text else None for text in picked]
            except ValueError:  # N/A and friends (junk still raises)
                values = [to_number(text) for text in picked]
            append(
                (
                    tuple([row[i] for i in group_idx]),
                    to_int(row[users_idx]),
                    None if ecpi_idx is None else to_number(row[ecpi_idx]),
                    None if cost_idx is None else to_number(row[cost_idx]),
                    values,
                )
            )
    except ValueError as exc:
        raise AnswerError(f"a value is not a number ({exc})") from None
    if not state.get("ended_with_newline", True) and table.rows:
        raise AnswerError("the body does not end with a newline: it was cut")
    return table


def _picker(indexes: list[int]) -> Any:
    """A fast ``row -> [row[i] for i in indexes]`` (always a sequence)."""
    if not indexes:
        return lambda row: ()
    if len(indexes) == 1:
        index = indexes[0]
        return lambda row: (row[index],)
    return operator.itemgetter(*indexes)


def parse_json(body: bytes, *, kpi: str, groupings: tuple[str, ...]) -> CohortTable:
    """Parse a ``format=json`` answer: ``{"query":..., "results":[{..., "measures":[...]}]}``.

    Tolerant: accepts a bare list of results, string numbers, and missing measures.
    """
    table = CohortTable(kpi=kpi)
    if not body.strip():
        return table
    try:
        document = json.loads(body)
    except ValueError:
        raise AnswerError("the answer is not JSON") from None
    results = document.get("results", []) if isinstance(document, dict) else document
    if not isinstance(results, list):
        raise AnswerError("the JSON answer has no results list")
    slots: dict[tuple[str, int], int] = {}
    parsed: list[tuple[tuple[str, ...], Any, Any, Any, dict[tuple[str, int], Any]]] = []
    for result in results:
        if not isinstance(result, dict):
            raise AnswerError("a JSON result is not an object")
        missing = [g for g in groupings if g not in result]
        if missing or "users" not in result:
            raise AnswerError(f"a JSON result lacks {', '.join(missing or ['users'])}")
        values: dict[tuple[str, int], Any] = {}
        for measure in result.get("measures") or []:
            period = measure.get("period")
            for key, value in measure.items():
                function = parse_measure_key(key, kpi) if key != "period" else None
                if function is not None and isinstance(period, int):
                    slots.setdefault((function, period), len(slots))
                    values[(function, period)] = value
        key = tuple("" if result[g] is None else str(result[g]) for g in groupings)
        parsed.append((key, result["users"], result.get("ecpi"), result.get("cost"), values))
    table.columns = sorted(slots, key=lambda s: slots[s])
    for key, users, ecpi, cost, values in parsed:
        table.rows.append(
            (
                key,
                None if users is None else to_int(str(users)),
                _json_number(ecpi),
                _json_number(cost),
                [_json_number(values.get(column)) for column in table.columns],
            )
        )
    return table


def _json_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        return to_number(str(value))
    except ValueError:
        raise AnswerError(f"a JSON value is not a number: {value!r}") from None


def check_periods(
    table: CohortTable, functions: tuple[str, ...], required: set[int], *, partial: bool
) -> list[str]:
    """Check an answer holds every period complete for its window; return lacking functions.

    A missing complete period means the answer is not what was asked (retried), or, for
    a partial-data answer, that the API's partial data lacks periods (fall back to
    complete-data windows). A single function's column missing for a period that came is
    loaded as null: the names of such functions are returned, for a warning.
    """
    if not table.rows:
        return []
    present = {p for f, p in table.columns if f in functions}
    missing = sorted(required - present)
    if missing and partial:
        raise PartialDataShortfall(str(missing))
    if missing:
        msg = (
            f"the answer for KPI '{table.kpi}' lacks period(s) {missing}, which are complete "
            "by this machine's date; if this persists, check that its clock is not ahead of "
            "the API's (the API's 'today' decides completeness)"
        )
        raise AnswerError(msg)
    columns = set(table.columns)
    return sorted({f for f in functions for p in required if (f, p) not in columns})
