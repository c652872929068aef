"""The sandbox's AppsFlyer Audiences Import API V2: ``POST /api/audiences-import-api/v2/{action}``.

In-memory audiences per ``import_key``, the documented answers (200, the 400 messages,
403, 429) and a request log, so target-appsflyer-audiences can be tested and demonstrated
here. It shares the sandbox's port and token (``SandboxServer.audiences``). The facts and
[I] decisions it follows are in ``target_appsflyer_audiences/contract.py``; the simulator
keeps its own copy of the few it needs, so the sandbox does not import the target.

Semantics [I]: a device is identified by its device identifiers (not ``app_id``, e-mails
or phones). ``add`` replaces every stored device sharing a device identifier with it (an
upsert) or appends it; ``remove`` (one identifier per device) deletes the devices holding
that identifier, and removing a non-member is a no-op; ``overwrite`` replaces the audience.
A request answered 400 changes nothing. Audiences unknown to the sandbox are created on
first use (``auto_create``), as if made in the dashboard beforehand.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tap_appsflyer_cohort.sandbox.api import Reply
from tap_appsflyer_cohort.sandbox.limits import RateLimiter

PREFIX = "/api/audiences-import-api/"
ACTIONS = ("add", "remove", "overwrite")
JSON_TYPE = "application/json"
DEVICE_IDENTIFIERS = {
    "ios": ("idfv", "idfa", "cuid", "braze_id", "amplitude_id"),
    "android": ("gaid", "oaid", "imei", "cuid", "braze_id", "amplitude_id"),
}
CONTACT_IDENTIFIERS = ("emails", "phone", "phone_e164")
UUID_FIELDS = ("idfa", "idfv", "gaid")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: [I] The cap is not published; 10,000 is the sandbox's default and a test knob.
DEFAULT_MAX_DEVICES = 10_000

Device = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class AudienceRequest:
    """One call to the import API as the sandbox saw it."""

    action: str
    import_key: str | None
    platform: str | None
    devices: int
    status: int
    message: str
    fault: str | None = None


@dataclass
class _Audience:
    platform: str
    #: device number -> the device's fields (identifiers and app_id)
    devices: dict[int, dict[str, str]] = field(default_factory=dict)
    #: (identifier field, value) -> device number
    index: dict[tuple[str, str], int] = field(default_factory=dict)
    next_number: int = 0

    def drop(self, number: int) -> None:
        device = self.devices.pop(number)
        for pair in _device_ids(self.platform, device):
            if self.index.get(pair) == number:
                del self.index[pair]

    def put(self, device: dict[str, str]) -> None:
        for pair in _device_ids(self.platform, device):
            holder = self.index.get(pair)
            if holder is not None:
                self.drop(holder)
        number = self.next_number
        self.next_number += 1
        self.devices[number] = device
        for pair in _device_ids(self.platform, device):
            self.index[pair] = number


def _device_ids(platform: str, device: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, device[name]) for name in DEVICE_IDENTIFIERS[platform] if name in device]


def _message(status: int, message: str, **headers: str) -> Reply:
    body = json.dumps({"message": message}).encode()
    return Reply(status, {"Content-Type": JSON_TYPE, **headers}, body)


class _RefusedError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AudiencesApi:
    """The import API's state and answers; thread-safe (the server is threaded)."""

    def __init__(self, token: str) -> None:
        self.token = token
        #: Devices accepted per request; more is the documented 400.
        self.max_devices = DEFAULT_MAX_DEVICES
        #: None: no rate limit; else calls per minute, past which the answer is 429.
        self.requests_per_minute: int | None = None
        #: Unknown import keys are created on first use; False: 400.
        self.auto_create = True
        #: Called with the request number (1, 2, ...) after a call changed an audience and
        #: before its answer is written: tests kill the client there.
        self.after_apply: Callable[[int], None] | None = None
        self._audiences: dict[str, _Audience] = {}
        self._log: list[AudienceRequest] = []
        self._script: deque[str] = deque()
        self._limiter = RateLimiter()
        self._lock = threading.Lock()

    # -- test controls and ground truth ---------------------------------------------------

    def script(self, *faults: str) -> None:
        """Answer the next calls with these, one per call.

        "ok" (answered normally), "429" (Retry-After: 0), "429-bare", "500", "502", "503",
        "reset" (connection dropped, nothing applied), "applied-reset" (applied, then the
        connection dropped).
        """
        with self._lock:
            self._script.extend(faults)

    def clear_script(self) -> None:
        """Forget scripted answers not used yet."""
        with self._lock:
            self._script.clear()

    def create(self, import_key: str, platform: str) -> None:
        """Make an (empty) audience, as the dashboard would."""
        with self._lock:
            self._audiences.setdefault(import_key, _Audience(platform))

    def members(self, import_key: str) -> set[Device]:
        """Ground truth: the audience's devices, each as a set of (field, value)."""
        with self._lock:
            audience = self._audiences.get(import_key)
            if audience is None:
                return set()
            return {frozenset(d.items()) for d in audience.devices.values()}

    def size(self, import_key: str) -> int:
        """How many devices the audience holds."""
        with self._lock:
            audience = self._audiences.get(import_key)
            return 0 if audience is None else len(audience.devices)

    def platform(self, import_key: str) -> str | None:
        """The audience's platform, once it exists."""
        with self._lock:
            audience = self._audiences.get(import_key)
            return None if audience is None else audience.platform

    @property
    def request_log(self) -> list[AudienceRequest]:
        """A snapshot of every call so far."""
        with self._lock:
            return list(self._log)

    # -- HTTP ------------------------------------------------------------------------------

    def dispatch(
        self, method: str, path: str, authorization: str | None, raw: bytes
    ) -> tuple[Reply, str | None, float]:
        """Answer one call: (reply, transport: None or "reset", delay)."""
        action = path[len(PREFIX) :].removeprefix("v2/") if path.startswith(PREFIX + "v2/") else ""
        fault: str | None = None
        transport: str | None = None
        parsed: dict[str, Any] | None = None
        count = 0
        try:
            if action not in ACTIONS:
                reply = _message(404, "Not found")
            elif method != "POST":
                reply = _message(405, "Method not allowed")
            elif authorization != f"Bearer {self.token}":
                reply = _message(403, "Forbidden")  # [V] the only auth answer documented
            else:
                with self._lock:
                    fault = self._script.popleft() if self._script else None
                fault = None if fault == "ok" else fault
                parsed, count = _parse(raw)
                if fault == "applied-reset":  # changed, but the answer is lost on the way
                    reply = self._apply(action, parsed, raw)
                    transport = "reset" if reply.status == 200 else None
                elif fault is not None:
                    reply, transport = _fault(fault)
                elif self._limited():
                    reply = _message(429, "Too many requests", **{"Retry-After": "1"})
                else:
                    reply = self._apply(action, parsed, raw)
        except _RefusedError as refusal:
            reply = _message(400, refusal.message)
        except Exception as error:  # a sandbox bug must still answer
            reply = _message(500, f"sandbox error: {error!r}")
        number = self._record(action, parsed, count, reply, fault)
        if reply.status == 200 and self.after_apply is not None:
            self.after_apply(number)
        return reply, transport, 0.0

    def _limited(self) -> bool:
        if self.requests_per_minute is None:
            return False
        wait = self._limiter.admit(
            self.token,
            self.requests_per_minute,
            10**9,
            time.monotonic(),
            datetime.now(timezone.utc),
        )
        return wait is not None

    def _record(
        self,
        action: str,
        parsed: dict[str, Any] | None,
        count: int,
        reply: Reply,
        fault: str | None,
    ) -> int:
        message = ""
        if reply.body:
            try:
                message = str(json.loads(reply.body).get("message", ""))
            except ValueError:
                message = ""
        import_key = parsed.get("import_key") if parsed else None
        platform = parsed.get("platform") if parsed else None
        entry = AudienceRequest(
            action=action,
            import_key=import_key if isinstance(import_key, str) else None,
            platform=platform if isinstance(platform, str) else None,
            devices=count,
            status=reply.status,
            message=message,
            fault=fault,
        )
        with self._lock:
            self._log.append(entry)
            return len(self._log)

    # -- the API itself --------------------------------------------------------------------

    def _request(self, body: dict[str, Any] | None) -> tuple[str, str, list[Any]]:
        """A call's import key, platform and devices, or the 400 for the first one missing."""
        if body is None:
            raise _RefusedError("Request body must be a JSON object")  # [I]
        import_key = body.get("import_key")
        platform = body.get("platform")
        devices = body.get("devices")
        if not isinstance(import_key, str) or not import_key:
            raise _RefusedError("import_key is required")  # [I]
        if platform not in DEVICE_IDENTIFIERS:
            raise _RefusedError("platform must be one of: ios, android")  # [I]
        if not isinstance(devices, list):
            raise _RefusedError("devices must be a list")  # [I]
        if not devices:
            raise _RefusedError("Device list cannot be empty")  # [V]
        if len(devices) > self.max_devices:
            raise _RefusedError(  # [V]
                f"Cannot process more than {self.max_devices} devices per request "
                f"({len(devices)} devices counted in this request)"
            )
        return import_key, platform, devices

    def _apply(self, action: str, body: dict[str, Any] | None, raw: bytes) -> Reply:
        import_key, platform, devices = self._request(body)
        checked = _check_devices(platform, devices, removing=action == "remove")
        with self._lock:
            audience = self._audiences.get(import_key)
            if audience is None:
                if not self.auto_create:
                    raise _RefusedError("Audience not found for this import key")  # [I]
                audience = self._audiences[import_key] = _Audience(platform)
            if audience.platform != platform:
                shown = "iOS" if audience.platform == "ios" else "Android"
                raise _RefusedError(  # [V]
                    f"Invalid audience platform, this audience is already configured for "
                    f"{shown}. To use a different platform, please create a new audience in "
                    "the UI"
                )
            if action == "overwrite":
                audience.devices.clear()
                audience.index.clear()
            if action == "remove":
                for device in checked:
                    for pair in _device_ids(platform, device):
                        holder = audience.index.get(pair)
                        if holder is not None:
                            audience.drop(holder)
            else:
                for device in checked:
                    audience.put(device)
        return _message(200, "The request was successful")


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, int]:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None, 0
    if not isinstance(body, dict):
        return None, 0
    devices = body.get("devices")
    return body, len(devices) if isinstance(devices, list) else 0


