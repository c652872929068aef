"""The HTTP face of the sandbox: auth, rate limits, faults, latency and the request log.

Built on ``http.server.ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive, so a
``requests.Session`` reuses one connection and the sandbox is never the bottleneck.
"""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
import socket
import struct
import sys
import threading
import time
from collections import deque
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

from tap_appsflyer_cohort.sandbox.account import Account
from tap_appsflyer_cohort.sandbox.api import CohortApi, Reply, error_reply, json_reply
from tap_appsflyer_cohort.sandbox.audiences import PREFIX as AUDIENCES_PREFIX
from tap_appsflyer_cohort.sandbox.audiences import AudiencesApi
from tap_appsflyer_cohort.sandbox.catalog import stable_seed
from tap_appsflyer_cohort.sandbox.faults import (
    HTML_PAGE,
    STATUS_FAULTS,
    Fault,
    cut_mid_row,
    parse_fault,
)
from tap_appsflyer_cohort.sandbox.limits import RateLimiter
from tap_appsflyer_cohort.sandbox.options import RequestRecord, SandboxOptions
from tap_appsflyer_cohort.sandbox.render import ColumnEdit

_ENDPOINT = re.compile(r"^/api/cohorts/v1/data/app/([^/]+)$")
MIN_TOKEN_LENGTH = 760


def generate_token() -> str:
    """Return a random JWT-shaped token (three base64url parts), 760+ characters long."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {
        "iss": "sandbox.appsflyer.local",
        "api": "v2",
        "jti": secrets.token_hex(16),
        "scope": "cohort_api",
        "nonce": secrets.token_urlsafe(480),
    }
    token = f"{header}.{part(json.dumps(claims).encode())}.{part(secrets.token_bytes(32))}"
    assert len(token) >= MIN_TOKEN_LENGTH
    return token


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: SandboxServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (a killed tap); report anything else."""
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request, asks the sandbox for a reply, writes it (or breaks it)."""

    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def setup(self) -> None:
        """Disable Nagle: headers and body go out in separate writes on a kept-alive socket."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:  # the name http.server dispatches to
        """Handle the one real endpoint."""
        self._handle()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own access log (the sandbox keeps its own)."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        started = time.perf_counter()
        reply, transport, delay = self.server.sandbox.dispatch(
            self.command, self.path, self.headers.get("Authorization"), raw, started
        )
        if delay > 0:
            time.sleep(delay)
        if transport == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if transport == "truncate":
            self.send_header("Connection", "close")
        self.end_headers()
        if transport == "truncate":
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(reply.body)


