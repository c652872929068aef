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
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tap_appsflyer_cohort.errors import AnswerError, PartialDataShortfall
from tap_appsflyer_cohort.naming import parse_kpi_header, parse_measure_key

_BLANKS = frozenset({"", "N/A", "n/a", "NA", "null", "NULL", "None", "-"})
#: ``1,234.5``: a number written with thousands separators (seen in spreadsheet exports).
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(,\d{3})+(\.\d*)?")
#: A day as the API may write it: ``2026-11-21``, ``2026/11/21``, with a midnight time.
_DAY = re.compile(r"(\d{4})[-/](\d{2})[-/](\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?(?:Z|[+-]00:?00)?)?")
#: An hour: ``2026-11-21 05:00:00`` (also with ``T``, without seconds, with slashes).
_HOUR = re.compile(r"(\d{4})[-/](\d{2})[-/](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:\.0+)?")
_GZIP_MAGIC = b"\x1f\x8b"
#: Fields longer than the csv module's default 131,072 characters (a long campaign name
#: is odd, not wrong); bounded so a runaway body still fails.
csv.field_size_limit(1 << 24)


def to_number(text: str) -> float | None:
    """A cell as a number; blanks and ``N/A`` are null (raises ValueError for junk).

    Also read: thousands separators (``1,234.5``) and a percent sign (``85.3%``: the API's
    rates are percents already, so the sign adds nothing).
    """
    try:
        value = float(text)
    except ValueError:
        if text in _BLANKS:
            return None
        cleaned = text.strip()
        if cleaned.endswith("%"):
            cleaned = cleaned[:-1].rstrip()
        if _THOUSANDS.fullmatch(cleaned):
            cleaned = cleaned.replace(",", "")
        value = float(cleaned)  # junk still raises
    return value if value - value == 0.0 else None  # NaN and infinities are null


def to_int(text: str) -> int | None:
    """A cell as an integer (``users``); blanks are null."""
    if text in _BLANKS:
        return None
    try:
        return int(text)
    except ValueError:
        value = to_number(text)
        return None if value is None else round(value)


class DateReader:
    """The answer's ``date`` values in one spelling: ``YYYY-MM-DD`` (hours: ``... HH:MM:SS``).

    [I] The API writes ``2026-03-01`` [C]; other spellings (a midnight time suffix,
    slashes) are read the same, so they match the dates asked for and load as ``date``;
    anything else stops the answer with its value, rather than being matched on a prefix.
    """

    def __init__(self, *, hourly: bool) -> None:
        self.hourly = hourly
        self._seen: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        """The normalised spelling of one date cell."""
        known = self._seen.get(text)
        if known is None:
            known = self._seen[text] = self._normalise(text)
        return known

    def _normalise(self, text: str) -> str:
        value = text.strip()
        if self.hourly:
            match = _HOUR.fullmatch(value)
            if match:
                year, month, day, hour, minute, second = match.groups()
                return f"{year}-{month}-{day} {hour}:{minute}:{second or '00'}"
        else:
            match = _DAY.fullmatch(value)
            if match:
                return "-".join(match.groups())
        kind = "YYYY-MM-DD HH:MM:SS" if self.hourly else "YYYY-MM-DD"
        raise AnswerError(f"a date is not {kind}: {text[:40]!r}")


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
    #: The complete days the answer covers when the API's clock lags ours (None: all).
    covered_days: int | None = None

    @property
    def periods(self) -> set[int]:
        """Periods present in the answer."""
        return {period for _, period in self.columns}


