"""The durable queue of runs waiting for MLflow: one JSON file per run under ``WORKSPACE/tracking/``.

::

    WORKSPACE/tracking/pending/NNN-PID-RAND.json   a run to log: {"uri", "run", "queued_at", "attempts", "error"}
    WORKSPACE/tracking/failed/                     runs given up after MAX_ATTEMPTS failures (move back to retry)
    WORKSPACE/tracking/writer.lock                 held by the one writer (competition.tracking.lock)
    WORKSPACE/tracking.log                         one line per failure, drop or give-up

Adding a run is cheap (no mlflow): an atomic write of a small file whose name sorts by
time, so the writer takes the oldest first.  The queue is bounded: beyond ``max_pending``
files the oldest is dropped, with a line in the log (its score stays in the leaderboard store).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path

from competition.tracking.lock import LOCK_NAME

__all__ = ["PendingRuns", "MAX_PENDING", "MAX_ATTEMPTS", "describe"]

MAX_PENDING = 10_000
MAX_ATTEMPTS = 5


class PendingRuns:
    """The pending runs of one workspace.

    Parameters
    ----------
    root : Path
        The workspace folder.
    max_pending : int
        At most this many pending files; adding one more drops the oldest.
    """

    def __init__(self, root: Path, *, max_pending: int = MAX_PENDING):
        self.root = Path(root)
        self.folder = self.root / "tracking"
        self.pending_dir = self.folder / "pending"
        self.failed_dir = self.folder / "failed"
        self.lock_path = self.folder / LOCK_NAME
        self.log_path = self.root / "tracking.log"
        self.max_pending = max_pending

    def __repr__(self) -> str:
        return f"PendingRuns({str(self.root)!r})"

    def add(self, uri: str, run: dict) -> Path:
        """Queue ``run`` (the keyword arguments of ``Tracker.log_submission``) for the store at ``uri``."""
        job = {"uri": uri, "run": run, "queued_at": _now(), "attempts": 0, "error": None}
        path = self.pending_dir / f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.json"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        _write_json(path, job)
        self._drop_beyond_cap()
        return path

    def paths(self) -> list[Path]:
        """The pending files, oldest first."""
        with contextlib.suppress(FileNotFoundError), os.scandir(self.pending_dir) as entries:
            return sorted(Path(e.path) for e in entries if e.name.endswith(".json") and not e.name.startswith("."))
        return []

    def read(self, path: Path) -> dict | None:
        """The job in ``path``; None if it is gone (logged or dropped meanwhile).

        Raises
        ------
        ValueError
            When the file is not a pending run (not JSON, or no ``uri`` and ``run``).
        """
        try:
            job = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a pending run ({exc})") from exc
        if not isinstance(job, dict) or not isinstance(job.get("uri"), str) or not isinstance(job.get("run"), dict):
            raise ValueError(f"{path}: not a pending run (expected the keys 'uri' and 'run')")
        return job

    def done(self, path: Path) -> None:
        """The run is logged: remove its file."""
        Path(path).unlink(missing_ok=True)

    def retry_later(self, path: Path, job: dict, error: str) -> int:
        """Count one failed attempt in the file (which stays pending); returns the attempts so far."""
        attempts = int(job.get("attempts") or 0) + 1
        if Path(path).exists():  # not dropped meanwhile
            _write_json(Path(path), {**job, "attempts": attempts, "error": error})
        return attempts

    def give_up(self, path: Path) -> Path:
        """Move a run that keeps failing to ``tracking/failed/``; returns its new path."""
        self.failed_dir.mkdir(parents=True, exist_ok=True)
        target = self.failed_dir / Path(path).name
        os.replace(path, target)
        return target

    def log(self, message: str, level: str = "warning") -> None:
        """Append one stamped line to ``tracking.log``."""
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        line = f"{stamp} {level}: {' '.join(message.split())}\n"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(line)

    def _drop_beyond_cap(self) -> None:
        """Drop the oldest pending files beyond ``max_pending``, one log line each."""
        paths = self.paths()
        for path in paths[: max(0, len(paths) - self.max_pending)]:
            try:
                job = self.read(path)
            except ValueError:
                job = None
            try:
                Path(path).unlink()
            except FileNotFoundError:
                continue  # logged, or dropped by another process, meanwhile
            self.log(f"{describe(job, path)} was scored and stored but its MLflow run was dropped unlogged: "
                     f"{self.pending_dir} holds at most {self.max_pending:,} pending runs and this was the oldest; "
                     "make the tracking store reachable so that the queue drains")


def describe(job: dict | None, path: Path | None = None) -> str:
    """``submission 12 of 'alpha'`` (or the file name when the job is unknown)."""
    run = (job or {}).get("run") or {}
    if run.get("submission_id") is not None:
        return f"submission {run['submission_id']} of {run.get('team')!r}"
    if run.get("team"):
        return f"a submission of {run['team']!r}"
    return f"the pending run {Path(path).name if path else '?'}"


def _write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` to ``path`` atomically (a hidden temporary file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
