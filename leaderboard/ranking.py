"""Leaderboard ranking rules: pure functions over scored submission records.

A record is any object with the attributes of :class:`Entry` (the store's
``SubmissionRecord`` has them all).  Its score is the primary metric of the competition's
:class:`~competition.rules.Rules`, whose direction decides what "best" means (ROC AUC,
higher is better, by default; a ``*_loss`` metric, lower is better).

Rules
-----
- A team's standing is its best submission; ties go to the earlier submission
  (then the lower id).  Teams are ordered by their best submission under that rule, so
  of two teams with the same best score the one that reached it first ranks higher.
- Baselines (kind ``'baseline'``) appear in place, marked as such, but take no rank:
  team ranks count teams only, and so do moves.
- Public leaderboard: each team's best Public score over all its submissions.
- Private leaderboard: each team's best Private score among its final submissions
  (the ones it selected, or its two best Public ones); ``move`` is public rank minus
  private rank (positive: moved up).
- Statistical ties: a ranked team is marked ``tied`` when a paired group bootstrap of the
  difference between its score and that of the team ranked just above (the same resampled
  days for both, :func:`mark_paired_ties`) gives a 95% interval that includes zero.  Two
  models scored on the same chips are strongly correlated, so comparing their own intervals
  would mark far too many ties.  Submissions stored without replicates fall back to the
  overlap of their intervals; where an interval is missing, only equal scores count as tied.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Protocol

from competition.rules import Rules

__all__ = [
    "Entry",
    "Scored",
    "LeaderboardRow",
    "RankChange",
    "best_key",
    "rank_public",
    "rank_private",
    "rank_changes",
    "intervals_overlap",
    "mark_paired_ties",
    "public_rank",
]


class Scored(Protocol):
    """What ranking reads from a submission record."""

    id: int
    team: str
    kind: str
    submitted_at: datetime
    public_score: float | None
    public_low: float | None
    public_high: float | None
    private_score: float | None
    private_low: float | None
    private_high: float | None


@dataclass(frozen=True)
class Entry:
    """The scores of one submission, the least a ranking needs."""

    id: int
    team: str
    kind: str
    submitted_at: datetime
    public_score: float | None
    public_low: float | None = None
    public_high: float | None = None
    private_score: float | None = None
    private_low: float | None = None
    private_high: float | None = None


@dataclass(frozen=True)
class LeaderboardRow:
    """One line of a leaderboard.

    ``rank`` is None for baselines.  ``tied`` is True when the row's score is not told apart
    from that of the team ranked just above: by :func:`mark_paired_ties` (the paired test) on
    a store's boards, else by the overlap of the two intervals.  ``public_rank`` and ``move``
    are set on the Private leaderboard only.
    """

    rank: int | None
    team: str
    kind: str
    submission_id: int
    score: float
    score_low: float | None
    score_high: float | None
    entries: int
    last_submitted_at: datetime
    tied: bool = False
    public_rank: int | None = None
    move: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (times as ISO 8601 strings)."""
        d = asdict(self)
        d["last_submitted_at"] = self.last_submitted_at.isoformat()
        return d


@dataclass(frozen=True)
class RankChange:
    """A team whose rank differs between two leaderboards (None: absent from one)."""

    team: str
    before: int | None
    after: int | None

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


_DEFAULT_RULES = Rules()


def best_key(record: Scored, part: str = "public", rules: Rules = _DEFAULT_RULES) -> tuple:
    """Sort key that puts the best submission first: better score, then earlier, then lower id."""
    return (rules.sort_value(getattr(record, f"{part}_score")), record.submitted_at, record.id)


def intervals_overlap(a: tuple[float | None, float | None], b: tuple[float | None, float | None]) -> bool | None:
    """True if two closed intervals ``(low, high)`` overlap; None if either bound is missing."""
    if None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


