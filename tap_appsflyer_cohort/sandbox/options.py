"""Configuration of a sandbox run and the record it keeps of every call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from tap_appsflyer_cohort.contract import (
    HORIZON_DAYS,
    MAX_RANGE_DAYS,
    REQUESTS_PER_DAY,
    REQUESTS_PER_MINUTE,
    ROW_CAP,
)

OVER_CAP_MODES = ("truncate", "error")
NO_DATA_BODIES = ("empty", "header")
REPLAY_UNMATCHED = ("simulate", "404")


@dataclass
class SandboxOptions:
    """Everything a test may tune; the server reads these live on every call."""

    #: None: generate a JWT-like token (760+ characters).
    token: str | None = None
    #: The UTC date the server believes it is; None: the real UTC date and time.
    today: date | None = None
    #: UTC wall time; with ``today`` it fixes the server's "now".
    time_of_day: time = time(12, 0)
    seed: int = 42
    #: Multiplies the number of cohort cells per app per day.
    scale: int = 1
    requests_per_minute: int = REQUESTS_PER_MINUTE
    requests_per_day: int = REQUESTS_PER_DAY
    max_range_days: int = MAX_RANGE_DAYS
    horizon_days: int = HORIZON_DAYS
    row_cap: int = ROW_CAP
    #: "truncate": first ``row_cap`` rows, 200; "error": 422.
    over_cap: str = "truncate"
    latency: float = 0.0
    latency_jitter: float = 0.0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    html_rate: float = 0.0
    shuffle_columns: bool = False
    #: "empty": 200 with an empty body when no rows; "header": the header line only.
    no_data_body: str = "empty"
    #: Complete cohort days run this many days behind the server's own date (the
    #: vendor's data for a day appears after it ends in the app's time zone).
    completeness_lag_days: int = 0
    #: Cost of a cohort date still grows toward its final value until the date is this
    #: many days old (``sandbox.settling``); 0: final values at once.
    settling_days: int = 0
    #: With ``settling_days``: revenue (and so ROAS/ROI) settles too.
    settling_revenue: bool = False
    #: Fault rules in text form, ``FAULT[@kpi=K][@app=A][@format=F][@times=N]``
    #: (``sandbox.rules``); more can be added with ``SandboxServer.quirk``.
    quirks: tuple[str, ...] = ()
    #: A folder of recorded answers served instead of computed ones (``sandbox.replay``).
    replay_dir: Path | str | None = None
    #: A call no recording matches: "simulate" (the simulator answers) or "404".
    replay_unmatched: str = "simulate"
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        """Reject mode strings the server would not understand."""
        if self.over_cap not in OVER_CAP_MODES:
            raise ValueError(f"over_cap must be one of {OVER_CAP_MODES}")
        if self.no_data_body not in NO_DATA_BODIES:
            raise ValueError(f"no_data_body must be one of {NO_DATA_BODIES}")
        if self.replay_unmatched not in REPLAY_UNMATCHED:
            raise ValueError(f"replay_unmatched must be one of {REPLAY_UNMATCHED}")
        for name in ("completeness_lag_days", "settling_days"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        self.quirks = tuple(self.quirks)


@dataclass(frozen=True)
class RequestRecord:
    """One call as the server saw it (rejected calls included)."""

    at: datetime
    method: str
    path: str
    app_id: str | None
    query: dict[str, str]
    body: dict[str, Any] | None
    status: int
    rows: int
    fault: str | None
    #: The replayed case that answered (``sandbox.replay``), if any.
    replayed: str | None = None
