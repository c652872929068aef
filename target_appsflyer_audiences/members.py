"""From a record to an audience member: its key, its device payload, and what was refused.

A member is one device as the API takes it: ``app_id`` plus every mapped identifier the
record has, normalised. Its *key* is its first device identifier in the mapping's order
(``"idfv:6f1c..."``): the key is what deduplicates members within a run, what the diff
compares across runs, and the one identifier a ``remove`` carries (the API refuses removals
with more than one). The *fingerprint* changes whenever anything sent for the member
changes, so an edited e-mail is sent again although the key is the same.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from target_appsflyer_audiences.contract import DEVICE_IDENTIFIERS
from target_appsflyer_audiences.identifiers import Normaliser, Refusal

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Member:
    """One device to send; ``device`` is its JSON object, ready for a request body."""

    key: str
    fingerprint: int
    device: str
    #: Every device identifier of the member as ``field:value`` (the key among them).
    device_ids: tuple[str, ...]


@dataclass
class IntakeCounts:
    """What became of a stream's records (the summary line reports these)."""

    records: int = 0
    #: Records with no usable device identifier: never sent.
    skipped: int = 0
    #: Values refused per API field (malformed, or all-zero ids).
    invalid: Counter[str] = field(default_factory=Counter)
    zero: Counter[str] = field(default_factory=Counter)


def fingerprint(device: bytes) -> int:
    """A signed 64-bit digest of the payload (fits SQLite INTEGER and PostgreSQL bigint)."""
    return int.from_bytes(hashlib.blake2b(device, digest_size=8).digest(), "big", signed=True)


def member_key(api_field: str, value: str) -> str:
    """The key spelling shared by members, the staging table and the membership store."""
    return f"{api_field}:{value}"


def split_key(key: str) -> tuple[str, str]:
    """``"idfv:abc"`` -> ("idfv", "abc")."""
    api_field, _, value = key.partition(":")
    return api_field, value


class MemberBuilder:
    """Turns records of one stream into members, counting what it refuses."""

    def __init__(
        self,
        app_id: str,
        platform: str,
        identifiers: tuple[tuple[str, str], ...],
        normaliser: Normaliser,
        counts: IntakeCounts,
    ) -> None:
        self.app_id = app_id
        self.identifiers = identifiers
        self._device_fields = frozenset(DEVICE_IDENTIFIERS[platform])
        self._normalise = normaliser.normalise
        self.counts = counts

    def build(self, record: Mapping[str, Any]) -> Member | None:
        """The record's member, or None (counted as skipped) when it has no device id."""
        counts = self.counts
        counts.records += 1
        device: dict[str, str] = {"app_id": self.app_id}
        key: str | None = None
        device_ids: list[str] = []
        for api_field, record_field in self.identifiers:
            value = self._normalise(api_field, record.get(record_field))
            if isinstance(value, Refusal):
                if value is Refusal.INVALID:
                    counts.invalid[api_field] += 1
                elif value is Refusal.ZERO:
                    counts.zero[api_field] += 1
                continue
            device[api_field] = value
            if api_field in self._device_fields:
                spelled = member_key(api_field, value)
                device_ids.append(spelled)
                if key is None:
                    key = spelled
        if key is None:
            counts.skipped += 1
            return None
        payload = _encode(device)
        return Member(key, fingerprint(payload), payload.decode(), tuple(device_ids))
