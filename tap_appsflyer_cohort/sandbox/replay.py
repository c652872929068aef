"""Serve recorded answers instead of computed ones (``--replay DIR``, ``replay_dir=...``).

A real answer that breaks the tap becomes a test by dropping it in a folder.

On disk, one folder per recorded answer (a *case*); cases are read once, at start::

    DIR/
      01-roas-short/
        request.json        which calls it answers; every key optional:
                            {"app_id": "id123456789", "format": "csv",
                             "body": {"kpis": ["roas"], "from": "2026-05-01"}}
        response.meta.json  {"status": 200,
                             "headers": {"Content-Type": "text/csv; charset=utf-8"},
                             "delivery": "chunked"}        (delivery optional)
        response.body       the body's bytes, served exactly as stored

* A call matches a case when its app and format equal the case's (if given) and each
  key of the case's ``body`` equals the same key of the call's JSON body (other keys of
  the call are not looked at; ``"body": {}`` or no ``body`` matches every body).
* Order: the cases a call matches answer it in folder-name order, one call each; once
  each has answered, the last keeps answering. So ``01-cut/`` then ``02-full/``, both
  matching, give the first call the cut answer and every later one the full answer.
* Unmatched calls: the simulator answers them (``replay_unmatched="simulate"``, the
  default) or they get a 404 naming the replay folder (``"404"``).
* The recorded headers are sent as stored, except framing headers (``Content-Length``,
  ``Transfer-Encoding``, ``Connection``) and ``Date``, which the server writes: the body
  goes with a ``Content-Length`` unless ``delivery`` (any fault made of delivery steps,
  such as ``chunked``, ``close-delimited``, ``trickle:50``, ``timeout:2``) says otherwise.
  A stored ``Content-Encoding: gzip`` is kept, so a gzip body is served as it came.
* Replayed calls skip faults and rate limits; the request log marks them ``replayed``.

``python -m tap_appsflyer_cohort.sandbox.record`` writes a case from a curl answer or
by making the call itself (``sandbox.record``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tap_appsflyer_cohort.sandbox.api import Reply, error_reply
from tap_appsflyer_cohort.sandbox.faults import Fault, parse_fault

REQUEST_FILE = "request.json"
META_FILE = "response.meta.json"
BODY_FILE = "response.body"
_REQUEST_KEYS = frozenset({"app_id", "format", "body", "note"})
_META_KEYS = frozenset({"status", "headers", "delivery", "note"})


@dataclass(frozen=True)
class Case:
    """One recorded answer and the calls it answers."""

    name: str
    app_id: str | None
    fmt: str | None
    body: dict[str, Any]
    status: int
    headers: dict[str, str]
    content: bytes
    delivery: Fault | None

    def matches(self, app_id: str, fmt: str, body: dict[str, Any]) -> bool:
        """Tell whether this case answers a call."""
        if self.app_id is not None and self.app_id != app_id:
            return False
        if self.fmt is not None and self.fmt != fmt:
            return False
        return all(key in body and body[key] == value for key, value in self.body.items())

    def reply(self) -> Reply:
        """The recorded answer."""
        headers = {k: v for k, v in self.headers.items() if k.lower() != "date"}
        return Reply(self.status, headers, self.content)


def load_case(folder: Path) -> Case:
    """Read one case folder; raise ValueError naming the file that is wrong."""
    request = _read_json(folder / REQUEST_FILE, _REQUEST_KEYS)
    meta = _read_json(folder / META_FILE, _META_KEYS)
    body_file = folder / BODY_FILE
    if not body_file.is_file():
        raise ValueError(f"{body_file}: missing (the answer's bytes; may be empty)")
    status = meta.get("status")
    if type(status) is not int or not 100 <= status <= 599:
        raise ValueError(f"{folder / META_FILE}: status must be an HTTP status code")
    headers = meta.get("headers", {})
    if isinstance(headers, list):
        headers = dict(headers)
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise ValueError(f"{folder / META_FILE}: headers must map names to strings")
    delivery = None
    if meta.get("delivery"):
        delivery = parse_fault(str(meta["delivery"]))
        if any(step.stage != "delivery" for step in delivery.steps):
            raise ValueError(f"{folder / META_FILE}: delivery takes delivery steps only")
    match_body = request.get("body", {})
    if not isinstance(match_body, dict):
        raise ValueError(f"{folder / REQUEST_FILE}: body must be an object of fields to match")
    return Case(
        name=folder.name,
        app_id=request.get("app_id"),
        fmt=request.get("format"),
        body=match_body,
        status=status,
        headers=headers,
        content=body_file.read_bytes(),
        delivery=delivery,
    )


def _read_json(path: Path, allowed: frozenset[str]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    except ValueError as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)} (known: {sorted(allowed)})")
    return data


class Replay:
    """The cases of one folder and which of them have answered."""

    def __init__(self, folder: Path | str, unmatched: str = "simulate") -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"replay folder {self.folder} does not exist")
        self.unmatched = unmatched
        self.cases = [
            load_case(child)
            for child in sorted(self.folder.iterdir())
            if child.is_dir() and not child.name.startswith(".")
        ]
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def pick(self, app_id: str, params: dict[str, str], raw: bytes) -> Case | None:
        """The case answering this call, or None (then see ``unmatched``)."""
        fmt = params.get("format", "csv")
        try:
            decoded = json.loads(raw) if raw.strip() else {}
        except ValueError:
            decoded = {}
        body = decoded if isinstance(decoded, dict) else {}
        with self._lock:
            matching = [c for c in self.cases if c.matches(app_id, fmt, body)]
            if not matching:
                return None
            case = next((c for c in matching if c.name not in self._used), matching[-1])
            self._used.add(case.name)
            return case

    def unmatched_reply(self, app_id: str, params: dict[str, str]) -> Reply:
        """The 404 of a call no case matches (with ``unmatched="404"``)."""
        fmt = params.get("format", "csv")
        return error_reply(
            404,
            f"no recorded answer in {self.folder} matches this call "
            f"(app_id {app_id}, format {fmt}); see request.json of each case",
        )

    def rewind(self) -> None:
        """Forget which cases have answered (every sequence starts again)."""
        with self._lock:
            self._used.clear()
