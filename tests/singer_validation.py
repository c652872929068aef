"""Strict Singer message validation: every RECORD against its stream's SCHEMA, formats included.

Targets differ in how hard they look (target-jsonl checks types only, pipelinewise checks
nothing unless asked, singer-check-tap checks formats), so the tests use the strictest
reading: Draft 7 with jsonschema's ``FormatChecker``, where ``date`` is ``YYYY-MM-DD`` and
``date-time`` is RFC 3339 (offset required; checked only when ``rfc3339-validator`` is
installed, which ``strict_format_checker`` insists on, since jsonschema would otherwise skip
the check without a word).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft7Validator, FormatChecker

#: Formats the tap's schemas use; each must really be checked.
CHECKED_FORMATS = ("date", "date-time")


def strict_format_checker() -> FormatChecker:
    """A checker that really checks ``date`` and ``date-time`` (fail loudly otherwise)."""
    checker = FormatChecker()
    missing = [name for name in CHECKED_FORMATS if name not in checker.checkers]
    if missing:
        msg = f"jsonschema cannot check {missing}: install rfc3339-validator (dev extras)"
        raise RuntimeError(msg)
    return checker


def message_errors(messages: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Problems per stream: invalid schemas, records before their schema, invalid records.

    Each distinct problem is listed once per stream (with the first record showing it), so
    a systematic fault reads as one line, not thousands.
    """
    checker = strict_format_checker()
    validators: dict[str, Draft7Validator] = {}
    problems: dict[str, dict[str, str]] = {}

    def note(stream: str, text: str, kind: str | None = None) -> None:
        problems.setdefault(stream, {}).setdefault(kind or text, text)

    for message in messages:
        kind, stream = message.get("type"), message.get("stream", "")
        if kind == "SCHEMA":
            schema = message["schema"]
            for error in Draft7Validator(Draft7Validator.META_SCHEMA).iter_errors(schema):
                note(stream, f"invalid schema at {list(error.absolute_path)}: {error.message}")
            missing_keys = set(message.get("key_properties", [])) - set(schema["properties"])
            if missing_keys:
                note(stream, f"key properties not in the schema: {sorted(missing_keys)}")
            validators[stream] = Draft7Validator(schema, format_checker=checker)
        elif kind == "RECORD":
            validator = validators.get(stream)
            if validator is None:
                note(stream, "RECORD before its SCHEMA")
                continue
            record = message["record"]
            for error in validator.iter_errors(record):
                where = "/".join(str(p) for p in error.absolute_path) or "(record)"
                note(stream, f"{where}: {error.message}", f"{where}: {error.validator}")
            unknown = set(record) - set(validator.schema["properties"])
            if unknown:
                note(stream, f"properties not in the schema: {sorted(unknown)}")
    return {stream: list(found.values()) for stream, found in problems.items()}
