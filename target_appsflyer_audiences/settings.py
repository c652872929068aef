"""The checked settings: one ``AudienceMapping`` per stream, and the run-wide knobs.

Every check that can be made from the config alone runs at start-up, before any input is
read or any call made, and fails with one line naming the stream and the field (a
``ConfigValidationError``, which singer-sdk prints and exits 1 on). Checks that need the
stream's schema (does the mapped field exist?) run when its SCHEMA message arrives, still
before any call: calls are made only once the whole input is read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from singer_sdk.exceptions import ConfigValidationError

from target_appsflyer_audiences.contract import (
    CONTACT_IDENTIFIERS,
    DEFAULT_API_URL,
    DEFAULT_MAX_DEVICES_PER_REQUEST,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEVICE_IDENTIFIERS,
    IDENTIFIER_FIELDS,
    PLATFORMS,
    accepted_identifiers,
)
from target_appsflyer_audiences.identifiers import HashingRules
from target_appsflyer_audiences.settings_schema import MODES

#: Record fields taken by default for an identifier besides its own name.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "emails": ("email",),
    "cuid": ("customer_user_id",),
}


class AudienceConfigError(ConfigValidationError):
    """A setting that cannot work; the message names the stream (or setting) and field."""

    def __init__(self, where: str, problem: str) -> None:
        message = f"{where}: {problem}"
        super().__init__(message, errors=[message])


@dataclass(frozen=True)
class AudienceMapping:
    """How one stream becomes one audience."""

    stream: str
    import_key: str
    platform: str
    app_id: str
    mode: str
    #: API identifier -> record field, in key order; None: chosen from the schema.
    identifiers: tuple[tuple[str, str], ...] | None

    @property
    def where(self) -> str:
        """How error lines name this audience."""
        return f"audience for stream '{self.stream}'"

    def resolve_identifiers(self, properties: Sequence[str]) -> tuple[tuple[str, str], ...]:
        """The identifier mapping for a stream whose schema has ``properties``.

        Explicit mappings must name existing fields; the default takes every field named like
        an identifier the platform accepts, device identifiers first (in the platform's
        order), so the key is the most specific id present.
        """
        present = set(properties)
        if self.identifiers is not None:
            for api_field, record_field in self.identifiers:
                if record_field not in present:
                    raise AudienceConfigError(
                        self.where,
                        f"'identifiers.{api_field}' names field '{record_field}', which the "
                        f"stream's schema does not have (it has: {', '.join(sorted(present))})",
                    )
            return self.identifiers
        chosen: list[tuple[str, str]] = []
        for api_field in accepted_identifiers(self.platform):
            for name in (api_field, *FIELD_ALIASES.get(api_field, ())):
                if name in present:
                    chosen.append((api_field, name))
                    break
        if not any(api in DEVICE_IDENTIFIERS[self.platform] for api, _ in chosen):
            raise AudienceConfigError(
                self.where,
                "no field of the stream is named like a device identifier for "
                f"{self.platform} ({', '.join(DEVICE_IDENTIFIERS[self.platform])}); "
                "map one with 'identifiers', e.g. {cuid: user_id}",
            )
        return tuple(chosen)


@dataclass(frozen=True)
class TargetSettings:
    """Everything the target reads from its config, checked."""

    api_token: str
    api_url: str
    audiences: tuple[AudienceMapping, ...]
    membership_store: str | None
    max_devices_per_request: int
    requests_per_minute: int
    max_retries: int
    request_timeout: int
    max_removal_percent: int
    hashing: HashingRules

    def audience_for(self, stream: str) -> AudienceMapping:
        """The mapping of ``stream``; an unmapped stream stops the run before any call."""
        for audience in self.audiences:
            if audience.stream == stream:
                return audience
        known = ", ".join(f"'{a.stream}'" for a in self.audiences)
        raise AudienceConfigError(
            f"stream '{stream}'",
            f"no entry in 'audiences' has this stream (configured: {known}); add one, or "
            "deselect the stream in the tap",
        )


def _positive(config: Mapping[str, Any], name: str, default: int, *, zero: bool = False) -> int:
    value = config.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
        floor = "0 or more" if zero else "1 or more"
        raise AudienceConfigError(f"'{name}'", f"must be an integer, {floor} (got {value!r})")
    return value


def _check_api_url(url: str) -> str:
    """Only https, except loopback: the token must never travel in clear text."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return url.rstrip("/")
    if parts.scheme == "http" and (host == "localhost" or _is_loopback(host)):
        return url.rstrip("/")
    raise AudienceConfigError(
        "'api_url'", f"must be https:// (plain http only to this machine), got {url!r}"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _identifiers(where: str, platform: str, raw: object) -> tuple[tuple[str, str], ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw:
        raise AudienceConfigError(
            where, "'identifiers' must map API identifiers to record fields, e.g. {idfv: idfv}"
        )
    accepted = accepted_identifiers(platform)
    pairs: list[tuple[str, str]] = []
    for api_field, record_field in raw.items():
        if api_field not in IDENTIFIER_FIELDS:
            raise AudienceConfigError(
                where,
                f"'identifiers.{api_field}' is not an AppsFlyer identifier (one of: "
                f"{', '.join(IDENTIFIER_FIELDS)})",
            )
        if api_field not in accepted:
            raise AudienceConfigError(
                where,
                f"'identifiers.{api_field}' is not accepted for {platform} audiences "
                f"({platform} takes: {', '.join(accepted)})",
            )
        if not isinstance(record_field, str) or not record_field:
            raise AudienceConfigError(
                where, f"'identifiers.{api_field}' must name a record field (a string)"
            )
        pairs.append((api_field, record_field))
    if not any(api in DEVICE_IDENTIFIERS[platform] for api, _ in pairs):
        raise AudienceConfigError(
            where,
            f"'identifiers' has only contact identifiers ({', '.join(CONTACT_IDENTIFIERS)}); "
            f"AppsFlyer needs a device identifier too: one of "
            f"{', '.join(DEVICE_IDENTIFIERS[platform])}",
        )
    return tuple(pairs)


def _text(where: str, entry: Mapping[str, Any], name: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not value.strip():
        raise AudienceConfigError(where, f"'{name}' is required (a non-empty string)")
    return value.strip()


def _audience(index: int, entry: object, default_mode: str) -> AudienceMapping:
    if not isinstance(entry, Mapping):
        raise AudienceConfigError(f"'audiences[{index}]'", "must be an object")
    stream = entry.get("stream")
    if not isinstance(stream, str) or not stream:
        raise AudienceConfigError(f"'audiences[{index}]'", "'stream' is required")
    where = f"audience for stream '{stream}'"
    platform = entry.get("platform")
    if platform not in PLATFORMS:
        raise AudienceConfigError(where, f"'platform' must be ios or android (got {platform!r})")
    mode = entry.get("mode") or default_mode
    if mode not in MODES:
        raise AudienceConfigError(where, f"'mode' must be one of {', '.join(MODES)}")
    return AudienceMapping(
        stream=stream,
        import_key=_text(where, entry, "import_key"),
        platform=platform,
        app_id=_text(where, entry, "app_id"),
        mode=mode,
        identifiers=_identifiers(where, platform, entry.get("identifiers")),
    )


def parse_settings(config: Mapping[str, Any]) -> TargetSettings:
    """Check ``config`` and return the settings; raise ``AudienceConfigError`` otherwise."""
    token = config.get("api_token")
    if not isinstance(token, str) or not token.strip():
        raise AudienceConfigError("'api_token'", "is required (the V2 API token)")
    mode = config.get("mode") or "mirror"
    if mode not in MODES:
        raise AudienceConfigError("'mode'", f"must be one of {', '.join(MODES)} (got {mode!r})")
    raw_audiences = config.get("audiences")
    if not isinstance(raw_audiences, list) or not raw_audiences:
        raise AudienceConfigError(
            "'audiences'", "is required: a list of {stream, import_key, platform, app_id}"
        )
    audiences = tuple(_audience(i, entry, mode) for i, entry in enumerate(raw_audiences))
    for attribute in ("stream", "import_key"):
        seen: set[str] = set()
        for audience in audiences:
            value = getattr(audience, attribute)
            if value in seen:
                raise AudienceConfigError(
                    audience.where,
                    f"'{attribute}' {value!r} is used by two audiences; one stream feeds one "
                    "audience, and two streams mirrored into one audience would undo each other",
                )
            seen.add(value)
    store = config.get("membership_store")
    if store is not None and (not isinstance(store, str) or not store.strip()):
        raise AudienceConfigError("'membership_store'", "must be a file path or postgresql:// URL")
    removal = _positive(config, "max_removal_percent", 100, zero=True)
    if removal > 100:
        raise AudienceConfigError("'max_removal_percent'", f"must be 0-100 (got {removal})")
    code = config.get("phone_country_code")
    if code is not None:
        code = str(code).lstrip("+")
        if not code.isdigit() or not 1 <= len(code) <= 3:
            raise AudienceConfigError(
                "'phone_country_code'", f"must be 1-3 digits, e.g. 1 or 44 (got {code!r})"
            )
    return TargetSettings(
        api_token=token.strip(),
        api_url=_check_api_url(str(config.get("api_url") or DEFAULT_API_URL)),
        audiences=audiences,
        membership_store=store.strip() if isinstance(store, str) else None,
        max_devices_per_request=_positive(
            config, "max_devices_per_request", DEFAULT_MAX_DEVICES_PER_REQUEST
        ),
        requests_per_minute=_positive(config, "requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE),
        max_retries=_positive(config, "max_retries", 8, zero=True),
        request_timeout=_positive(config, "request_timeout", 120),
        max_removal_percent=removal,
        hashing=HashingRules(
            hash_emails=config.get("hash_emails", True) is not False,
            hash_phones=config.get("hash_phones", True) is not False,
            phone_country_code=code,
        ),
    )
