"""Answers the real API (or a proxy before it) might send, made from a correct answer.

Each quirk takes the correct 200 body the sandbox rendered and changes it the way one
odd server would, deterministically (the same body gives the same bytes), so a test can
ask ``SandboxServer.answer(..., quirk=...)`` for the exact bytes the wire carries.

Row quirks parse the rendered CSV (or JSON) and write it again; byte quirks then work on
the encoded body. Columns are told apart by name: ``users``, ``ecpi``, ``cost`` and
``..._day_<n>`` are metrics, every other column is part of the cohort key; the *name
column* a quirk writes into is the first key column other than ``date`` (``pid`` for
``groupings: [date, pid]``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Callable
from typing import Any

from tap_appsflyer_cohort.sandbox.faults import Fault, Step, cut_mid_row

UTF8_BOM = b"\xef\xbb\xbf"
#: ``str.splitlines()`` breaks lines at each of these; the csv module does not.
ODD_LINE_BREAKS = ("\u2028", "\x85", "\x0c")
#: Appended to every name by ``latin-1`` so the body has bytes that are not UTF-8.
LATIN1_SUFFIX = " Café"
#: The csv module's default field size limit is 131,072 characters.
LONG_FIELD_DEFAULT = 200_000
_METRIC = re.compile(r"^(users|ecpi|cost)$|_day_\d+$")
_KPI = re.compile(r"_day_\d+$")
_RATE = re.compile(r"_rate_day_\d+$")
_JSON_FIXED = frozenset({"users", "ecpi", "cost", "measures"})
CSV_ONLY = frozenset(
    {"duplicate-column", "thousands-separators", "percent-suffix", "cut-lines", "no-final-newline"}
)


#: Quirks that act on an empty answer too (header-only) or refuse it (they need a row).
NEED_ROWS = frozenset({"header-only", "duplicate-key", "long-field"})


class QuirkError(ValueError):
    """A quirk cannot apply to this answer (the server answers 500 saying why)."""


def apply_quirks(body: bytes, fmt: str, fault: Fault, header: list[str]) -> bytes:
    """Apply the fault's row and byte steps to a 200 body of format ``fmt``.

    ``header`` is the CSV header the API would send, for answers whose body is empty.
    """
    if fmt != "csv":
        for step in fault.steps:
            if step.kind in CSV_ONLY:
                raise QuirkError(f"{step.kind} applies to CSV answers only")
    rows = fault.stage("rows")
    if rows:
        body = _rewrite_csv(body, rows, header) if fmt == "csv" else _rewrite_json(body, rows)
    for step in fault.stage("bytes"):
        body = _BYTE_STEPS[step.kind](body, step)
    return body


# -- CSV rows ---------------------------------------------------------------------------


def _rewrite_csv(body: bytes, steps: tuple[Step, ...], fallback: list[str]) -> bytes:
    kinds = {s.kind for s in steps}
    table = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    if not table and not kinds & NEED_ROWS:
        return body  # no rows to change: still the API's empty answer
    header, data = (table[0], table[1:]) if table else (list(fallback), [])
    for step in steps:
        header, data = _CSV_STEPS[step.kind](header, data, step)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *data])
    return out.getvalue().encode("latin-1" if "latin-1" in kinds else "utf-8")


Grid = tuple[list[str], list[list[str]]]


def _header_only(header: list[str], data: list[list[str]], step: Step) -> Grid:
    return header, []


def _short(header: list[str], data: list[list[str]], step: Step) -> Grid:
    gone = set(spread(len(data), int(step.number or max(1, len(data) // 2))))
    return header, [row for i, row in enumerate(data) if i not in gone]


def _duplicate_key(header: list[str], data: list[list[str]], step: Step) -> Grid:
    picked = set(spread(len(data), int(step.number or 1)))
    if not picked:
        raise QuirkError("duplicate-key: the answer has no row to repeat")
    metrics = [bool(_METRIC.search(name)) for name in header]
    out: list[list[str]] = []
    for i, row in enumerate(data):
        out.append(row)
        if i in picked:
            out.append([other_value(v) if m else v for v, m in zip(row, metrics, strict=False)])
    return header, out


def _time_suffix(header: list[str], data: list[list[str]], step: Step) -> Grid:
    def timed(day: str) -> str:
        return day + " 00:00:00" if len(day) == 10 else day

    return header, _map_column(header, data, "date", timed)


def _slash_dates(header: list[str], data: list[list[str]], step: Step) -> Grid:
    return header, _map_column(header, data, "date", lambda v: v[:10].replace("-", "/") + v[10:])


def _duplicate_column(header: list[str], data: list[list[str]], step: Step) -> Grid:
    kpis = [name for name in header if _KPI.search(name)]
    name = step.argument or (kpis[0] if kpis else "users")
    if name not in header:
        raise QuirkError(f"duplicate-column: the answer has no column {name!r}")
    at = header.index(name)
    return [*header, name], [[*row, other_value(row[at])] for row in data]


def _thousands(header: list[str], data: list[list[str]], step: Step) -> Grid:
    metrics = [bool(_METRIC.search(name)) for name in header]
    return header, [
        [with_separators(v) if m else v for v, m in zip(row, metrics, strict=False)] for row in data
    ]


def _percent(header: list[str], data: list[list[str]], step: Step) -> Grid:
    rates = [bool(_RATE.search(name)) for name in header]
    if not any(rates):
        raise QuirkError("percent-suffix: the answer has no rate column")
    return header, [
        [v + "%" if r and v else v for v, r in zip(row, rates, strict=False)] for row in data
    ]


def _odd_line_breaks(header: list[str], data: list[list[str]], step: Step) -> Grid:
    at = name_column(header)
    for i, row in enumerate(data):
        row[at] = with_odd_break(row[at], i)
    return header, data


def _latin1(header: list[str], data: list[list[str]], step: Step) -> Grid:
    at = name_column(header)
    for row in data:
        row[at] += LATIN1_SUFFIX
    return header, data


def _long_field(header: list[str], data: list[list[str]], step: Step) -> Grid:
    if not data:
        raise QuirkError("long-field: the answer has no row to lengthen")
    at = name_column(header)
    data[0][at] = lengthened(data[0][at], int(step.number or LONG_FIELD_DEFAULT))
    return header, data


_CSV_STEPS: dict[str, Callable[[list[str], list[list[str]], Step], Grid]] = {
    "header-only": _header_only,
    "short": _short,
    "duplicate-key": _duplicate_key,
    "time-suffix": _time_suffix,
    "slash-dates": _slash_dates,
    "duplicate-column": _duplicate_column,
    "thousands-separators": _thousands,
    "percent-suffix": _percent,
    "odd-line-breaks": _odd_line_breaks,
    "latin-1": _latin1,
    "long-field": _long_field,
}


def _map_column(
    header: list[str], data: list[list[str]], name: str, change: Callable[[str], str]
) -> list[list[str]]:
    if name not in header:
        raise QuirkError(f"the answer has no {name!r} column")
    at = header.index(name)
    for row in data:
        row[at] = change(row[at])
    return data


def name_column(header: list[str]) -> int:
    """The index of the first key column other than ``date``."""
    for i, name in enumerate(header):
        if name != "date" and not _METRIC.search(name):
            return i
    raise QuirkError("this quirk needs a grouping besides date")


# -- JSON rows --------------------------------------------------------------------------


def _rewrite_json(body: bytes, steps: tuple[Step, ...]) -> bytes:
    doc = json.loads(body)
    results: list[dict[str, Any]] = doc["results"]
    kinds = {s.kind for s in steps}
    for step in steps:
        kind = step.kind
        if kind == "header-only":
            results = []
        elif kind == "short":
            gone = set(spread(len(results), int(step.number or max(1, len(results) // 2))))
            results = [r for i, r in enumerate(results) if i not in gone]
        elif kind == "duplicate-key":
            results = _json_duplicates(results, int(step.number or 1))
        elif kind in {"time-suffix", "slash-dates"}:
            for result in results:
                day = result["date"]
                if kind == "slash-dates":
                    result["date"] = day[:10].replace("-", "/") + day[10:]
                elif len(day) == 10:
                    result["date"] = day + " 00:00:00"
        else:
            _rewrite_json_names(results, step)
    doc["results"] = results
    raw = {"odd-line-breaks", "latin-1"} & kinds
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=not raw)
    return text.encode("latin-1" if "latin-1" in kinds else "utf-8")


def _rewrite_json_names(results: list[dict[str, Any]], step: Step) -> None:
    """The quirks that change a row's name field: odd line breaks, Latin-1, a long field."""
    kind = step.kind
    for i, result in enumerate(results):
        key = _json_name_key(result)
        if kind == "odd-line-breaks":
            result[key] = with_odd_break(result[key], i)
        elif kind == "latin-1":
            result[key] += LATIN1_SUFFIX
        elif i == 0:  # long-field
            result[key] = lengthened(result[key], int(step.number or LONG_FIELD_DEFAULT))
    if kind == "long-field" and not results:
        raise QuirkError("long-field: the answer has no row to lengthen")


