"""The Audiences Import API client: one paced, retried POST per batch of devices.

Retried: 429 (after ``Retry-After`` when sent, else a backoff), 5xx, timeouts and dropped
connections; every action is idempotent (adding a member twice or removing a non-member
changes nothing [I]), so a batch whose answer was lost is safe to send again. Not retried:
400 (the API's own message, with the audience and batch, is the error), 401/403 (token or
plan). The token is only ever in the Authorization header: no log line or error has it.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence

import requests

from target_appsflyer_audiences.contract import API_PREFIX
from target_appsflyer_audiences.errors import (
    DeviceCapError,
    RequestRefusedError,
    RetriesExhaustedError,
    TokenRefusedError,
    UnexpectedAnswerError,
)
from target_appsflyer_audiences.pacer import Pacer

_CAP = re.compile(r"Cannot process more than (\d+) devices", re.IGNORECASE)
#: Longest wait between tries, and the longest ``Retry-After`` honoured as a wait.
MAX_WAIT_SECONDS = 60.0
#: First backoff wait; doubled per try, with jitter.
BACKOFF_START_SECONDS = 0.5


def server_message(body: bytes) -> str:
    """The API's ``{"message": ...}`` text (the spec's example once spells it "messege")."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return body[:300].decode(errors="replace").strip()
    if isinstance(decoded, dict):
        for name in ("message", "messege", "error"):
            if isinstance(decoded.get(name), str):
                return str(decoded[name])
    return json.dumps(decoded)[:300]


def request_body(import_key: str, platform: str, devices: Sequence[str]) -> bytes:
    """The JSON body, joined from the devices' ready-made JSON objects."""
    head = json.dumps({"import_key": import_key, "platform": platform})[:-1]
    return f'{head}, "devices": [{",".join(devices)}]}}'.encode()


def backoff(attempt: int) -> float:
    """The wait after failed try ``attempt``: 0.5-1 s, 1-2 s, 2-4 s ... at most a minute."""
    base: float = BACKOFF_START_SECONDS * 2.0 ** (attempt - 1)
    return float(min(base * random.uniform(1.0, 2.0), MAX_WAIT_SECONDS))


class AudiencesClient:
    """Sends batches to ``{api_url}/api/audiences-import-api/v2/{action}``."""

    def __init__(
        self,
        api_url: str,
        token: str,
        pacer: Pacer,
        *,
        max_retries: int,
        timeout: float,
        logger: logging.Logger,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._root = api_url.rstrip("/") + API_PREFIX
        self._pacer = pacer
        self._max_retries = max_retries
        self._timeout = timeout
        self._logger = logger
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers.update(
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        )
        self.requests = 0

    def send(self, action: str, import_key: str, platform: str, devices: Sequence[str],
             where: str) -> None:  # fmt: skip
        """POST one batch; return on 200, raise an ``AudienceSyncError`` otherwise."""
        body = request_body(import_key, platform, devices)
        tries = 1 + self._max_retries
        started = time.monotonic()
        for attempt in range(1, tries + 1):
            self._pacer.acquire()
            self.requests += 1
            cause, asked = self._try(action, body, where)
            if cause is None:
                return
            wait = asked if asked is not None else backoff(attempt)
            if attempt == tries:
                raise RetriesExhaustedError(where, cause, tries, time.monotonic() - started)
            self._logger.warning(
                "Retrying %s after %s (try %d of %d, waiting %.1f s)",
                where,
                cause,
                attempt + 1,
                tries,
                wait,
            )
            self._pacer.hold_off(wait)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _try(self, action: str, body: bytes, where: str) -> tuple[str | None, float | None]:
        """One call: (None, None) on success, (cause, asked wait) to retry; else raise."""
        try:
            answer = self._session.post(self._root + action, data=body, timeout=self._timeout)
        except requests.Timeout:
            return f"no answer within {self._timeout:.0f} s", None
        except requests.ConnectionError:
            return "the connection failed", None
        status = answer.status_code
        if status == 200:
            return None, None
        text = server_message(answer.content)
        if status == 429:
            return "429 Too many requests", self._retry_after(answer)
        if status >= 500:
            return f"{status} {text}".strip(), None
        if status == 400:
            cap = _CAP.search(text)
            if cap:
                raise DeviceCapError(where, text, int(cap[1]))
            raise RequestRefusedError(where, text)
        if status in (401, 403):
            raise TokenRefusedError(status, where)
        raise UnexpectedAnswerError(status, where, text)

    @staticmethod
    def _retry_after(answer: requests.Response) -> float | None:
        value = answer.headers.get("Retry-After", "")
        try:
            seconds = float(value)
        except ValueError:
            return None
        return min(max(seconds, 0.0), MAX_WAIT_SECONDS)

    def close(self) -> None:
        """Release the connection pool."""
        self._session.close()
