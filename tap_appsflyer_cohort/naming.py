"""The API's column names, and the safe-name rule warehouse columns are built with.

One module, imported by the tap and by the sandbox, so both agree on every name the API
sends (warehouse columns themselves are declared in ``columns``).

Evidence and assumptions:

* CSV KPI columns are ``<kpi>_<function>_day_<N>`` [C: ``revenue_sum_day_7``,
  ``af_purchase_conversion_rate_day_3``, ``roas_rate_day_7``, ``open_unique_users_day_0``].
* JSON measures are ``<kpi>_<function>`` beside a ``period`` key [W].
* Event names are case-sensitive and may hold spaces (``Start Trial Auth``). How the API
  spells such a name inside a column header is not documented; we assume it is used
  verbatim [I]. The parser also accepts any spelling whose warehouse-safe form matches,
  so a lower-cased or underscored header is read all the same.
* ``per_user`` does not change column names [I].

"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import NamedTuple

from tap_appsflyer_cohort.contract import BUILTIN_KPI_FUNCTIONS, EVENT_FUNCTIONS

#: Every warehouse identifier the tap writes is at most this long: PostgreSQL keeps 63
#: characters, and pipelinewise-target-postgres rewrites names of 63 or more.
MAX_IDENTIFIER_LENGTH = 62
_UNSAFE = re.compile(r"[^a-z0-9]+")
#: Longest first, so ``conversion_rate`` is tried before ``rate``.
_FUNCTION_SUFFIXES = tuple(
    (function, re.compile(rf"_{function}_day_(\d+)$"))
    for function in ("conversion_rate", "unique_users", "count", "rate", "sum")
)


def kpi_functions(kpi: str, aggregation_type: str) -> tuple[str, ...]:
    """Return the functions the API sends for ``kpi`` (all of them come back at once)."""
    functions = BUILTIN_KPI_FUNCTIONS.get(kpi, EVENT_FUNCTIONS)
    if kpi == "sessions" and aggregation_type != "on_day":
        # [V] "Unique sessions returns when aggregation_type=on_day".
        return tuple(f for f in functions if f != "unique_users")
    return functions


def api_column(kpi: str, function: str, period: int) -> str:
    """Return the CSV header the API uses for one KPI function on one cohort day."""
    return f"{kpi}_{function}_day_{period}"


def api_measure(kpi: str, function: str) -> str:
    """Return the key of one KPI function inside a JSON ``measures`` entry."""
    return f"{kpi}_{function}"


def clean_name(name: str) -> str:
    """Any text as lowercase ``[a-z0-9_]``, not starting with a digit (no length cut).

    >>> clean_name("Start Trial Auth")
    'start_trial_auth'
    """
    # Accents fold to ASCII ("Über" -> "uber"); a name with no ASCII letter or digit left
    # (e.g. Japanese) becomes a stable hash rather than an empty or lossy name.
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE.sub("_", folded.lower()).strip("_")
    if not cleaned:
        cleaned = "k_" + name_digest(name)
    if cleaned[0].isdigit():
        cleaned = f"n_{cleaned}"
    return cleaned


def name_digest(name: str) -> str:
    """Eight hex digits of the original text: keeps cut names that share a prefix apart."""
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]  # noqa: S324


def safe_name(name: str) -> str:
    """Map any text to a warehouse-safe identifier, deterministically.

    >>> safe_name("Start Trial Auth")
    'start_trial_auth'
    """
    cleaned = clean_name(name)
    if len(cleaned) > MAX_IDENTIFIER_LENGTH:
        cleaned = f"{cleaned[: MAX_IDENTIFIER_LENGTH - 9].rstrip('_')}_{name_digest(name)}"
    return cleaned


class KpiHeader(NamedTuple):
    """A parsed CSV KPI header."""

    function: str
    period: int


def parse_kpi_header(header: str, kpi: str) -> KpiHeader | None:
    """Read ``<kpi>_<function>_day_<N>``; return None when the header is not of ``kpi``.

    The KPI prefix is compared verbatim first, then by its warehouse-safe form, so a
    server that normalises event names in headers is still understood.
    """
    for function, pattern in _FUNCTION_SUFFIXES:
        match = pattern.search(header)
        if match is None:
            continue
        prefix = header[: match.start()]
        if prefix == kpi or safe_name(prefix) == safe_name(kpi):
            return KpiHeader(function, int(match[1]))
    return None


def parse_measure_key(key: str, kpi: str) -> str | None:
    """Return the function of a JSON measure key ``<kpi>_<function>``, else None."""
    for function, _ in _FUNCTION_SUFFIXES:
        suffix = f"_{function}"
        if key.endswith(suffix):
            prefix = key[: -len(suffix)]
            if prefix == kpi or safe_name(prefix) == safe_name(kpi):
                return function
    return None
