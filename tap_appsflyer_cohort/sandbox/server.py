"""The HTTP face of the sandbox: auth, replay, faults, rate limits, latency and the log.

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
import sys
import threading
import time
from collections import deque
from datetime import date, datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

from tap_appsflyer_cohort.sandbox.account import Account
from tap_appsflyer_cohort.sandbox.api import CohortApi, Reply, error_reply, json_reply
from tap_appsflyer_cohort.sandbox.audiences import PREFIX as AUDIENCES_PREFIX
from tap_appsflyer_cohort.sandbox.audiences import AudiencesApi
from tap_appsflyer_cohort.sandbox.canned import canned_reply
from tap_appsflyer_cohort.sandbox.catalog import stable_seed
from tap_appsflyer_cohort.sandbox.delivery import Delivery, deliver
from tap_appsflyer_cohort.sandbox.faults import Fault, parse_fault
from tap_appsflyer_cohort.sandbox.limits import RateLimiter
from tap_appsflyer_cohort.sandbox.options import RequestRecord, SandboxOptions
from tap_appsflyer_cohort.sandbox.quirks import QuirkError, apply_quirks
from tap_appsflyer_cohort.sandbox.render import ColumnEdit
from tap_appsflyer_cohort.sandbox.replay import Replay
from tap_appsflyer_cohort.sandbox.rules import (
    CallTraits,
    QuirkRule,
    RuleBook,
    make_rule,
    parse_rule,
)

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
        sandbox = self.server.sandbox
        reply, delivery, delay = sandbox.dispatch(
            self.command, self.path, self.headers.get("Authorization"), raw, started
        )
        if delay > 0 and sandbox.stopping.wait(delay):
            self.close_connection = True
            return
        deliver(self, reply, delivery, sandbox.stopping)


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
        self._rules = RuleBook([parse_rule(text) for text in self.options.quirks])
        self.replay = (
            Replay(self.options.replay_dir, self.options.replay_unmatched)
            if self.options.replay_dir is not None
            else None
        )
        #: Set by ``stop``: trickling answers and delays give up.
        self.stopping = threading.Event()
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
        self.stopping.clear()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (answers still being sent are cut)."""
        self.stopping.set()
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
        """Give the next calls these faults, one per call, in order (before any rule)."""
        parsed = [parse_fault(name) for name in faults]
        with self._lock:
            self._script.extend(parsed)

    def quirk(
        self,
        fault: str,
        *,
        kpi: str | None = None,
        app_id: str | None = None,
        fmt: str | None = None,
        times: int | None = None,
    ) -> QuirkRule:
        """Give ``fault`` to every call (or the first ``times``) of this KPI, app and format.

        Rules apply after the script, in the order added; the returned rule's ``used``
        counts the calls it took. See ``sandbox.rules``.
        """
        return self._rules.add(make_rule(fault, kpi=kpi, app_id=app_id, fmt=fmt, times=times))

    @property
    def quirk_rules(self) -> list[QuirkRule]:
        """The rules in force (from ``options.quirks`` and ``quirk``)."""
        return self._rules.rules

    def clear_quirks(self) -> None:
        """Drop every rule (the script is kept)."""
        self._rules.clear()

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
        self,
        app_id: str,
        body: dict[str, Any],
        fmt: str = "csv",
        *,
        as_of: str = "now",
        quirk: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Return the answer the HTTP layer would give, without limits, shuffling or log.

        ``as_of="final"``: settling values (``settling_days``) as they will end up;
        ``quirk``: the bytes a fault's replace, edit, row and byte steps make of it.
        """
        fault = parse_fault(quirk) if quirk else None
        replacing = fault.stage("replace") if fault else ()
        if replacing:
            reply = canned_reply(replacing[0], self.now)
        else:
            params = {"format": fmt}
            edit = _column_edit(fault)
            reply = self._api.respond(app_id, params, body, self.now, edit=edit, as_of=as_of)
            self._apply_quirks(reply, params, fault)
        return reply.status, dict(reply.headers), reply.body

    def dispatch(
        self, method: str, target: str, authorization: str | None, raw: bytes, started: float
    ) -> tuple[Reply, Delivery, float]:
        """Decide one call's reply, how its bytes travel, and the silence before them."""
        url = urlsplit(target)
        if url.path.startswith(AUDIENCES_PREFIX):
            reply, transport, seconds = self.audiences.dispatch(
                method, url.path, authorization, raw
            )
            return reply, Delivery(reset=transport == "reset"), seconds
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        match = _ENDPOINT.match(url.path)
        app_id = unquote(match[1]) if match else None
        fault: Fault | None = None
        replayed: str | None = None
        delivery = Delivery()
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
            elif case := self.replay.pick(app_id or "", params, raw) if self.replay else None:
                reply, replayed = case.reply(), case.name
                delivery = Delivery.of(case.delivery)
                delay += case.delivery.seconds if case.delivery else 0.0
            elif self.replay is not None and self.replay.unmatched == "404":
                reply = self.replay.unmatched_reply(app_id or "", params)
            else:
                fault = self._next_fault(app_id or "", params, raw)
                reply = self._authenticated(app_id or "", params, raw, fault)
                delivery = Delivery.of(fault)
                delay += fault.seconds if fault else 0.0
        except QuirkError as error:  # a quirk that cannot apply to this answer
            reply, delivery = error_reply(500, f"sandbox error: {error}"), Delivery()
        except Exception as error:  # a sandbox bug must still answer
            reply, delivery = error_reply(500, f"sandbox error: {error!r}"), Delivery()
        reply.headers.setdefault("Date", formatdate(self.now.timestamp(), usegmt=True))
        self._record(
            method=method,
            path=url.path,
            app_id=app_id,
            params=params,
            raw=raw,
            reply=reply,
            fault=fault,
            replayed=replayed,
            started=started,
        )
        return reply, delivery, delay

    def _authenticated(
        self, app_id: str, params: dict[str, str], raw: bytes, fault: Fault | None
    ) -> Reply:
        """Apply a fault's canned answer, else the rate limits, the API and the quirks."""
        replacing = fault.stage("replace") if fault else ()
        if replacing:
            return canned_reply(replacing[0], self.now)
        now = self.now
        retry_after = self._limiter.admit(
            self.token,
            self.options.requests_per_minute,
            self.options.requests_per_day,
            time.monotonic(),
            now,
        )
        if retry_after is not None:
            return error_reply(429, "Too many requests", **{"Retry-After": str(retry_after)})
        shuffle = None
        if self.options.shuffle_columns:
            with self._lock:
                shuffle = random.Random(self._shuffle_rng.getrandbits(64))
        edit = _column_edit(fault)
        reply = self._api.respond(app_id, params, raw, now, edit=edit, shuffle=shuffle)
        self._apply_quirks(reply, params, fault)
        return reply

    @staticmethod
    def _apply_quirks(reply: Reply, params: dict[str, str], fault: Fault | None) -> None:
        """Change a 200 answer's body by the fault's row and byte steps."""
        if fault is None or reply.status != 200:
            return
        if fault.stage("rows") or fault.stage("bytes"):
            fmt = params.get("format", "csv")
            reply.body = apply_quirks(reply.body, fmt, fault, reply.columns)

    def _next_fault(self, app_id: str, params: dict[str, str], raw: bytes) -> Fault | None:
        """The next scripted fault, else a rule's, else one drawn from the random rates."""
        options = self.options
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self._rules.rules:
            fault = self._rules.take(CallTraits.of(app_id, params, raw))
            if fault is not None:
                return fault
        with self._lock:
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
        replayed: str | None,
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
            replayed=replayed,
        )
        with self._lock:
            self._log.append(record)
        if self._log_stream is not None:
            elapsed = (time.perf_counter() - started) * 1000
            shown = "RESET" if reply.status == 0 else str(reply.status)
            suffix = f" fault={fault.name}" if fault else ""
            suffix += f" replayed={replayed}" if replayed else ""
            line = f"{method} {app_id or path} {shown} rows={reply.rows} {elapsed:.1f}ms{suffix}"
            print(line, file=self._log_stream, flush=True)


def _column_edit(fault: Fault | None) -> ColumnEdit | None:
    """The columns a fault's edit steps leave out or rename."""
    if fault is None or not fault.stage("edit"):
        return None
    edit = ColumnEdit()
    for step in fault.stage("edit"):
        if step.kind == "drop-column":
            edit.drop.add(step.argument)
        else:
            old, new = step.renamed
            edit.rename[old] = new
    return edit