def rank_public(records: Iterable[Scored], rules: Rules = _DEFAULT_RULES, *,
                counts: Mapping[str, tuple[int, datetime]] | None = None) -> list[LeaderboardRow]:
    """The Public leaderboard: each team's best Public submission, best first.

    Records without a Public score are ignored.  ``counts`` (team -> number of submissions and
    the latest time) lets a caller pass only each team's best candidates (under ``'score'``
    feedback, those at the team's best score): the store does so for large boards.
    """
    records = list(records)
    by_team = _group(records)
    pick = _ladder_best if rules.feedback == "ladder" else _best
    best = {team: pick(rs, rules) for team, rs in by_team.items()}
    return _make_rows({t: b for t, b in best.items() if b is not None}, counts or _counts(by_team), "public", rules)


def public_rank(team: str, best: Mapping[str, Scored], rules: Rules = _DEFAULT_RULES) -> int | None:
    """``team``'s rank on the Public board from each team's best submission, without building the board.

    The same order as :func:`rank_public` (ranked teams only, by :func:`best_key`); None for a
    team without a scored submission or one that takes no rank (a baseline).
    """
    mine = best.get(team)
    if mine is None or not rules.is_ranked(mine.kind):
        return None
    key = best_key(mine, "public", rules)
    return 1 + sum(1 for other in best.values()
                   if rules.is_ranked(other.kind) and best_key(other, "public", rules) < key)


def _best(records: list[Scored], rules: Rules) -> Scored | None:
    """The team's best Public submission (ties to the earlier)."""
    return min((r for r in records if r.public_score is not None), key=lambda r: best_key(r, "public", rules),
               default=None)


def _ladder_best(records: list[Scored], rules: Rules) -> Entry | None:
    """Under the Ladder: the submission that set the team's standing value, scored at that value."""
    ordered = sorted(records, key=lambda r: (r.submitted_at, r.id))
    shown = rules.shown_scores([r.public_score for r in ordered])
    standing = next((v for v in reversed(shown) if v is not None), None)
    if standing is None:
        return None
    first = next(r for r, v in zip(ordered, shown) if v == standing)
    return Entry(id=first.id, team=first.team, kind=first.kind, submitted_at=first.submitted_at,
                 public_score=standing, public_low=rules.round_score(first.public_low),
                 public_high=rules.round_score(first.public_high))


def rank_private(records: Iterable[Scored], finals: Mapping[str, Collection[int]],
                 rules: Rules = _DEFAULT_RULES) -> list[LeaderboardRow]:
    """The Private leaderboard: each team's best Private score among its finals.

    Parameters
    ----------
    records : iterable of records
        Every submission, with Private scores revealed.
    finals : mapping of team name to submission ids
        The final submissions of each team (selected, or picked at finalize).

    Returns
    -------
    list of LeaderboardRow
        Best first, with ``public_rank`` and ``move`` (public rank - private rank) set.
    """
    records = list(records)
    by_team = _group(records)
    best = {}
    for team, rs in by_team.items():
        chosen = set(finals.get(team, ()))
        candidates = [r for r in rs if r.id in chosen and r.private_score is not None]
        if candidates:
            best[team] = min(candidates, key=lambda r: best_key(r, "private", rules))
    rows = _make_rows(best, _counts(by_team), "private", rules)
    public_rank = {row.team: row.rank for row in rank_public(records, rules)}
    out = []
    for row in rows:
        before = public_rank.get(row.team)
        move = None if row.rank is None or before is None else before - row.rank
        out.append(LeaderboardRow(**{**asdict(row), "public_rank": before, "move": move}))
    return out


def rank_changes(before: Iterable[LeaderboardRow], after: Iterable[LeaderboardRow]) -> list[RankChange]:
    """Teams whose rank differs between two leaderboards, in the order of ``after``."""
    old = {row.team: row.rank for row in before}
    new = {row.team: row.rank for row in after}
    teams = list(new) + [t for t in old if t not in new]
    return [RankChange(t, old.get(t), new.get(t)) for t in teams if old.get(t) != new.get(t)]


