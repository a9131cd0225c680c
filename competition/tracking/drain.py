"""One pass of the tracking writer over a workspace's pending runs (see :mod:`competition.tracking.writer`).

Runs are logged oldest first and each file is deleted once its run is logged (a run already
logged under its submission id is not logged twice).  A store that does not answer leaves its
runs pending, with one line in ``tracking.log`` per pass; a run that a store refuses counts one
attempt and, after ``max_attempts``, moves to ``tracking/failed/`` with a line saying how to retry it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from competition.errors import TrackingError
from competition.tracking.client import ensure_store
from competition.tracking.pending import MAX_ATTEMPTS, PendingRuns, describe

__all__ = ["drain_pending", "DrainReport"]


@dataclass
class DrainReport:
    """What one pass over the pending runs did."""

    logged: int = 0
    failed: int = 0  # refused by a store that answered: one attempt counted
    waiting: int = 0  # left pending because their store did not answer
    given_up: int = 0
    seen: set = field(default_factory=set)

    @property
    def healthy(self) -> bool:
        return self.failed == 0 and self.waiting == 0


def drain_pending(queue: PendingRuns, *, should_stop: Callable[[], bool] | None = None,
                  max_attempts: int = MAX_ATTEMPTS) -> DrainReport:
    """Log the pending runs, oldest first, deleting each file once its run is logged.

    The caller holds the workspace's writer lock (``queue.lock_path``).  A store is opened (and
    a fresh ``sqlite:`` store set up) once per pass; a store that stops answering is not tried
    again in the same pass.  Every failure is a line in ``tracking.log``; no run is deleted unlogged.
    """
    drain = _Pass(queue, max_attempts)
    for path in queue.paths():
        if should_stop is not None and should_stop():
            break
        drain.log(path)
    return drain.finish()


class _Pass:
    """One pass over the pending runs: the stores opened so far and what became of each run."""

    def __init__(self, queue: PendingRuns, max_attempts: int):
        self.queue, self.max_attempts = queue, max_attempts
        self.report, self.stores, self.waiting = DrainReport(), {}, {}

    def log(self, path: Path) -> None:
        queue, report = self.queue, self.report
        report.seen.add(path.name)
        try:
            job = queue.read(path)
            if job is not None:
                _check_run(path, job["run"])
        except ValueError as exc:
            report.given_up += 1
            queue.log(f"{exc}; moved to {queue.give_up(path)}")
            return
        if job is None:
            return
        uri = job["uri"]
        if uri not in self.stores:
            self.stores[uri] = _open_store(uri, queue.lock_path)
        if isinstance(self.stores[uri], TrackingError):
            self.waiting.setdefault(uri, []).append(job)
            report.waiting += 1
            return
        try:
            _log_once(self.stores[uri], job["run"])
        except TrackingError as exc:
            down = _recheck(self.stores[uri])  # the store itself stopped answering: no attempt counted
            self.stores[uri] = down or exc  # either way, its other runs wait for the next pass
            if down is not None:
                self.waiting.setdefault(uri, []).append(job)
                report.waiting += 1
            else:
                _count_failure(queue, path, job, exc, self.max_attempts, report)
            return
        queue.done(path)
        report.logged += 1

    def finish(self) -> DrainReport:
        for uri, jobs in self.waiting.items():
            _log_waiting(self.queue, jobs, self.stores[uri])
        return self.report


def _open_store(uri: str, lock_path: Path):
    """A checked Tracker for ``uri`` (its fresh ``sqlite:`` store set up), or the TrackingError why not."""
    from competition.tracking.runs import Tracker

    try:
        ensure_store(uri, held=lock_path)
        return Tracker(uri).check()
    except TrackingError as exc:
        return exc


def _check_run(path: Path, run: dict) -> None:
    """Raise ValueError unless ``run`` holds the arguments of ``Tracker.log_submission``."""
    from competition.tracking.runs import Tracker

    try:
        inspect.signature(Tracker.log_submission).bind(None, **run)
    except TypeError as exc:
        raise ValueError(f"{path}: not a pending run ({exc})") from exc


def _recheck(tracker) -> TrackingError | None:
    """Why ``tracker``'s store does not answer any more, or None if it does."""
    try:
        tracker.check()
    except TrackingError as exc:
        return exc
    return None


def _log_once(tracker, run: dict) -> None:
    """Log ``run`` unless its submission's run is in the store already (a drainer stopped before deleting)."""
    sid, split_hash = run.get("submission_id"), str(run.get("split_hash") or "")
    if isinstance(sid, int) and split_hash.isalnum():
        query = (f"tags.`ships.kind` = 'submission' and tags.`ships.submission_id` = '{sid}' and "
                 f"tags.`ships.split_hash` = '{split_hash}' and attributes.status = 'FINISHED'")
        with tracker._wrap("look for the submission's run"):
            found = tracker._client().search_runs([tracker._experiment()], filter_string=query, max_results=10)
        if any(r.data.tags.get("ships.team") == run.get("team") for r in found):
            return
    tracker.log_submission(**run)


def _count_failure(queue: PendingRuns, path: Path, job: dict, exc: TrackingError, max_attempts: int,
                   report: DrainReport) -> None:
    attempts = queue.retry_later(path, job, str(exc))
    report.failed += 1
    if attempts < max_attempts:
        queue.log(f"{describe(job)} was scored and stored but not logged to MLflow (attempt {attempts} of "
                  f"{max_attempts}): {exc}; it stays in {queue.pending_dir} and is retried")
        return
    target = queue.give_up(path)
    report.given_up += 1
    queue.log(f"{describe(job)} was scored and stored but not logged to MLflow after {attempts} attempts: {exc}; "
              f"the run is kept in {target}; move it back to {queue.pending_dir} to try again")


def _log_waiting(queue: PendingRuns, jobs: list[dict], exc: TrackingError) -> None:
    names = [describe(job) for job in jobs]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    subject = f"{shown} was" if len(names) == 1 else f"{len(names)} submissions ({shown}) were"
    where = "it stays" if len(names) == 1 else "they stay"
    queue.log(f"{subject} scored and stored but not logged to MLflow yet: {exc}; {where} in {queue.pending_dir} "
              "and will be logged once that store answers")