def _check_devices(platform: str, devices: list[Any], *, removing: bool) -> list[dict[str, str]]:
    """The devices as stored, or the documented 400 for the first rule a row breaks."""
    accepted = set(DEVICE_IDENTIFIERS[platform]) | set(CONTACT_IDENTIFIERS)
    no_app = no_id = many = 0
    checked: list[dict[str, str]] = []
    for device in devices:
        if not isinstance(device, dict):
            raise _RefusedError("We couldn\u2019t understand one or more of your device IDs")
        identifiers = {k: v for k, v in device.items() if k != "app_id"}
        for name, value in identifiers.items():
            # [I] a field the platform does not take, a non-string or a malformed UUID.
            if name not in accepted or not isinstance(value, str) or not value:
                raise _RefusedError("We couldn\u2019t understand one or more of your device IDs")
            if name in UUID_FIELDS and not _UUID.fullmatch(value):
                raise _RefusedError("We couldn\u2019t understand one or more of your device IDs")
        if not isinstance(device.get("app_id"), str) or not device["app_id"]:
            no_app += 1
        if not any(name in DEVICE_IDENTIFIERS[platform] for name in identifiers):
            no_id += 1
        if removing and len(identifiers) > 1:
            many += 1
        checked.append(dict(device))
    if no_app:
        raise _RefusedError(  # [V]
            f"{no_app} or more of your rows do not contain an app id. You must attach an app "
            "id to each row."
        )
    if no_id:
        raise _RefusedError(
            f"{no_id} or more of your rows does not contain a valid unique identifier"
        )
    if many:
        raise _RefusedError(  # [V]
            f"{many} or more of devices to remove contain more than one identifier per device"
        )
    return checked


def _fault(name: str) -> tuple[Reply, str | None]:
    if name == "429":
        return _message(429, "Too many requests", **{"Retry-After": "0"}), None
    if name == "429-bare":
        return _message(429, "Too many requests"), None
    if name == "reset":
        return Reply(0), "reset"
    if name in ("500", "502", "503"):
        return _message(int(name), "Internal Server Error"), None
    raise ValueError(f"unknown audiences fault {name!r}")