def _json_duplicates(results: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    picked = set(spread(len(results), count))
    if not picked:
        raise QuirkError("duplicate-key: the answer has no row to repeat")
    out = []
    for i, result in enumerate(results):
        out.append(result)
        if i in picked:
            copy = dict(result)
            copy["users"] = result["users"] + 1
            copy["cost"] = (result["cost"] or 0) + 1.5
            copy["measures"] = [
                {k: v if k == "period" else (v or 0) + 1 for k, v in m.items()}
                for m in result["measures"]
            ]
            out.append(copy)
    return out


def _json_name_key(result: dict[str, Any]) -> str:
    for key in result:
        if key != "date" and key not in _JSON_FIXED:
            return key
    raise QuirkError("this quirk needs a grouping besides date")


# -- bytes ------------------------------------------------------------------------------


def _cut_lines(body: bytes, step: Step) -> bytes:
    lines = body.split(b"\n")[:-1] if body.endswith(b"\n") else body.split(b"\n")
    data_lines = len(lines) - 1
    keep = int(step.number) if step.number is not None else data_lines // 2
    if keep >= data_lines:
        raise QuirkError(f"cut-lines: the answer has {max(data_lines, 0)} data lines, kept {keep}")
    return b"".join(line + b"\n" for line in lines[: keep + 1])


_BYTE_STEPS: dict[str, Callable[[bytes, Step], bytes]] = {
    "cut-lines": _cut_lines,
    "truncate-silent": lambda body, step: cut_mid_row(body),
    "no-final-newline": lambda body, step: body.removesuffix(b"\n"),
    "bom": lambda body, step: UTF8_BOM + body,
    "raw-gzip": lambda body, step: gzip.compress(body, mtime=0),
}


# -- shared helpers ---------------------------------------------------------------------


def spread(length: int, count: int) -> list[int]:
    """``count`` distinct row indices spread evenly over ``length`` rows."""
    count = min(count, length)
    return [int((k + 0.5) * length / count) for k in range(count)] if count else []


def other_value(value: str) -> str:
    """A different value of the same kind (a repeated key's or column's copy)."""
    if value == "":
        return "1"
    if re.fullmatch(r"-?\d+", value):
        return str(int(value) + 1)
    try:
        return str(round(float(value) + 1.5, 4))
    except ValueError:
        return value + "-2"


def with_separators(value: str) -> str:
    """``1234.5`` as ``1,234.5``; smaller or non-numeric values unchanged."""
    whole, dot, fraction = value.partition(".")
    if not re.fullmatch(r"-?\d{4,}", whole):
        return value
    return f"{int(whole):,}{dot}{fraction}"


def with_odd_break(name: str, index: int) -> str:
    """Put one of the odd line breaks (by row, in turn) in the middle of a name."""
    half = len(name) // 2
    return name[:half] + ODD_LINE_BREAKS[index % len(ODD_LINE_BREAKS)] + name[half:]


def lengthened(name: str, length: int) -> str:
    """The name padded with ``x`` to ``length`` characters."""
    return name + "x" * max(0, length - len(name))
