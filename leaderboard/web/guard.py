"""ASGI middleware around the web view: security headers, a time limit on request bodies, a clean close.

Every response gets the security headers (:data:`SECURITY_HEADERS`).  A request body must
arrive within ``body_timeout`` seconds of the request's start: a read past that raises
:class:`~leaderboard.web.form.UploadError` (408), which the upload routes answer.

A response sent before the request's body was read (a refusal from the headers alone: a
Content-Length above the limit, a wrong token, a used-up quota; or a 408) closes the
connection (``Connection: close``), so that an unread body is never parsed as a next
request.  Closing a socket with unread bytes makes the kernel send a reset, and a client
that sends its whole body before reading (Python's urllib, many scripts) would then get a
reset instead of the answer.  So when the body's declared length is at most ``drain_bytes``,
the answer is sent first and the rest of the body is read and thrown away (for at most
``drain_seconds``) before the response ends and the connection closes.  A client that
waits for ``100 Continue`` is not asked for its body; a chunked body, or one declared
larger than ``drain_bytes``, is not drained.
"""

from __future__ import annotations

import asyncio
import time

from leaderboard.web.form import UploadError

__all__ = ["SECURITY_HEADERS", "Guard"]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", b"default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                 b"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class _Body:
    """The request body as the app reads it: a deadline on each read, and what is left unread."""

    def __init__(self, scope, receive, timeout: float):
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length", b"")
        self.declared = int(length) if length.isdigit() and len(length) <= 18 else None
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        self.done = not chunked and not self.declared  # no body at all
        self.expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        self.asked = False  # the app called receive(): a client waiting for 100 Continue now sends
        self.timed_out = self.disconnected = False
        self.received = 0
        self._receive, self._timeout = receive, timeout
        self._deadline = time.monotonic() + timeout

    def _note(self, message) -> None:
        if message["type"] == "http.disconnect":
            self.disconnected = True
        elif message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.done = not message.get("more_body", False)

    async def receive(self):
        """The next message, within the body's time limit (408 after it)."""
        if self.done or self.disconnected:
            return await self._receive()
        self.asked = True
        try:
            message = await asyncio.wait_for(self._receive(), max(self._deadline - time.monotonic(), 0.001))
        except TimeoutError:
            self.timed_out = True
            raise UploadError(f"the request body did not arrive within {self._timeout:g} seconds "
                              f"({self.received:,} bytes came); send it again on a faster connection", 408) from None
        self._note(message)
        return message

    @property
    def unread(self) -> bool:
        return not (self.done or self.disconnected)

    def drainable(self, limit: int) -> bool:
        """True when reading the rest lets the client read the answer at a bounded cost."""
        return (self.unread and not self.timed_out and self.declared is not None and self.declared <= limit
                and (self.asked or not self.expects_continue))

    async def drain(self, seconds: float) -> None:
        """Read and discard the rest of the body, for at most ``seconds`` and within the body's time limit."""
        deadline = min(time.monotonic() + seconds, self._deadline)
        while self.unread:
            try:
                message = await asyncio.wait_for(self._receive(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                return
            self._note(message)


class Guard:
    """Security headers on every response; request bodies under a time limit; refused bodies drained.

    Parameters
    ----------
    app : ASGI app
    body_timeout : float
        Seconds from the start of a request within which its body must have arrived.
    drain_bytes : int
        The largest declared body that is read and discarded after an early answer.
    drain_seconds : float
        The longest time spent draining one body.
    """

    def __init__(self, app, *, body_timeout: float = 60.0, drain_bytes: int = 128 * 2**20,
                 drain_seconds: float = 10.0):
        self.app, self.body_timeout = app, body_timeout
        self.drain_bytes, self.drain_seconds = drain_bytes, drain_seconds

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body = _Body(scope, receive, self.body_timeout)

        async def guarded_send(message):
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *SECURITY_HEADERS]
                if body.unread:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and not message.get("more_body", False) \
                    and body.drainable(self.drain_bytes):
                await send({**message, "more_body": True})
                await body.drain(self.drain_seconds)
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, body.receive, guarded_send)