def mark_paired_ties(rows: list[LeaderboardRow], replicates: Mapping[int, object],
                     confidence: float = 0.95) -> list[LeaderboardRow]:
    """Mark ties by a paired group bootstrap of the difference of adjacent ranked teams' scores.

    ``replicates`` maps a submission id to its bootstrap replicates of the primary metric
    (a 1-d array), all drawn on the same resampled groups, so the difference of two
    submissions' replicates is the bootstrap distribution of the difference of their scores.
    A ranked row is tied with the ranked row above it when the ``confidence`` percentile
    interval of that difference includes zero.  Where either has no replicates, the row keeps
    the mark it had (intervals that overlap).
    """
    import numpy as np

    alpha = 100 * (1 - confidence) / 2
    ranked = [i for i, row in enumerate(rows) if row.rank is not None]
    pairs = [(i, j) for i, j in zip(ranked, ranked[1:])
             if rows[i].submission_id in replicates and rows[j].submission_id in replicates
             and len(replicates[rows[i].submission_id]) == len(replicates[rows[j].submission_id])]
    if not pairs:
        return list(rows)
    above = np.stack([np.asarray(replicates[rows[i].submission_id], dtype=np.float64) for i, _ in pairs])
    below = np.stack([np.asarray(replicates[rows[j].submission_id], dtype=np.float64) for _, j in pairs])
    diff = above - below  # one paired bootstrap distribution per adjacent pair, all at once
    finite = np.isfinite(diff)
    usable = finite.any(axis=1)
    low, high = _percentiles(np.where(finite, diff, 0.0), alpha)
    for k in np.flatnonzero(usable & ~finite.all(axis=1)):  # resamples where a metric is undefined: rare
        low[k], high[k] = np.percentile(diff[k][finite[k]], [alpha, 100 - alpha])
    out = list(rows)
    for (_, j), ok, lo, hi in zip(pairs, usable, low, high):
        if ok:
            out[j] = replace(out[j], tied=bool(lo <= 0 <= hi))
    return out


def _percentiles(values, alpha: float):
    """Row-wise ``alpha`` and ``100 - alpha`` percentiles (numpy's linear method) from one sort,
    several times faster than ``np.percentile`` on a (pairs, resamples) matrix."""
    import numpy as np

    ordered = np.sort(values, axis=1)
    n = ordered.shape[1]
    out = []
    for q in (alpha, 100 - alpha):
        pos = q / 100 * (n - 1)
        i = int(np.floor(pos))
        j = min(i + 1, n - 1)
        out.append(ordered[:, i] + (pos - i) * (ordered[:, j] - ordered[:, i]))
    return out


def _group(records: list[Scored]) -> dict[str, list[Scored]]:
    """Records by team, in input order."""
    out: dict[str, list[Scored]] = {}
    for r in records:
        out.setdefault(r.team, []).append(r)
    return out


def _counts(by_team: dict[str, list[Scored]]) -> dict[str, tuple[int, datetime]]:
    """Each team's number of submissions and the time of its latest."""
    return {team: (len(rs), max(r.submitted_at for r in rs)) for team, rs in by_team.items()}


def _make_rows(best: dict[str, Scored], counts: Mapping[str, tuple[int, datetime]], part: str,
               rules: Rules) -> list[LeaderboardRow]:
    """Order teams by their best record, number the ranked ones, and mark statistical ties."""
    rows, rank, above = [], 0, None
    for team in sorted(best, key=lambda t: best_key(best[t], part, rules)):
        rec = best[team]
        score, low, high = (getattr(rec, f"{part}_{k}") for k in ("score", "low", "high"))
        ranked = rules.is_ranked(rec.kind)
        tied = False
        if ranked:
            rank += 1
            if above is not None:
                overlap = intervals_overlap((low, high), (above.score_low, above.score_high))
                tied = score == above.score if overlap is None else overlap
        entries, last = counts[team]
        row = LeaderboardRow(
            rank=rank if ranked else None, team=team, kind=rec.kind, submission_id=rec.id,
            score=score, score_low=low, score_high=high, entries=entries, last_submitted_at=last, tied=tied,
        )
        rows.append(row)
        if ranked:
            above = row
    return rows
