"""Competition-wide operations that need the workspace as well as the store: rescoring.

:func:`rescore_submissions` recomputes every stored submission from its stored file
(``submissions/<sha256>.csv``) through the same validation and scoring functions as a new
submission, against the workspace's solution (whose SHA-256 is checked first).  Changed
scores are stored as rescore rows (a submission's original scores are never rewritten),
and the leaderboards before and after are compared.  The Private leaderboard is compared
only once the competition is finalized; before that no Private rank is computed or shown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone


from competition.errors import ShipsError
from leaderboard.ranking import RankChange, rank_changes
from leaderboard.store import Store
from leaderboard.submit import score_parts

__all__ = ["RescoreReport", "rescore_submissions"]


@dataclass(frozen=True)
class RescoreReport:
    """What a rescore found.

    ``rescored`` lists the ids whose scores changed (and were stored); ``problems`` maps
    the id of each submission that could not be rescored to the reason.
    """

    checked: int
    rescored: list[int]
    public_changes: list[RankChange]
    private_changes: list[RankChange] | None
    problems: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "checked": self.checked,
            "rescored": list(self.rescored),
            "public_changes": [c.to_dict() for c in self.public_changes],
            "private_changes": None if self.private_changes is None else [c.to_dict() for c in self.private_changes],
            "problems": {str(k): v for k, v in self.problems.items()},
        }


def rescore_submissions(ws, store: Store, now: datetime | None = None) -> RescoreReport:
    """Recompute every stored submission and report the ranks that changed.

    Parameters
    ----------
    ws : Workspace
    store : Store
    now : datetime, optional
        Time recorded on the rescore rows (timezone-aware; default now).

    Returns
    -------
    RescoreReport

    Raises
    ------
    WorkspaceError
        If the solution changed since ``ships init`` (nothing is rescored).
    """
    from leaderboard.submit import read_and_validate

    now = now or datetime.now(timezone.utc)
    solution = ws.load_solution()
    finalized = store.is_finalized()
    before = store.leaderboard()
    before_private = store.leaderboard(private=True) if finalized else None
    records = store.submissions()
    rescored, problems = [], {}
    for rec in records:
        path = ws.submissions_dir / f"{rec.file_sha256}.csv"
        if not path.is_file():
            problems[rec.id] = f"{path}: missing; the stored file of submission {rec.id} cannot be rescored"
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != rec.file_sha256:
            problems[rec.id] = f"{path}: its bytes no longer match its SHA-256 name; the file was altered"
            continue
        try:
            y_proba, _ = read_and_validate(ws, path)
        except ShipsError as exc:
            problems[rec.id] = str(exc)
            continue
        parts = score_parts(ws, solution, y_proba)
        if store.add_rescore(rec.id, public=parts["Public"], private=parts["Private"], split_hash=ws.split_hash,
                             rescored_at=now, replicates=parts.replicates):
            rescored.append(rec.id)
    after_private = store.leaderboard(private=True) if finalized else None
    return RescoreReport(
        checked=len(records), rescored=rescored,
        public_changes=rank_changes(before, store.leaderboard()),
        private_changes=None if not finalized else rank_changes(before_private, after_private),
        problems=problems,
    )
