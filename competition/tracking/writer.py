"""One tracking writer per workspace: pending runs are logged to MLflow by one process at a time.

The submission path stays light and fast: :func:`queue_run` writes the run to
``WORKSPACE/tracking/pending/`` (:class:`~competition.tracking.pending.PendingRuns`, no mlflow)
and, unless a writer holds ``WORKSPACE/tracking/writer.lock``, starts one detached drainer
(``python -m competition.tracking.writer WORKSPACE``) that inherits the lock, logs every
pending run oldest first and exits.  ``ships serve`` instead runs a :class:`TrackingWriter`
thread that holds the lock for the server's lifetime, so uploads start no process at all.

A file is deleted only once its run is logged (and a run already logged under its
submission id is not logged twice).  A store that does not answer leaves its runs pending, with
one line in ``WORKSPACE/tracking.log`` per pass; a run the store refuses counts one attempt and,
after :data:`~competition.tracking.pending.MAX_ATTEMPTS`, moves to ``tracking/failed/``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from competition.errors import TrackingError
from competition.tracking.client import ensure_store
from competition.tracking.drain import drain_pending
from competition.tracking.lock import release, try_lock
from competition.tracking.pending import PendingRuns, describe

__all__ = ["submission_run", "queue_run", "start_writer", "TrackingWriter", "main"]

_PROJECT = Path(__file__).resolve().parents[2]
_SERVE_ROLE = "ships serve (tracking writer)"


def submission_run(ws, result, message: str) -> dict:
    """The MLflow run of a scored submission (a ``SubmitResult``): what the team is shown, and tags."""
    record = result.record
    return {"team": record.team, "message": message, "file_sha256": result.file_sha256,
            "split_hash": ws.split_hash, "public": result.shown, "submission_id": record.id, "kind": record.kind}


def queue_run(root: Path, uri: str, run: dict, *, start: bool = True) -> Path | None:
    """Queue ``run`` for the store at ``uri`` and make sure a writer will log it (no mlflow import).

    Returns the pending file, or None when it could not be written (the reason goes to
    ``tracking.log``; the submission itself is recorded already).
    """
    queue = PendingRuns(root)
    try:
        path = queue.add(uri, run)
    except OSError as exc:
        _try_log(queue, f"{describe({'run': run})} was scored and stored but its MLflow run could not be queued in "
                        f"{queue.pending_dir}: {exc}; free disk space or fix the folder's permissions")
        return None
    if start:
        try:
            start_writer(root)
        except OSError as exc:
            _try_log(queue, f"could not start the tracking writer for {queue.pending_dir}: {exc}; the pending runs "
                            "stay there and are logged by the next `ships score` or by `ships serve`")
    return path


def start_writer(root: Path) -> subprocess.Popen | None:
    """Start a detached drainer of ``root``'s pending runs unless a writer holds the lock.

    The lock is taken here and handed to the child, so concurrent callers start one child
    between them.  Returns the child (callers need not wait), or None when a writer is at work.
    """
    queue = PendingRuns(root)
    fd = try_lock(queue.lock_path, role="tracking writer (starting)")
    if fd is None:
        return None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(_PROJECT), os.environ.get("PYTHONPATH")) if p)}
    try:
        with open(queue.log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "competition.tracking.writer", str(queue.root), "--lock-fd", str(fd)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(fd,), env=env, start_new_session=True)
    finally:
        os.close(fd)  # the child holds the lock now; if it did not start, the lock is free again


class TrackingWriter:
    """The writer of a workspace's pending runs for as long as a server runs (one thread).

    It holds the writer lock from :meth:`start` to :meth:`stop` (waiting for it if another
    writer holds it), sets up ``uri``'s store first, then looks for pending runs every
    ``poll_s`` seconds; after a pass with failures it waits ``retry_s``, doubling up to
    ``max_retry_s``, before the next one.
    """

    def __init__(self, root: Path, *, uri: str | None = None, poll_s: float = 1.0, retry_s: float = 5.0,
                 max_retry_s: float = 120.0):
        self.queue = PendingRuns(root)
        self.uri, self.poll_s, self.retry_s, self.max_retry_s = uri, poll_s, retry_s, max_retry_s
        self._fd: int | None = None
        self._stop = threading.Event()
        self._holding = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ships-tracking-writer", daemon=True)

    def __repr__(self) -> str:
        return f"TrackingWriter({str(self.queue.root)!r})"

    @property
    def holding(self) -> bool:
        """Whether this writer holds the workspace's lock now."""
        return self._holding.is_set()

    def start(self) -> "TrackingWriter":
        """Start the thread; the lock is taken here already when it is free (so no upload starts a process)."""
        self._fd = try_lock(self.queue.lock_path, role=_SERVE_ROLE)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the run being logged, and release the lock."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        fd = self._fd
        while fd is None and not self._stop.is_set():  # another writer is at work: wait for it
            self._stop.wait(self.poll_s)
            fd = try_lock(self.queue.lock_path, role=_SERVE_ROLE)
        if fd is None:
            return
        self._holding.set()
        try:
            self._serve()
        finally:
            self._holding.clear()
            release(fd)

    def _serve(self) -> None:
        if self.uri is not None:
            # Before another process needs it (`ships cv` on the same store); a failure here is
            # logged by the first pass, against the runs it keeps pending.
            with contextlib.suppress(TrackingError):
                ensure_store(self.uri, held=self.queue.lock_path)
        retry, next_pass = self.retry_s, 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_pass and self.queue.paths():
                report = drain_pending(self.queue, should_stop=self._stop.is_set)
                if report.healthy:
                    retry, next_pass = self.retry_s, 0.0
                else:
                    next_pass, retry = time.monotonic() + retry, min(retry * 2, self.max_retry_s)
            self._stop.wait(self.poll_s)


def main(argv: list[str] | None = None) -> int:
    """The detached drainer: log the pending runs of a workspace, then exit."""
    parser = argparse.ArgumentParser(prog="python -m competition.tracking.writer", description=main.__doc__)
    parser.add_argument("workspace", type=Path, help="The workspace whose tracking/pending/ runs to log.")
    parser.add_argument("--lock-fd", type=int, default=None, help="The writer lock, already taken by the parent.")
    args = parser.parse_args(argv)
    queue = PendingRuns(args.workspace)
    fd = args.lock_fd if args.lock_fd is not None else try_lock(queue.lock_path, role="tracking writer")
    seen: set = set()
    while fd is not None:
        _claim(fd)
        try:
            while True:
                report = drain_pending(queue)
                seen |= report.seen
                if not report.healthy or not _unseen(queue, seen):
                    break
        finally:
            release(fd)
        # A run queued while the lock was held here was left to this process: take it over.
        fd = try_lock(queue.lock_path, role="tracking writer") if _unseen(queue, seen) else None
    return 0


def _unseen(queue: PendingRuns, seen: set) -> bool:
    return any(path.name not in seen for path in queue.paths())


def _claim(fd: int) -> None:
    """Write this process's id into the lock file (it names the holder in messages)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} tracking writer".encode(), 0)


def _try_log(queue: PendingRuns, message: str) -> None:
    with contextlib.suppress(OSError):  # nowhere left to say it; the submission is recorded all the same
        queue.log(message)


if __name__ == "__main__":
    sys.exit(main())
