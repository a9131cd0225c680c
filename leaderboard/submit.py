"""The one path every submission takes: CLI, web upload and baselines alike.

check what needs no file (deadline, finalize, quota, message, file name) → check the
solution's SHA-256 → read → validate → score Public and Private → record it and move the
file into place under its SHA-256, in one transaction.  An invalid or refused file is never
stored, scored or counted against a quota.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from competition.errors import SubmissionError
from competition.scoring import score_predictions, validate_submission
from competition.submission import parse_submission, read_submission_file
from competition.workspace import Workspace

__all__ = ["SubmitResult", "read_and_validate", "check_can_submit", "submit_file", "accept_submission", "open_store",
           "score_parts", "shown_metrics", "shown_public", "receipt"]


@dataclass(frozen=True)
class SubmitResult:
    """An accepted submission: its record, its Public metrics (the organiser's) and what a team is shown.

    ``shown`` follows the rules (:meth:`competition.rules.Rules.shown_metrics`): before finalize the
    primary metric and its interval, rounded (or the Ladder's value); every path that answers a
    team uses it, never ``public``.
    """

    record: object
    public: dict
    file_sha256: str
    shown: dict


def open_store(ws: Workspace):
    """Open the workspace's leaderboard store."""
    from leaderboard.store import Store

    return Store.open(ws.store_url, ws.rules)


def read_and_validate(ws: Workspace, source: Path | bytes, *, filename: str | None = None,
                      expected_ids: np.ndarray | None = None) -> tuple[np.ndarray, bytes]:
    """Parse and validate a submission against the public test ids (``expected_ids``, else test.csv's).

    Returns y_proba aligned to the test ids and the file's bytes.

    Raises
    ------
    SubmissionError
        Listing every problem found in one pass.
    """
    limit = ws.config.max_upload_bytes
    if isinstance(source, (bytes, bytearray)):
        name = filename or "upload.csv"
        if len(source) > limit:
            raise SubmissionError(name, [f"file is {len(source):,} bytes; the limit is {limit:,} bytes; "
                                         "submit one row per test id with a short probability (e.g. 0.1234)"])
        parsed = parse_submission(bytes(source), source=name)
    else:
        parsed = read_submission_file(Path(source), max_bytes=limit)
    data = parsed.data  # exactly the bytes that were validated
    return validate_submission(parsed, ws.test_ids() if expected_ids is None else expected_ids), data


def submit_file(
    ws: Workspace,
    source: Path | bytes,
    *,
    team: str,
    message: str = "",
    kind: str = "team",
    filename: str | None = None,
    store=None,
    now: datetime | None = None,
) -> SubmitResult:
    """Validate, score and record one submission.

    Parameters
    ----------
    ws : Workspace
    source : path or bytes
        The CSV file, or its bytes (web upload; then ``filename`` names it).
    team : str
        The submitting team, created without a token if new (the organiser's CLI and the
        baselines); the web resolves the team from its token before calling this.
    kind : {'team', 'baseline'}

    Raises
    ------
    SubmissionError, WorkspaceError, StoreError, QuotaError, ParameterError
        Nothing is stored or recorded when any of them is raised.
    """
    now = now or datetime.now(timezone.utc)
    if filename is None:
        filename = "upload.csv" if isinstance(source, (bytes, bytearray)) else Path(source).name
    store = store or open_store(ws)
    check_can_submit(ws, store, team, message=message, filename=filename, now=now)
    solution = ws.load_solution()  # checks the locks; its ids are test.csv's, read once
    y_proba, data = read_and_validate(ws, source, filename=filename, expected_ids=solution.ids)
    store.ensure_team(team, kind=kind)
    parts = score_parts(ws, solution, y_proba)
    digest = hashlib.sha256(data).hexdigest()
    # The file is written and synced under a temporary name first, and moved into place inside
    # the transaction that records it, after the quota check: a record never points to a missing
    # file, and a refused submission (quota, finalize) leaves no file behind.
    with _staged_file(ws.submissions_dir, digest, data) as publish:
        record = store.add_submission(
            team=team, file_sha256=digest, filename=filename, message=message,
            public=parts["Public"], private=parts["Private"], split_hash=ws.split_hash, submitted_at=now,
            replicates=parts.replicates,
            before_commit=publish,
        )
    return SubmitResult(record=record, public=parts["Public"], file_sha256=digest,
                        shown=shown_metrics(store, ws.rules, record))


def check_can_submit(ws: Workspace, store, team: str, *, message: str = "", filename: str = "upload.csv",
                     now: datetime | None = None) -> None:
    """Every check that needs neither the file nor a score: deadline, finalize, quota, message and file name.

    :func:`submit_file` runs it first; the web runs it before reading an upload's body.

    Raises
    ------
    ClosedError, QuotaError
        The deadline passed, the competition is finalized, or ``team`` used its daily quota.
    ParameterError
        The message or the file name is too long or holds control characters.
    """
    from leaderboard.store.checks import check_filename, check_message

    now = now or datetime.now(timezone.utc)
    ws.rules.check_open(now)
    check_message(message)
    check_filename(filename)
    store.check_can_submit(team, now)


def shown_metrics(store, rules, record) -> dict:
    """What a team is shown of ``record``'s Public score: rounded, or the Ladder's value over its history."""
    history = store.submissions(record.team) if rules.feedback == "ladder" else [record]  # the Ladder reads it all
    shown = dict(zip((r.id for r in history), shown_public(history, rules)))[record.id]
    return dict(zip((rules.metric, f"{rules.metric}_low", f"{rules.metric}_high"), shown))


def shown_public(records, rules) -> list[tuple]:
    """``(score, low, high)`` of each of a team's submissions (oldest first) as shown before finalize.

    ``'score'`` feedback: each score and interval rounded.  ``'ladder'``: the Ladder's standing
    value with the interval of the submission that set it, as on the leaderboard: the
    interval of a submission that did not move the Ladder would give its score away.
    """
    scores = rules.shown_scores([r.public_score for r in records])
    if rules.feedback == "ladder":
        setter = {}
        for score, r in zip(scores, records):
            setter.setdefault(score, r)
        records = [setter[s] if s is not None else r for s, r in zip(scores, records)]
    return [(s, rules.round_score(r.public_low), rules.round_score(r.public_high)) for s, r in zip(scores, records)]


def receipt(store, result: SubmitResult, ws: Workspace | None = None) -> dict:
    """What a team needs after a submission: its shown Public score, whether it is its best, its rank
    on the Public board, the submissions left today with the time the quota resets, and warnings
    (the same file as an earlier submission, or the sample submission itself)."""
    record = result.record
    rank, best_id = store.standing(record.team)
    quota = store.quota_status(record.team)
    return {"warnings": _warnings(store, result, ws), "id": record.id, "team": record.team, "file_sha256": result.file_sha256, "public": result.shown,
            "best": best_id == record.id, "rank": rank,
            "submitted_at": record.submitted_at.isoformat(), "filename": record.filename,
            "quota": {"used": quota.used, "limit": quota.limit, "left": quota.left,
                      "resets_at": quota.resets_at.isoformat()}}


def _warnings(store, result: SubmitResult, ws: Workspace | None) -> list[str]:
    record, out = result.record, []
    same = [i for i in store.ids_with_file(record.team, result.file_sha256) if i != record.id]
    if same:
        out.append(f"this file is identical to your submission {same[0]}; it was counted again")
    sample = None if ws is None else ws.public_dir / "sample_submission.csv"
    if sample is not None and sample.is_file() and hashlib.sha256(sample.read_bytes()).hexdigest() == result.file_sha256:
        out.append("this is the sample submission itself (the prior for every chip): it scores like chance")
    return out


def accept_submission(
    ws: Workspace,
    source: Path | bytes,
    *,
    team: str,
    message: str = "",
    kind: str = "team",
    filename: str | None = None,
    store=None,
    tracking_uri: str | None = None,
    track: bool = True,
) -> SubmitResult:
    """Everything that follows a submission: :func:`submit_file`, then its MLflow run, queued.

    ``ships score`` and the web upload both come here.  The run (what the team is shown, and
    tags) is written to the workspace's queue of pending runs and logged by the workspace's one
    tracking writer (:mod:`competition.tracking.writer`: ``ships serve``'s, else a detached
    process started here if none is at work), so this path imports no mlflow and returns at
    once; a tracking failure goes to the workspace's ``tracking.log`` and the run is retried,
    never into the stored score.

    Parameters
    ----------
    tracking_uri : str, optional
        MLflow tracking URI; default: the workspace's own store.
    track : bool
        False: record the submission only.

    Other parameters are those of :func:`submit_file`, and so are the errors raised.
    """
    result = submit_file(ws, source, team=team, message=message, kind=kind, filename=filename, store=store)
    if track:
        from competition.tracking.writer import queue_run, submission_run

        queue_run(ws.root, tracking_uri or ws.tracking_uri, submission_run(ws, result, message))
    return result


class ScoredParts(dict):
    """``{"Public": metrics, "Private": metrics}``, and ``replicates``: the bootstrap replicates of
    the rules' primary metric per part (``{"public": array, "private": array}``), for paired ties."""

    replicates: dict


def score_parts(ws: Workspace, solution, y_proba: np.ndarray) -> ScoredParts:
    """Public and Private metric dicts of ``y_proba`` (test order); rescoring uses the same function.

    Every submission is scored with the workspace's seed on the same groups, so its bootstrap
    resamples are those of every other submission: their replicates pair.
    """
    parts = ScoredParts()
    parts.replicates = {}
    for usage in ("Public", "Private"):
        m = solution.usage == usage
        report = score_predictions(solution.y_true[m], y_proba[m], groups=solution.groups[m],
                                   n_bootstrap=ws.config.n_bootstrap, random_state=ws.config.seed)
        parts[usage] = report.to_dict()
        parts.replicates[usage.lower()] = report.replicates.get(ws.rules.metric)
    return parts


@contextmanager
def _staged_file(folder: Path, digest: str, data: bytes) -> Iterator[Callable[[], None]]:
    """Write ``data`` to a synced temporary file; yield the function that moves it to ``<sha256>.csv``.

    The temporary file is removed on exit if it was not moved (the submission was refused).
    Nothing is written if ``<sha256>.csv`` exists (content-addressed, maybe shared by another record).
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{digest}.csv"
    if target.exists():
        yield lambda: None
        return
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        yield lambda: os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
