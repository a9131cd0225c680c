"""Log a scored submission to MLflow from a child process.

``ships score`` and web uploads stay light (no mlflow import) and fast: once the score is
stored and shown, :func:`log_submission_in_background` hands the run to a detached child
(``python -m competition.tracking_job``) that logs it through :class:`~competition.tracking.Tracker`.
A tracking failure is written to the workspace's ``tracking.log``; the score itself is in the
leaderboard store already, so it is never lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["log_submission_in_background", "submission_run", "main"]


def submission_run(ws, result, message: str) -> dict:
    """The MLflow run of a scored submission (a ``SubmitResult``): Public metrics and tags only."""
    record = result.record
    return {"team": record.team, "message": message, "file_sha256": result.file_sha256,
            "split_hash": ws.split_hash, "public": result.shown, "submission_id": record.id, "kind": record.kind}


def log_submission_in_background(tracking_uri: str, run: dict, log_path: Path) -> subprocess.Popen:
    """Start the child that logs ``run`` (the keyword arguments of ``Tracker.log_submission``).

    Returns the child process (callers may ``wait()``; ``ships score`` does not).
    """
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        child = subprocess.Popen([sys.executable, "-m", "competition.tracking_job"], stdin=subprocess.PIPE,
                                 stdout=log, stderr=log, start_new_session=True)
    finally:
        log.close()
    child.stdin.write(json.dumps({"uri": tracking_uri, "run": run}).encode())
    child.stdin.close()
    return child


def main() -> int:
    """Child entry point: read ``{"uri", "run"}`` from stdin and log the run."""
    from competition.errors import TrackingError
    from competition.tracking import Tracker

    job = json.load(sys.stdin)
    run = job["run"]
    try:
        Tracker(job["uri"]).log_submission(**run)
    except TrackingError as exc:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} warning: submission {run.get('submission_id')} of {run.get('team')!r} was scored and "
              f"stored but not logged to MLflow: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
