"""The tracking writer's lock: one ``fcntl.flock`` file per workspace, ``WORKSPACE/tracking/writer.lock``.

Whoever holds it writes to the workspace's MLflow store: the drainer of pending runs
(:mod:`competition.tracking.writer`), or a process setting up a fresh ``sqlite:`` store
(:func:`competition.tracking.client.ensure_store`).  For a ``sqlite:///DIR/NAME.db`` store the
lock is ``DIR/tracking/writer.lock``, which for the workspace's own ``mlflow.db`` is the
workspace's lock.  The kernel releases a lock when its holder exits, however it exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["LOCK_NAME", "try_lock", "release", "holder", "wait_for_lock", "sqlite_path", "lock_path_for"]

LOCK_NAME = "writer.lock"


def try_lock(path: Path, role: str = "") -> int | None:
    """Take the lock at ``path`` without waiting: the locked descriptor, or None when another holds it.

    ``role`` (e.g. ``"ships serve"``) is written into the file with the process id, for messages.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} {role}".strip().encode(), 0)
    return fd


def release(fd: int) -> None:
    """Release a lock taken by :func:`try_lock` (closing its descriptor)."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def holder(path: Path) -> str:
    """Who holds (or last held) the lock, as written by :func:`try_lock`; "" if unknown."""
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return ""


def wait_for_lock(path: Path, *, timeout: float, role: str = "", done: Callable[[], bool] | None = None,
                  poll_s: float = 0.05) -> int | None:
    """Take the lock, waiting at most ``timeout`` seconds; None if ``done()`` became true first or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        fd = try_lock(path, role)
        if fd is not None:
            return fd
        if (done is not None and done()) or time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///PATH`` URI (absolute), None for any other store or an in-memory one."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).resolve()


def lock_path_for(uri: str) -> Path | None:
    """The writer lock that guards the set-up of a ``sqlite:`` store: ``DIR/tracking/writer.lock``."""
    db = sqlite_path(uri)
    return None if db is None else db.parent / "tracking" / LOCK_NAME
