"""Fast Singer output for records the tap builds already typed.

singer-sdk spends most of a record's time on work this tap does not need per record:
pruning deselected properties, type conformance, stream-map dispatch, a clock read, and a
flush of stdout after every message. Those are decided once per stream here; when the
catalog selects every property and no stream map or flattening is configured, records go
straight to the writer. Otherwise the SDK's own path runs unchanged.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.messages import Message


class RecordBufferedWriter(MsgSpecWriter):
    """msgspec writer that batches RECORD lines and flushes stdout at every other message.

    Records wait in memory (at most ``BATCH_BYTES``) until the next STATE, which is written
    after each window, so a killed run loses only records whose STATE was never seen: the
    rerun sends them again.
    """

    BATCH_BYTES = 1 << 16

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        self._encoder = msgspec.json.Encoder(decimal_format="number")

    def write_record(
        self, stream: str, record: dict[str, Any], version: int | None, extracted: datetime
    ) -> None:
        """Queue one RECORD line, the same JSON the SDK's RecordMessage would give."""
        message: dict[str, Any] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            message["version"] = version
        message["time_extracted"] = extracted
        self._encoder.encode_into(message, self._pending, -1)
        self._pending += b"\n"
        if len(self._pending) >= self.BATCH_BYTES:
            self.drain()

    def drain(self) -> None:
        """Hand queued records to stdout (without flushing it)."""
        if self._pending:
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()

    def write_message(self, message: Message) -> None:
        """Write one message after the queued records; flush unless it is a record."""
        self.drain()
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()

    def close(self) -> None:
        """Write out what is queued (end of run, or an error on the way)."""
        self.drain()
        sys.stdout.flush()


def plain_output(stream: Any) -> bool:
    """True when the SDK's per-record work would not change any record of ``stream``."""
    maps = stream.stream_maps
    if len(maps) != 1 or type(maps[0]) is not SameRecordTransform:
        return False
    if maps[0].flattening_enabled or maps[0].stream_alias != stream.name:
        return False
    mask = stream.mask
    return all(mask[("properties", name)] for name in stream.schema["properties"])
