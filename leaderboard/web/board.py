"""The leaderboard page and its JSON twin, built once per store revision and served from memory.

The ranked rows, the page's HTML and its JSON are built when ``Store.revision()`` changes
(any submission, rescore, team, final choice or finalize, whichever process made it) and
kept encoded, plain and gzipped, with an ETag.  Each is built by one thread at a time;
concurrent requests for it wait for that build instead of repeating it.

The revision is read at most once per ``revision_ttl`` seconds (0: on every request).  When
that reading is due, one request reads it (and rebuilds what changed) in a worker thread
while the others are served the last built body, so that serving never stalls behind the
database.  A write made through this app calls :meth:`BoardCache.invalidate`: until the
revision is read again, every request takes the exact path, so the writer sees its entry at
once.  A write made elsewhere (e.g. by the CLI) shows within ``revision_ttl`` seconds plus
the time to rebuild the page.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Body", "BoardCache", "accepts_gzip", "send_body"]


@dataclass(frozen=True)
class Body:
    """One encoded page: its bytes, the same gzipped, its media type and its ETag."""

    plain: bytes
    gzipped: bytes
    media_type: str
    etag: str


def accepts_gzip(request: Request) -> bool:
    """True if the client's Accept-Encoding allows gzip (a ``q=0`` refuses it)."""
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == "gzip":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def send_body(request: Request, body: Body) -> Response:
    """The body as a response: 304 when the client holds it, gzipped when the client accepts it."""
    headers = {"etag": body.etag, "vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == body.etag:
        return Response(status_code=304, headers=headers)
    if accepts_gzip(request):
        return Response(body.gzipped, media_type=body.media_type, headers={**headers, "content-encoding": "gzip"})
    return Response(body.plain, media_type=body.media_type, headers=headers)


class BoardCache:
    """Revision-keyed caches of the leaderboards and their encoded pages.

    Parameters
    ----------
    store : Store
    build : callable
        ``build(private, finalized_at, rows, fmt) -> (bytes, media_type)``: the page (fmt
        ``'html'``) or its JSON twin (``'json'``) of the rows of one board.
    revision_ttl : float
        Seconds during which a revision read is reused; 0 reads it on every request.
    """

    def __init__(self, store, build: Callable, revision_ttl: float):
        self.store, self._build, self.revision_ttl = store, build, float(revision_ttl)
        self._state: tuple[float, str, datetime | None] | None = None
        self._values: dict[tuple, tuple[str, object]] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()
        self._refreshing = False

    def invalidate(self) -> None:
        """Read the revision again before serving anything (after a write made through this app)."""
        self._state = None

    def state(self) -> tuple[str, datetime | None]:
        """The store's revision and its finalize time (None while open), at most ``revision_ttl`` old."""
        fresh = self._fresh_state()
        if fresh is not None:
            return fresh
        with self._lock_for(("state",)):
            fresh = self._fresh_state()
            if fresh is not None:
                return fresh
            checked = time.monotonic()
            revision = self.store.revision()
            finalized_at = self.cached(("finalized_at",), revision, self.store.finalized_at)
            self._state = (checked, revision, finalized_at)
            return revision, finalized_at

    def refreshed(self) -> None:
        """Called by the request that :meth:`peek` sent to refresh, once it is done (or failed)."""
        self._refreshing = False

    def _fresh_state(self) -> tuple[str, datetime | None] | None:
        state = self._state
        if state is None or time.monotonic() - state[0] >= self.revision_ttl:
            return None
        return state[1], state[2]

    def _lock_for(self, key: tuple) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def cached(self, key: tuple, revision: str, build: Callable[[], object]):
        """``build()``, computed once per revision (by one thread; the others wait for it)."""
        hit = self._values.get(key)
        if hit is not None and hit[0] == revision:
            return hit[1]
        with self._lock_for(key):
            hit = self._values.get(key)
            if hit is not None and hit[0] == revision:
                return hit[1]
            value = build()
            self._values[key] = (revision, value)
            return value

    def rows(self, revision: str, private: bool) -> list:
        """The ranked rows of one board (the store raises StoreError for Private before finalize)."""
        return self.cached(("rows", private), revision, lambda: self.store.leaderboard(private=private))

    def body(self, revision: str, finalized_at: datetime | None, private: bool, fmt: str) -> Body:
        """The encoded page (``fmt='html'``) or JSON twin of a board, built once per revision."""
        def build() -> Body:
            data, media_type = self._build(private, finalized_at, self.rows(revision, private), fmt)
            tag = hashlib.sha256(f"{revision}|{private}|{fmt}".encode()).hexdigest()[:20]
            return Body(data, gzip.compress(data, compresslevel=6, mtime=0), media_type, f'W/"{tag}"')

        return self.cached(("body", private, fmt), revision, build)

    def peek(self, private: bool | None, fmt: str) -> Body | None:
        """The body to send without any I/O, or None: then the caller takes the exact path.

        ``private=None`` asks for the default board (Private once finalized).  Returns the
        body built for the current revision while that reading is fresh.  Once it is due, the
        first caller gets None (it must read the revision in a worker thread and then call
        :meth:`refreshed`) and the others get the last built body meanwhile.  Always None
        with ``revision_ttl=0``, after :meth:`invalidate`, and before a first build.
        """
        state = self._state
        if self.revision_ttl <= 0 or state is None:
            return None
        checked, revision, finalized_at = state
        private = finalized_at is not None if private is None else private
        hit = self._values.get(("body", private, fmt))
        if hit is None or (private and finalized_at is None):
            return None
        if self._refreshing:
            return hit[1]
        if hit[0] == revision and time.monotonic() - checked < self.revision_ttl:
            return hit[1]
        self._refreshing = True
        return None