class _Body:
    r"""Bytes of an answer as text lines: decompressed, decoded, split on newlines only.

    Lines are split on ``\n`` alone (``str.splitlines`` also splits on U+2028, U+0085 and
    form feeds, which may sit inside unquoted names). A gzip body sent without
    ``Content-Encoding`` is unpacked; a UTF-8 byte-order mark is dropped; a charset the
    server declares is used, and a body that is not valid in it stops with one line.
    """

    def __init__(self, chunks: Iterable[bytes], charset: str | None) -> None:
        self._chunks = chunks
        self.charset = (charset or "utf-8").lower()
        self.ended_with_newline = True

    def lines(self) -> Iterator[str]:
        """Text lines, newlines kept (the csv module needs them)."""
        pending = b""
        first = True
        inflate: Any = None
        for chunk in self._chunks:
            if not chunk:
                continue
            if first:
                first = False
                if chunk.startswith(_GZIP_MAGIC):
                    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            if inflate is not None:
                chunk = inflate.decompress(chunk)  # noqa: PLW2901
            if not pending and chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]  # noqa: PLW2901
            pending += chunk
            cut = pending.rfind(b"\n") + 1
            if cut:
                yield from _split(self._decode(pending[:cut]))
                pending = pending[cut:]
        if inflate is not None:
            pending += inflate.flush()
            cut = pending.rfind(b"\n") + 1
            if cut:
                yield from _split(self._decode(pending[:cut]))
                pending = pending[cut:]
        self.ended_with_newline = not pending
        if pending:
            yield self._decode(pending)

    def _decode(self, data: bytes) -> str:
        try:
            return data.decode(self.charset)
        except UnicodeDecodeError as exc:
            raise AnswerError(
                f"the answer is not valid {self.charset} text (byte {data[exc.start]:#04x}); "
                "the API sends UTF-8 unless it declares another charset"
            ) from None
        except LookupError:
            raise AnswerError(f"the answer declares an unknown charset {self.charset!r}") from None


