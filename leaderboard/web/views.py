"""What the web pages show, as JSON-ready dicts: each HTML page renders the dict its JSON twin returns.

Pure functions over the store's records (and, for the ROC curve, the stored file and the
Public part of the solution).  Nothing Private is put in a view before finalize: the
store already hides Private scores until then, and these functions add the Private
fields and the final marks only when ``finalized`` is True.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from competition.errors import ShipsError
from competition.rules import Rules
from leaderboard.submit import shown_public as shown_before_finalize
from leaderboard.web.charts import ScorePoint

__all__ = [
    "ROC_GRID",
    "encode_name",
    "decode_name",
    "team_url",
    "submission_url",
    "leaderboard_view",
    "team_view",
    "submission_view",
    "score_points",
    "shown_public",
    "interpolate_roc",
    "public_roc",
]

ROC_GRID = np.round(np.linspace(0.0, 1.0, 21), 2)  # the only false positive rates a ROC curve is shown at
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_TILDE_RUN = re.compile(r"(?:~[0-9A-Fa-f]{2})+")


def encode_name(name: str) -> str:
    """A team name as one URL path segment (datasette's tilde encoding).

    Letters, digits, ``_`` and ``-`` stay; every other byte of the UTF-8 name becomes
    ``~XX``, so that names holding ``/``, ``.json``, ``%`` or ``?`` still make one segment.

    >>> encode_name("Harbour Watch/2.json")
    'Harbour~20Watch~2F2~2Ejson'
    """
    return "".join(c if c in _SAFE else "".join(f"~{b:02X}" for b in c.encode("utf-8")) for c in name)


def decode_name(segment: str) -> str:
    """The team name of a URL segment; runs of ``~XX`` are decoded, anything else is kept as typed.

    >>> decode_name("Harbour~20Watch~2F2~2Ejson"), decode_name("Harbour Watch")
    ('Harbour Watch/2.json', 'Harbour Watch')
    """
    def _bytes(match: re.Match) -> str:
        raw = bytes.fromhex(match.group(0).replace("~", ""))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return match.group(0)

    return _TILDE_RUN.sub(_bytes, segment)


def team_url(name: str) -> str:
    """Path of a team's page."""
    return f"/teams/{encode_name(name)}"


def submission_url(submission_id: int) -> str:
    """Path of a submission's page."""
    return f"/submissions/{int(submission_id)}"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def leaderboard_view(rows: Sequence, *, private: bool, finalized_at: datetime | None, rules: Rules) -> dict:
    """The leaderboard page: one dict per row of :meth:`Store.leaderboard`, with links.

    ``public_rank`` and ``move`` are kept on the Private board only; before finalize the
    scores are rounded as the rules say.
    """
    out = []
    for row in rows:
        d = row.to_dict()
        if finalized_at is None:
            d.update({k: rules.round_score(d[k]) for k in ("score", "score_low", "score_high")})
        if not private:
            d.pop("public_rank", None)
            d.pop("move", None)
        d["team_url"] = team_url(row.team)
        d["submission_url"] = submission_url(row.submission_id)
        out.append(d)
    return {
        "board": "private" if private else "public",
        "finalized": finalized_at is not None,
        "finalized_at": _iso(finalized_at),
        "metric": rules.metric,
        "greater_is_better": rules.greater_is_better,
        "n_teams": sum(1 for r in rows if r.rank is not None),
        "rows": out,
    }


def shown_public(records: Sequence, rules: Rules, *, finalized: bool) -> list[tuple]:
    """``(score, low, high)`` of each of a team's submissions (oldest first) as anyone but the organiser sees it."""
    if finalized:
        return [(r.public_score, r.public_low, r.public_high) for r in records]
    return shown_before_finalize(records, rules)


def _summary(record, shown: tuple, finalized: bool) -> dict:
    """One submission as a line of a team's history."""
    d = {
        "id": record.id, "url": submission_url(record.id), "submitted_at": _iso(record.submitted_at),
        "filename": record.filename, "message": record.message, "rescored_at": _iso(record.rescored_at),
        "public_score": shown[0], "public_low": shown[1], "public_high": shown[2],
    }
    if finalized:
        d.update(private_score=record.private_score, private_low=record.private_low,
                 private_high=record.private_high, final=record.final)
    return d


def team_view(team, records: Sequence, row, *, rules: Rules, finalized: bool) -> dict:
    """A team's page: who it is, where it stands on the current board, and its submissions (oldest first).

    ``row`` is the team's row of the current leaderboard, or None if it has none.
    """
    return {
        "team": team.name,
        "kind": team.kind,
        "created_at": _iso(team.created_at),
        "finalized": finalized,
        "board": "private" if finalized else "public",
        "rank": None if row is None else row.rank,
        "tied": False if row is None else row.tied,
        "best_submission_id": None if row is None else row.submission_id,
        "submissions": [_summary(r, shown, finalized)
                        for r, shown in zip(records, shown_public(records, rules, finalized=finalized))],
    }


def score_points(records: Sequence, *, rules: Rules, finalized: bool) -> list[ScorePoint]:
    """Chart points of a team's scored submissions, as shown (Private only once finalized)."""
    return [ScorePoint(id=r.id, submitted_at=r.submitted_at, score=s[0], low=s[1], high=s[2],
                       private=r.private_score if finalized else None, url=submission_url(r.id))
            for r, s in zip(records, shown_public(records, rules, finalized=finalized)) if s[0] is not None]


def submission_view(record, *, rules: Rules, shown: tuple, finalized: bool, roc: dict | None) -> dict:
    """A submission's page: its Public score as the rules show it before finalize; after it, every
    Public and Private metric and the coarse Public ROC curve.

    ``shown`` is the submission's ``(score, low, high)`` from :func:`shown_public`.
    """
    public = dict(record.public or {}) if finalized else dict(zip(
        (rules.metric, f"{rules.metric}_low", f"{rules.metric}_high"), shown))
    d = {
        "id": record.id, "team": record.team, "kind": record.kind, "team_url": team_url(record.team),
        "submitted_at": _iso(record.submitted_at), "filename": record.filename, "message": record.message,
        "file_sha256": record.file_sha256, "rescored_at": _iso(record.rescored_at), "finalized": finalized,
        "public": public,
        "roc": roc if finalized else None,
    }
    if finalized:
        d.update(private=dict(record.private or {}), final=record.final)
    return d


def interpolate_roc(fpr: np.ndarray, tpr: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """TPR of a ROC curve (points sorted by fpr) at each false positive rate of ``grid``.

    Linear between the curve's points; where the curve rises vertically at a grid value,
    the top of the rise (the TPR reached at that FPR).
    """
    fpr, tpr, grid = (np.asarray(a, dtype=np.float64) for a in (fpr, tpr, grid))
    i = np.clip(np.searchsorted(fpr, grid, side="right") - 1, 0, len(fpr) - 1)
    j = np.minimum(i + 1, len(fpr) - 1)
    dx = fpr[j] - fpr[i]
    frac = np.divide(grid - fpr[i], dx, out=np.zeros_like(grid), where=dx > 0)
    return tpr[i] + np.clip(frac, 0.0, 1.0) * (tpr[j] - tpr[i])


def public_roc(ws, file_sha256: str) -> dict | None:
    """The ROC curve of a stored submission on the Public part, read on a coarse fixed grid.

    A full-resolution ROC curve of a team's own predictions would give away the Public
    labels: walking the team's predictions from the highest, every step up of the curve is
    a positive chip and every step right a negative one.  So the curve is computed from
    the stored file and the Public part of the solution, and only its TPR at the 21 fixed
    false positive rates of :data:`ROC_GRID` (0, 0.05, ..., 1) is returned, interpolated
    linearly and rounded to 3 decimals: each point then sums over many chips.  No Private
    label is read into the result, before or after finalize.

    Returns
    -------
    dict or None
        ``{"part": "Public", "fpr": [...], "tpr": [...]}``; None when the stored file is
        missing or unreadable, or the Public part holds a single class.
    """
    from sklearn.metrics import roc_curve

    from leaderboard.submit import read_and_validate

    path = ws.submissions_dir / f"{file_sha256}.csv"
    if not path.is_file():
        return None
    try:
        y_proba, _ = read_and_validate(ws, path)
        solution = ws.load_solution()
    except ShipsError:
        return None
    public = solution.usage == "Public"
    y_true = solution.y_true[public]
    if len(np.unique(y_true)) < 2:
        return None
    fpr, tpr, _ = roc_curve(y_true, y_proba[public])
    values = interpolate_roc(fpr, tpr, ROC_GRID)
    return {"part": "Public", "fpr": [float(x) for x in ROC_GRID], "tpr": [round(float(v), 3) for v in values]}