class SandboxServer:
    """A local simulator of the Cohort API on a loopback port."""

    def __init__(
        self, options: SandboxOptions | None = None, *, log_stream: TextIO | None = None
    ) -> None:
        self.options = options or SandboxOptions()
        self.token = self.options.token or generate_token()
        self.account = Account(self.options.seed, self.options.scale)
        self._api = CohortApi(self.account, self.options)
        #: The Audiences Import API V2 on the same port and token (``sandbox/audiences.py``).
        self.audiences = AudiencesApi(self.token)
        self._limiter = RateLimiter()
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._script: deque[Fault] = deque()
        self._fault_rng = random.Random(stable_seed(self.options.seed, "faults"))
        self._latency_rng = random.Random(stable_seed(self.options.seed, "latency"))
        self._shuffle_rng = random.Random(stable_seed(self.options.seed, "shuffle"))
        self._log_stream = log_stream
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind and serve in a daemon thread; returns self."""
        httpd = _HttpServer((self.options.host, self.options.port), _Handler)
        httpd.sandbox = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- clock -----------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The server's aware UTC "now" (fixed when ``options.today`` is set)."""
        if self.options.today is None:
            return datetime.now(timezone.utc)
        return datetime.combine(self.options.today, self.options.time_of_day, timezone.utc)

    @property
    def today(self) -> date:
        """The server's UTC date."""
        return self.now.date()

    def set_today(self, day: date) -> None:
        """Move the clock to ``day`` (the time of day is kept)."""
        self.options.today = day

    def set_now(self, moment: datetime) -> None:
        """Move the clock to an aware datetime."""
        if moment.tzinfo is None:
            raise ValueError("set_now needs an aware datetime")
        utc = moment.astimezone(timezone.utc)
        self.options.today = utc.date()
        self.options.time_of_day = utc.time().replace(tzinfo=None)

    # -- faults and log --------------------------------------------------------------

    def script(self, *faults: str) -> None:
        """Give the next calls these faults, one per call, in order."""
        parsed = [parse_fault(name) for name in faults]
        with self._lock:
            self._script.extend(parsed)

    @property
    def request_log(self) -> list[RequestRecord]:
        """A snapshot of every call so far."""
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        """Forget the calls logged so far."""
        with self._lock:
            self._log.clear()

    # -- answers ---------------------------------------------------------------------

    def answer(
        self, app_id: str, body: dict[str, Any], fmt: str = "csv"
    ) -> tuple[int, dict[str, str], bytes]:
        """Return the answer the HTTP layer would give, without limits, faults, shuffling or log."""
        reply = self._api.respond(app_id, {"format": fmt}, body, self.now)
        return reply.status, dict(reply.headers), reply.body

    def dispatch(
        self, method: str, target: str, authorization: str | None, raw: bytes, started: float
    ) -> tuple[Reply, str | None, float]:
        """Decide one call's reply, how to deliver it ("reset", "truncate") and its delay."""
        url = urlsplit(target)
        if url.path.startswith(AUDIENCES_PREFIX):
            return self.audiences.dispatch(method, url.path, authorization, raw)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        match = _ENDPOINT.match(url.path)
        app_id = unquote(match[1]) if match else None
        fault: Fault | None = None
        transport: str | None = None
        delay = self._latency()
        try:
            if match is None:
                reply = error_reply(404, "Not found")
            elif method != "POST":
                reply = error_reply(405, "Method not allowed", Allow="POST")
            elif authorization is None:
                reply = Reply(200)  # [V] no token at all: 200 with no data.
            elif authorization != f"Bearer {self.token}":
                reply = json_reply(401, "Authentication error")
            else:
                fault = self._next_fault()
                reply, transport, extra = self._authenticated(app_id or "", params, raw, fault)
                delay += extra
        except Exception as error:  # a sandbox bug must still answer
            reply = error_reply(500, f"sandbox error: {error!r}")
        self._record(
            method=method,
            path=url.path,
            app_id=app_id,
            params=params,
            raw=raw,
            reply=reply,
            fault=fault,
            started=started,
        )
        return reply, transport, delay

    def _authenticated(
        self, app_id: str, params: dict[str, str], raw: bytes, fault: Fault | None
    ) -> tuple[Reply, str | None, float]:
        """Apply a fault, then the rate limits, then the API itself."""
        edit = ColumnEdit()
        delay = 0.0
        if fault is not None:
            if fault.kind in STATUS_FAULTS:
                return _status_fault(fault), None, 0.0
            if fault.kind == "reset":
                return Reply(0), "reset", 0.0
            if fault.kind == "html":
                return Reply(200, {"Content-Type": "text/html; charset=utf-8"}, HTML_PAGE), None, 0
            if fault.kind == "empty":
                return Reply(200, {"Content-Type": "text/csv; charset=utf-8"}), None, 0.0
            delay = fault.seconds
            if fault.kind == "drop-column":
                edit.drop.add(fault.argument)
            elif fault.kind == "rename-column":
                old, new = fault.renamed
                edit.rename[old] = new
        now = self.now
        retry_after = self._limiter.admit(
            self.token,
            self.options.requests_per_minute,
            self.options.requests_per_day,
            time.monotonic(),
            now,
        )
        if retry_after is not None:
            reply = error_reply(429, "Too many requests", **{"Retry-After": str(retry_after)})
            return reply, None, delay
        shuffle = None
        if self.options.shuffle_columns:
            with self._lock:
                shuffle = random.Random(self._shuffle_rng.getrandbits(64))
        reply = self._api.respond(app_id, params, raw, now, edit=edit or None, shuffle=shuffle)
        if fault is not None and fault.kind == "truncate-silent" and reply.status == 200:
            reply.body = cut_mid_row(reply.body)
        transport = "truncate" if fault is not None and fault.kind == "truncate" else None
        return reply, transport, delay

    def _next_fault(self) -> Fault | None:
        """Pop the next scripted fault, else draw a random one drawn from the configured rates."""
        options = self.options
        with self._lock:
            if self._script:
                return self._script.popleft()
            if not (options.error_rate or options.reset_rate or options.truncate_rate) and not (
                options.html_rate
            ):
                return None
            draw = self._fault_rng.random()
            status = self._fault_rng.choice(("500", "502", "503"))
        for rate, name in (
            (options.error_rate, status),
            (options.reset_rate, "reset"),
            (options.truncate_rate, "truncate"),
            (options.html_rate, "html"),
        ):
            if draw < rate:
                return parse_fault(name)
            draw -= rate
        return None

    def _latency(self) -> float:
        jitter = self.options.latency_jitter
        if jitter <= 0:
            return self.options.latency
        with self._lock:
            return self.options.latency + self._latency_rng.uniform(0, jitter)

    def _record(
        self,
        *,
        method: str,
        path: str,
        app_id: str | None,
        params: dict[str, str],
        raw: bytes,
        reply: Reply,
        fault: Fault | None,
        started: float,
    ) -> None:
        body = reply.parsed_body
        if body is None and raw:
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = None
            body = decoded if isinstance(decoded, dict) else None
        record = RequestRecord(
            at=self.now,
            method=method,
            path=path,
            app_id=app_id,
            query=params,
            body=body,
            status=reply.status,
            rows=reply.rows,
            fault=fault.name if fault else None,
        )
        with self._lock:
            self._log.append(record)
        if self._log_stream is not None:
            elapsed = (time.perf_counter() - started) * 1000
            shown = "RESET" if reply.status == 0 else str(reply.status)
            suffix = f" fault={fault.name}" if fault else ""
            line = f"{method} {app_id or path} {shown} rows={reply.rows} {elapsed:.1f}ms{suffix}"
            print(line, file=self._log_stream, flush=True)


def _status_fault(fault: Fault) -> Reply:
    if fault.kind.startswith("429"):
        extra = {} if fault.kind == "429-bare" else {"Retry-After": "1"}
        return error_reply(429, "Too many requests", **extra)
    messages = {"500": "Internal Server Error", "502": "Bad Gateway", "503": "Service Unavailable"}
    return error_reply(int(fault.kind), messages[fault.kind])
