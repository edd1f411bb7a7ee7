"""uvicorn's own HTTP protocol with deadlines for receiving a request, and JSON for the answers it gives itself.

uvicorn closes idle keep-alive sockets (``timeout_keep_alive``) but has no
deadline for a request while it is being received (encode/uvicorn#157): a
socket that sends nothing, half a head, or a head and no body stays open for
good, and with ``limit_concurrency`` such sockets lock everyone out. ASGI
middleware cannot help (it runs once the head is parsed). So this module
subclasses uvicorn's ``HttpToolsProtocol`` (the one uvicorn picks when
``httptools`` is installed, as ``uvicorn[standard]`` does) and adds, through
the same parser callbacks uvicorn uses, no parser of its own:

* a head deadline: the request line and headers must arrive within
  ``head_timeout_s`` of the connection opening (or of the next request's first
  byte on a keep-alive connection);
* a body deadline: the body may pause at most ``body_timeout_s`` between reads
  and must average ``min_upload_kb_s`` after its first ``body_timeout_s`` (so a
  one-byte-a-second trickle is cut off too, while a slow phone upload is not).

A socket that sent nothing is closed silently when its deadline passes; one
that sent part of a request is answered ``408`` JSON and closed. The same
deadline pattern is Go's ``ReadHeaderTimeout`` and nginx's
``client_header_timeout``/``client_body_timeout``.

It also answers as JSON ``{"error": ...}`` what uvicorn answers as plain text:
a malformed request (400) and the cap on requests in progress (503, uvicorn's
``limit_concurrency``, which counted idle and stalled sockets too). The cap
here counts requests in progress (uploads being received, photos being
labelled, WebSocket sessions, stream viewers: uvicorn's task set) and never
refuses ``GET /api/health``.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from aidentify.config import ServeLimits

log = logging.getLogger("aidentify.serve")

ALWAYS_ANSWERED = b"/api/health"  # a monitor must see the server alive even at the cap


def json_error_bytes(status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A whole HTTP/1.1 response ``{"error": message}`` that closes the connection, as bytes to write."""
    body = json.dumps({"error": message}).encode()
    lines = [STATUS_LINE[status], b"content-type: application/json\r\n",
             b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n"]
    lines += [name + b": " + value + b"\r\n" for name, value in headers]
    return b"".join(lines) + b"\r\n" + body


def busy_app(limit: int):
    """An ASGI app answering 503 JSON: ``limit`` requests are already in progress."""
    body = json.dumps({"error": f"the server is busy: {limit} requests in progress (limits.max_connections); "
                                "try again in a moment"}).encode()

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"), (b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines, a JSON 400/503 and a cap that spares health checks.

    Build it with :func:`protocol_class` (the limits are class attributes, as
    uvicorn instantiates the class itself) and pass it as ``http=`` to
    ``uvicorn.Config`` with ``limit_concurrency=None``.
    """

    limits: ServeLimits = ServeLimits()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit_concurrency = None  # uvicorn's own check (plain text, counting idle sockets) is replaced below
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = "head"  # head -> body -> answer -> idle (-> head on the next request) | websocket
        self._started = 0.0  # when the current phase started (loop time, seconds)
        self._last_read = 0.0
        self._received = 0  # body bytes of the current request
        self._got_bytes = False  # whether this request sent anything yet

    # ------------------------------------------------------------------ deadlines
    def _arm(self, delay: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(max(delay, 0.0), self._check_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._started = self.loop.time()
        self._arm(self.limits.head_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self._phase == "idle":  # the next request on a keep-alive connection: its own head deadline
            self._phase, self._started, self._got_bytes = "head", self.loop.time(), False
            self._arm(self.limits.head_timeout_s)
        self._got_bytes = self._got_bytes or bool(data)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        upgrade = self.parser.should_upgrade() and self._should_upgrade()
        if not upgrade:
            self._phase = "body"
            self._started = self._last_read = self.loop.time()
            self._received = 0
            self._arm(self.limits.body_timeout_s)
        if upgrade or not self._over_cap():
            super().on_headers_complete()
            return
        app, self.app = self.app, busy_app(self.limits.max_connections)
        try:
            super().on_headers_complete()  # uvicorn's own path, with the 503 app for this one request
        finally:
            self.app = app
        log.info("503: %d requests in progress", len(self.tasks))

    def on_body(self, body: bytes) -> None:
        self._received += len(body)
        self._last_read = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._phase == "body":  # received: no deadline while the app answers (it may have already)
            self._phase = "idle" if self.cycle is not None and self.cycle.response_complete else "answer"
            self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        if self._phase == "answer":
            self._phase = "idle"  # uvicorn's keep-alive timer takes over
        super().on_response_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        self._phase = "websocket"
        if self._over_cap():
            self.transport.write(json_error_bytes(503, "the server is busy: "
                                                  f"{self.limits.max_connections} requests in progress "
                                                  "(limits.max_connections); try again in a moment",
                                                  ((b"retry-after", b"1"),)))
            self.transport.close()
            return
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _body_due(self) -> float:
        """When the body in progress runs out of time (loop time): a pause, or too slow on average."""
        limits = self.limits
        due = self._last_read + limits.body_timeout_s
        if limits.min_upload_kb_s > 0:
            due = min(due, self._started + limits.body_timeout_s + self._received / (limits.min_upload_kb_s * 1000))
        return due

    def _check_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._phase not in ("head", "body"):
            return
        if self._phase == "body":
            due = self._body_due()
            if self.loop.time() < due:
                self._arm(due - self.loop.time())
                return
            what = (f"its body stopped ({self._received} bytes received; limits.body_timeout_s "
                    f"{self.limits.body_timeout_s:g} s, limits.min_upload_kb_s {self.limits.min_upload_kb_s:g})")
        else:
            what = f"its head did not arrive within limits.head_timeout_s ({self.limits.head_timeout_s:g} s)"
        self._expire(what)

    def _expire(self, what: str) -> None:
        """Close a socket whose request did not arrive in time; 408 JSON unless it sent nothing."""
        client = "%s:%d " % self.client if self.client else ""
        log.info("%sclosed: %s", client, what)
        cycle = self.cycle if self._phase == "body" else None
        if cycle is not None:  # the app waiting for this body is told the client is gone; its answer is dropped
            cycle.disconnected = True
            cycle.message_event.set()
        if self._got_bytes and (cycle is None or not cycle.response_started):
            self.transport.write(json_error_bytes(408, f"request not received in time: {what}"))
        self.transport.close()

    # ------------------------------------------------------------------ cap and errors
    def _over_cap(self) -> bool:
        if len(self.tasks) < self.limits.max_connections:
            return False
        try:
            path = httptools.parse_url(self.url).path
        except httptools.HttpParserInvalidURLError:
            return True
        return path != ALWAYS_ANSWERED

    def send_400_response(self, msg: str) -> None:
        self._disarm()
        self.transport.write(json_error_bytes(400, f"malformed HTTP request: {msg}"))
        self.transport.close()


def protocol_class(limits: ServeLimits) -> type[DeadlineProtocol]:
    """:class:`DeadlineProtocol` with these limits, for ``uvicorn.Config(http=...)``."""
    return type("ServeProtocol", (DeadlineProtocol,), {"limits": limits})