def _split(text: str) -> list[str]:
    r"""Lines ending in ``\n`` (each keeps it)."""
    parts = text.split("\n")
    return [line + "\n" for line in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def parse_csv(
    chunks: Iterable[bytes],
    *,
    kpi: str,
    groupings: tuple[str, ...],
    hourly: bool = False,
    charset: str | None = None,
    counts: frozenset[str] = frozenset(),
) -> CohortTable:
    """Parse a CSV answer; raise AnswerError when it is not a whole, unambiguous table.

    KPI cells take a fast path (``float`` or null; ``int`` for the functions in
    ``counts``, which are then the last columns); a "nan" or "inf" cell stays a float
    there, which the msgspec writer encodes as null, as ``to_number`` would give.
    A body without a final newline is whole when its last row has every field: a cut
    inside a row leaves fewer fields (a cut inside the very last value cannot be seen;
    the cross-KPI check and later re-reads catch what they can).
    """
    body = _Body(chunks, charset)
    reader = csv.reader(body.lines())
    table = CohortTable(kpi=kpi)
    header = next(reader, None)
    if header is None or header == []:
        return table  # an empty 200 means no data
    if header[0].lstrip().startswith("<"):
        raise AnswerError("the API answered with an HTML page instead of CSV")
    index = _header_index(header)
    missing = [name for name in (*groupings, "users") if name not in index]
    if missing:
        raise AnswerError(f"the answer lacks column(s) {', '.join(missing)}")
    group_idx = [index[g] for g in groupings]
    users_idx = index["users"]
    ecpi_idx = index.get("ecpi")
    cost_idx = index.get("cost")
    table.missing_columns = [name for name in ("ecpi", "cost") if name not in index]
    float_idx, count_idx = _kpi_columns(table, header, groupings, counts)
    width = len(header)
    append = table.rows.append
    pick_kpis = _picker(float_idx)
    pick_counts = _picker(count_idx)
    read_date = DateReader(hourly=hourly)
    try:
        for row in reader:
            if len(row) != width:
                if not row:
                    continue
                raise AnswerError(
                    f"a row has {len(row)} fields where the header has {width}: the body was cut"
                )
            picked = pick_kpis(row)
            picked_counts = pick_counts(row)
            try:  # the common case: numbers and empty cells, at C speed
                values = [float(text) if text else None for text in picked]
                values += [int(text) if text else None for text in picked_counts]
            except ValueError:  # N/A, 1,234.5, 85%, 12.0 and friends (junk still raises)
                values = [to_number(text) for text in picked]
                values += [to_int(text) for text in picked_counts]
            key = [row[i] for i in group_idx]
            key[0] = read_date(key[0])
            append(
                (
                    tuple(key),
                    to_int(row[users_idx]),
                    None if ecpi_idx is None else to_number(row[ecpi_idx]),
                    None if cost_idx is None else to_number(row[cost_idx]),
                    values,
                )
            )
    except ValueError as exc:
        raise AnswerError(f"a value is not a number ({exc})") from None
    _drop_repeated_rows(table)
    return table


def _kpi_columns(
    table: CohortTable, header: list[str], groupings: tuple[str, ...], counts: frozenset[str]
) -> tuple[list[int], list[int]]:
    """Fill ``table.columns`` (counts last) and return the positions of floats and counts."""
    float_idx: list[int] = []
    count_idx: list[int] = []
    count_columns: list[tuple[str, int]] = []
    known = {*groupings, "users", "ecpi", "cost"}
    for i, name in enumerate(header):
        if name in known:
            continue
        parsed = parse_kpi_header(name, table.kpi)
        if parsed is None:
            table.unknown_columns.append(name)
        elif parsed.function in counts:
            count_columns.append((parsed.function, parsed.period))
            count_idx.append(i)
        else:
            table.columns.append((parsed.function, parsed.period))
            float_idx.append(i)
    table.columns.extend(count_columns)  # counts last: one list concatenation per row
    return float_idx, count_idx


def _header_index(header: list[str]) -> dict[str, int]:
    """Column positions by name; two columns of one name make the answer ambiguous."""
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in index:
            raise AnswerError(f"the answer has two columns named {name!r}")
        index[name] = i
    return index


def _drop_repeated_rows(table: CohortTable) -> None:
    """One row per cohort key: exact repeats are dropped; conflicting ones stop the answer."""
    rows = table.rows
    if len({row[0] for row in rows}) == len(rows):
        return
    first: dict[tuple[str, ...], Any] = {}
    kept = []
    for row in rows:
        seen = first.get(row[0])
        if seen is None:
            first[row[0]] = row
            kept.append(row)
        elif seen != row:
            raise AnswerError(
                f"the answer has two rows for cohort {', '.join(row[0])} with different "
                "values: which is right is unknowable"
            )
    table.rows[:] = kept


def _picker(indexes: list[int]) -> Any:
    """A fast ``row -> [row[i] for i in indexes]`` (always a sequence)."""
    if not indexes:
        return lambda row: ()
    if len(indexes) == 1:
        index = indexes[0]
        return lambda row: (row[index],)
    return operator.itemgetter(*indexes)


def parse_json(
    body: bytes,
    *,
    kpi: str,
    groupings: tuple[str, ...],
    hourly: bool = False,
    counts: frozenset[str] = frozenset(),
) -> CohortTable:
    """Parse a ``format=json`` answer: ``{"query":..., "results":[{..., "measures":[...]}]}``.

    Tolerant: accepts a bare list of results, string numbers, and missing measures. An
    object without ``results`` (``{}``, or ``{"error": ...}`` sent with status 200) is
    not an answer: it stops with the server's text rather than passing for "no data".
    """
    table = CohortTable(kpi=kpi)
    if not body.strip():
        return table
    results = _json_results(body)
    read_date = DateReader(hourly=hourly)
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
        key = (read_date(key[0]), *key[1:])
        parsed.append((key, result["users"], result.get("ecpi"), result.get("cost"), values))
    table.columns = sorted(slots, key=lambda s: slots[s])
    readers = [_json_count if f in counts else _json_number for f, _ in table.columns]
    for key, users, ecpi, cost, values in parsed:
        table.rows.append(
            (
                key,
                None if users is None else to_int(str(users)),
                _json_number(ecpi),
                _json_number(cost),
                [read(values.get(c)) for read, c in zip(readers, table.columns, strict=True)],
            )
        )
    _drop_repeated_rows(table)
    return table


def _json_results(body: bytes) -> list[Any]:
    """The ``results`` list of a JSON answer (gzip or not), or the bare list it is."""
    if body.startswith(_GZIP_MAGIC):
        body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    try:
        document = json.loads(body)
    except ValueError:
        raise AnswerError("the answer is not JSON") from None
    if isinstance(document, dict) and "results" not in document:
        error = document.get("error") or document.get("message")
        if error:
            raise AnswerError(f"the API answered 200 with an error: {str(error)[:300]}")
        raise AnswerError("the JSON answer has no results list")
    results = document["results"] if isinstance(document, dict) else document
    if not isinstance(results, list):
        raise AnswerError("the JSON answer has no results list")
    return results


def _json_count(value: Any) -> int | None:
    """A count (``counts``): an integer, as ``to_int`` reads a CSV cell."""
    number = _json_number(value)
    return None if number is None else round(number)


def _json_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    try:
        return to_number(str(value))
    except ValueError:
        raise AnswerError(f"a JSON value is not a number: {value!r}") from None


@dataclass(frozen=True)
class Coverage:
    """What an answer covers: ``covered_days`` caps each date's complete days (None: all)."""

    covered_days: int | None = None
    lacking_functions: tuple[str, ...] = ()


def check_periods(
    table: CohortTable,
    functions: tuple[str, ...],
    required: set[int],
    periods: tuple[int, ...],
    *,
    partial: bool,
) -> Coverage:
    """Check an answer holds the periods complete for its window; say what it covers.

    The API's complete days can lag this machine's clock (the vendor: a day's data
    appears at 00:01 in the app's time zone; cost is pulled about every four hours):
    then the newest required periods are missing, and the answer covers the days below
    the first one missing; those dates stay maturing and are asked again. A gap that is
    not the newest periods means the answer is not what was asked (retried). For a
    partial-data answer, a missing period means the API's partial data lacks it: fall
    back to complete-data windows. A single function's column missing for a period that
    came is loaded as null; its name is returned, for a warning.
    """
    if not table.rows:
        return Coverage()
    present = {p for f, p in table.columns if f in functions}
    missing = sorted(required - present)
    if missing and partial:
        raise PartialDataShortfall(str(missing))
    covered: int | None = None
    if missing:
        if any(p in present for p in required if p > missing[0]):
            msg = (
                f"the answer for KPI '{table.kpi}' lacks period(s) {missing} but has later "
                "ones: it is not the table asked for"
            )
            raise AnswerError(msg)
        covered = missing[0]
    columns = set(table.columns)
    complete = [p for p in periods if p in required and (covered is None or p < covered)]
    lacking = sorted({f for f in functions for p in complete if (f, p) not in columns})
    return Coverage(covered, tuple(lacking))


@dataclass(frozen=True)
class WindowService:
    """Which of a window's dates its answers serve, and why the others wait.

    ``emit``: dates whose records go out. ``served``: the subset now known to be whole,
    recorded in the ledger. The rest stay due and are asked again.
    """

    emit: frozenset[str]
    served: frozenset[str]
    #: Dates the KPIs' answers disagree on (one KPI lacks cohorts another has).
    inconsistent: frozenset[str] = frozenset()
    #: The newest date returned when later dates of the window were not: if the body was
    #: cut cleanly between rows, this date may be missing rows, so it stays due.
    unverified: str | None = None
    #: Dates in the answers that the window did not ask for (ignored).
    outside: frozenset[str] = frozenset()


def window_service(
    needed: Iterable[str], first: str, last: str, tables: Iterable[CohortTable]
) -> WindowService:
    """Decide what a window's answers (one per KPI) serve; nothing partial is "served".

    ``needed`` are the dates the window must serve, ``first`` and ``last`` the query's
    ``from`` and ``to`` (dates in between that are not needed come back too, unused).
    A date is served when every KPI's answer has the same cohorts for it (answers of one
    query differ only in KPI columns, so a KPI answering short or empty is caught), and it
    is not after the newest date returned (later dates may not be processed yet). The
    newest date returned is emitted but stays due unless it is the query's last date: a
    body cut cleanly at a line boundary ends there [I: the API sorts rows by date, as
    every sample seen does], and the next read completes it.
    """
    wanted = sorted(set(needed))
    keys_by_kpi: list[dict[str, set[tuple[str, ...]]]] = []
    outside: set[str] = set()
    for table in tables:
        keys: dict[str, set[tuple[str, ...]]] = {}
        for key, *_ in table.rows:
            day = key[0][:10]
            if first <= day <= last:
                keys.setdefault(day, set()).add(key)
            else:
                outside.add(day)
        keys_by_kpi.append(keys)
    returned: set[str] = set().union(*keys_by_kpi) if keys_by_kpi else set()
    if not returned:
        return WindowService(frozenset(), frozenset(), outside=frozenset(outside))
    inconsistent = {
        day
        for day in returned
        if any(k.get(day) != keys_by_kpi[0].get(day) for k in keys_by_kpi[1:])
    }
    newest = max(returned)
    emit = {day for day in wanted if day <= newest} - inconsistent
    unverified = newest if newest != last and newest in emit else None
    served = emit - {unverified} if unverified else emit
    return WindowService(
        frozenset(emit),
        frozenset(served),
        frozenset(inconsistent & set(wanted)),
        unverified,
        frozenset(outside),
    )
