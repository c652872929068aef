"""Identifier hygiene: each value is normalised to the one spelling AppsFlyer matches, or refused.

A warehouse column holds identifiers as people typed or SDKs logged them: upper-case
UUIDs, UUIDs without hyphens, the all-zero IDFA of a user who denied tracking, e-mails with
stray spaces, phone numbers with brackets. Sending them as they are would duplicate members
(the same IDFA in two spellings) or send identifiers that match nobody, so every value
passes through ``Normaliser.normalise`` first: it returns the canonical string, or a
``Refusal`` saying why the value is unusable (counted, never sent).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

_HEX32 = re.compile(r"[0-9a-f]{32}")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_OAID = re.compile(r"[0-9a-f-]{16,64}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE_JUNK = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_DIGITS = re.compile(r"[0-9]+")
#: [I] Free-text ids (cuid, braze_id, amplitude_id) longer than this are refused: no real
#: id is that long, and such a value is usually a mapped column of another kind.
MAX_TEXT_ID_LENGTH = 256


class Refusal(Enum):
    """Why a value was not used."""

    MISSING = "missing"  # null or blank: not counted as invalid
    INVALID = "invalid"
    ZERO = "all-zero"


@dataclass(frozen=True)
class HashingRules:
    """How personal data is prepared (settings ``hash_emails``, ``hash_phones`` ...)."""

    hash_emails: bool = True
    hash_phones: bool = True
    #: Calling code (digits, e.g. "1", "44") put before numbers written without one.
    phone_country_code: str | None = None


def _uuid(value: str) -> str | Refusal:
    """IDFA / IDFV / GAID: a UUID, lower-case with hyphens; all zeros is no id at all."""
    lowered = value.lower()
    if _CANONICAL_UUID.fullmatch(lowered):  # the usual spelling: one regex, no rebuild
        return Refusal.ZERO if lowered == _ZERO_UUID else lowered
    compact = lowered.replace("-", "")
    if len(compact) != 32 or not _HEX32.fullmatch(compact):
        return Refusal.INVALID
    if compact.strip("0") == "":
        return Refusal.ZERO
    return f"{compact[:8]}-{compact[8:12]}-{compact[12:16]}-{compact[16:20]}-{compact[20:]}"


def _oaid(value: str) -> str | Refusal:
    """OAID: vendors use UUIDs or 16-64 hex digits; lower-case, zeros refused."""
    lowered = value.lower()
    if not _OAID.fullmatch(lowered):
        return Refusal.INVALID
    if lowered.replace("-", "").strip("0") == "":
        return Refusal.ZERO
    return lowered


def _imei(value: str) -> str | Refusal:
    """IMEI: 14-16 digits (with or without check digit, or IMEISV), separators dropped."""
    digits = _PHONE_JUNK.sub("", value)
    if not _DIGITS.fullmatch(digits) or not 14 <= len(digits) <= 16:
        return Refusal.INVALID
    if digits.strip("0") == "":
        return Refusal.ZERO
    return digits


def _text_id(value: str) -> str | Refusal:
    """cuid, braze_id, amplitude_id: case-sensitive ids, only trimmed."""
    if len(value) > MAX_TEXT_ID_LENGTH or any(ord(c) < 32 for c in value):
        return Refusal.INVALID
    return value


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Normaliser:
    """Normalises one identifier kind's values; built once per run from the settings."""

    def __init__(self, rules: HashingRules | None = None) -> None:
        self.rules = rules or HashingRules()
        self._by_field: dict[str, Callable[[str], str | Refusal]] = {
            "idfa": _uuid,
            "idfv": _uuid,
            "gaid": _uuid,
            "oaid": _oaid,
            "imei": _imei,
            "cuid": _text_id,
            "braze_id": _text_id,
            "amplitude_id": _text_id,
            "emails": self._email,
            "phone": self._hashed_phone,
            "phone_e164": self._e164,
        }

    def normalise(self, field: str, raw: object) -> str | Refusal:
        """The canonical spelling of ``raw`` for API field ``field``, or why it is unusable."""
        if raw is None or isinstance(raw, bool):
            return Refusal.MISSING if raw is None else Refusal.INVALID
        if isinstance(raw, int):
            text = str(raw)  # amplitude_id and cuid are often integer columns
        elif isinstance(raw, str):
            text = raw.strip()
        else:
            return Refusal.INVALID  # floats, objects, arrays: no id has that shape
        if not text:
            return Refusal.MISSING
        return self._by_field[field](text)

    def _email(self, value: str) -> str | Refusal:
        """Trimmed, lower-cased, then SHA-256 (hex) unless ``hash_emails`` is off.

        [I] AppsFlyer's Audiences take e-mails hashed with SHA-256, as ad networks do: an
        unhashed e-mail would hand personal data to every connected partner. A value that is
        already a SHA-256 hex digest is passed through (lower-cased), never hashed twice.
        """
        lowered = value.lower()
        if _SHA256.fullmatch(lowered):
            return lowered if self.rules.hash_emails else Refusal.INVALID
        if not _EMAIL.fullmatch(lowered):
            return Refusal.INVALID
        return _sha256(lowered) if self.rules.hash_emails else lowered

    def _e164(self, value: str) -> str | Refusal:
        """E.164: ``+`` and 7-15 digits; ``00`` prefix and separators handled.

        A number without a calling code gets ``phone_country_code`` (its national trunk
        ``0`` dropped); without that setting it cannot be made E.164 and is refused.
        """
        cleaned = _PHONE_JUNK.sub("", value)
        if cleaned.startswith("00"):
            cleaned = "+" + cleaned[2:]
        if not cleaned.startswith("+"):
            code = self.rules.phone_country_code
            if code is None or not _DIGITS.fullmatch(cleaned):
                return Refusal.INVALID
            cleaned = f"+{code}{cleaned.removeprefix('0')}"
        return cleaned if _E164.fullmatch(cleaned) else Refusal.INVALID

    def _hashed_phone(self, value: str) -> str | Refusal:
        """``phone``: the E.164 number, SHA-256 hashed unless ``hash_phones`` is off.

        [I] The API has both ``phone`` and ``phone_e164``: we read ``phone_e164`` as the
        plain number in E.164 and ``phone`` as its hashed form (personal data, as e-mails).
        A SHA-256 hex digest is passed through.
        """
        lowered = value.lower()
        if _SHA256.fullmatch(lowered):
            return lowered if self.rules.hash_phones else Refusal.INVALID
        number = self._e164(value)
        if isinstance(number, Refusal):
            return number
        return _sha256(number) if self.rules.hash_phones else number
