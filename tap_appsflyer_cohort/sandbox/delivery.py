"""How an answer's bytes travel: framing, pace, and connections broken on purpose.

The framings are the three an HTTP/1.1 client must accept: ``Content-Length`` (the
default; a proxy that cut the body sends the length of what it kept), ``chunked``
transfer-encoding ending in a zero chunk, and close-delimited (no length, the end of the
body is the end of the connection). ``trickle`` sends the body a few bytes at a time, so
bytes keep coming and no read timeout between them ever fires.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tap_appsflyer_cohort.sandbox.api import Reply
from tap_appsflyer_cohort.sandbox.faults import Fault

CHUNK_SIZE = 16_384
#: A trickle writes about ten times a second.
TRICKLE_TICK = 0.1
#: Headers a replayed or canned answer may not set: the framing is ours to choose.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


@dataclass(frozen=True)
class Delivery:
    """The delivery stage of one call's fault."""

    #: "length", "chunked", "close-delimited" or "truncate" (the full length announced,
    #: half the body sent, then the connection closed).
    framing: str = "length"
    #: Bytes per second, or None for all at once.
    trickle: float | None = None
    reset: bool = False

    @classmethod
    def of(cls, fault: Fault | None) -> Delivery:
        """The delivery a fault asks for (plain delivery when there is none)."""
        if fault is None:
            return cls()
        framing = next(
            (k for k in ("chunked", "close-delimited", "truncate") if fault.has(k)), "length"
        )
        trickle = fault.find("trickle")
        rate = (trickle.number or 1.0) if trickle else None
        return cls(framing, rate, fault.has("reset"))


def deliver(
    handler: BaseHTTPRequestHandler, reply: Reply, delivery: Delivery, stopping: threading.Event
) -> None:
    """Write ``reply`` to the handler's connection as ``delivery`` says."""
    if delivery.reset:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True
        return
    headers = {k: v for k, v in reply.headers.items() if k.lower() not in FRAMING_HEADERS}
    handler.send_response_only(reply.status)
    handler.send_header("Server", handler.version_string())
    handler.send_header("Date", headers.pop("Date", "") or handler.date_time_string())
    for name, value in headers.items():
        handler.send_header(name, value)
    body = reply.body
    if delivery.framing in {"length", "truncate"}:
        handler.send_header("Content-Length", str(len(body)))
    if delivery.framing == "chunked":
        handler.send_header("Transfer-Encoding", "chunked")
    if delivery.framing in {"close-delimited", "truncate"}:
        handler.send_header("Connection", "close")
        handler.close_connection = True
    handler.end_headers()
    if delivery.framing == "truncate":
        body = body[: len(body) // 2]
    chunked = delivery.framing == "chunked"
    for piece, pause in _pieces(body, delivery.trickle, chunked):
        if pause and stopping.wait(pause):
            handler.close_connection = True  # the server is stopping: give up mid-body
            return
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    if chunked:
        handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def _pieces(body: bytes, rate: float | None, chunked: bool) -> list[tuple[bytes, float]]:
    """The body as (piece, pause before it) pairs."""
    if rate is None and not chunked:
        return [(body, 0.0)] if body else []
    if rate is None:
        return [(body[i : i + CHUNK_SIZE], 0.0) for i in range(0, len(body), CHUNK_SIZE)]
    size = max(1, int(rate * TRICKLE_TICK))
    pause = size / rate
    return [(body[i : i + size], pause) for i in range(0, len(body), size)]
