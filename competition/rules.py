"""The rules of the competition, as data: one place that every other layer asks.

The primary metric and its direction, what a team is shown before finalize, the number of
finals, the threshold of the 0/1 metrics, the quota policy and the deadline.  They come from
the validated ``ships.toml`` (:func:`Rules.from_config`); the store ranks, the web and the
CLI display, and the submission path refuses by these rules only.

>>> rules = Rules(metric="log_loss")
>>> rules.greater_is_better, rules.is_better(0.1, 0.2)
(False, True)
>>> rules.quota_for("baseline") is None, rules.quota_for("team")
(True, 5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

from competition.errors import ClosedError, ParameterError
from competition.scoring import METRICS, THRESHOLD, Metric

__all__ = ["Rules", "FEEDBACK", "QUOTA_EXEMPT_KINDS", "day_bounds"]

FEEDBACK = ("score", "ladder")
QUOTA_EXEMPT_KINDS = ("baseline",)  # baselines set the bar: shown for reference, no rank and no quota


@dataclass(frozen=True)
class Rules:
    """The rules of one competition.

    Parameters
    ----------
    metric : str
        Name of the primary metric (a key of :data:`competition.scoring.METRICS`).
    public_precision : int
        Decimals of a score shown to teams before finalize.
    n_finals : int
        Final submissions a team may select (and that finalize picks for a team that chose none).
    daily_quota : int
        Valid submissions per team per UTC day (kinds in :data:`QUOTA_EXEMPT_KINDS` have none).
    deadline : datetime or None
        Timezone-aware; submissions after it are refused.
    feedback : {'score', 'ladder'}
        What a team is shown of a Public score before finalize: ``'score'``, the primary metric
        rounded to ``public_precision`` decimals with its interval (Kaggle's convention);
        ``'ladder'``, the Ladder of Blum and Hardt (2015): the shown score changes only when a
        submission beats the team's shown best by more than ``ladder_step``.
    ladder_step : float
        The Ladder's margin, in units of the primary metric.
    """

    metric: str = "roc_auc"
    public_precision: int = 4
    n_finals: int = 2
    daily_quota: int = 5
    deadline: datetime | None = None
    feedback: str = "score"
    ladder_step: float = 0.001

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ParameterError(f"metric={self.metric!r} is invalid; expected one of {', '.join(METRICS)}")
        if self.feedback not in FEEDBACK:
            raise ParameterError(f"feedback={self.feedback!r} is invalid; expected one of {', '.join(FEEDBACK)}")

    @classmethod
    def from_config(cls, config) -> "Rules":
        """The rules written in a validated :class:`competition.config.Config`."""
        return cls(metric=config.metric, public_precision=config.public_precision, n_finals=config.n_finals,
                   daily_quota=config.daily_quota, deadline=config.deadline, feedback=config.feedback,
                   ladder_step=config.ladder_step)

    @property
    def primary(self) -> Metric:
        """The primary metric (name, direction, bounds, precision)."""
        return METRICS[self.metric]

    @property
    def greater_is_better(self) -> bool:
        return self.primary.greater_is_better

    @property
    def threshold(self) -> float:
        """A chip with P(ship) at or above this is predicted a ship (accuracy, precision, recall, F1)."""
        return THRESHOLD

    @property
    def direction(self) -> str:
        """``'higher is better'`` or ``'lower is better'``, for people."""
        return "higher is better" if self.greater_is_better else "lower is better"

    def is_better(self, a: float, b: float) -> bool:
        """True if score ``a`` is strictly better than score ``b`` under the primary metric."""
        return self.primary.is_better(a, b)

    def sort_value(self, score: float) -> float:
        """A value that sorts ascending best first (``-score`` when higher is better)."""
        return -score if self.greater_is_better else score

    def is_ranked(self, kind: str) -> bool:
        """Whether a team of this kind takes a rank (baselines are shown for reference only)."""
        return kind not in QUOTA_EXEMPT_KINDS

    def quota_for(self, kind: str) -> int | None:
        """Valid submissions a day for a team of this kind; None: no limit."""
        return None if kind in QUOTA_EXEMPT_KINDS else self.daily_quota

    def check_open(self, now: datetime) -> None:
        """Refuse a submission made after the deadline.

        Raises
        ------
        ClosedError
            If ``now`` is past the deadline.
        """
        if self.deadline is not None and now > self.deadline:
            raise ClosedError(f"the deadline passed at {self.deadline:%Y-%m-%d %H:%M} UTC; "
                              "no more submissions are accepted")

    def check_finals(self, ids: list[int]) -> None:
        """Refuse a choice of more final submissions than allowed.

        Raises
        ------
        ParameterError
            If there are more ``ids`` than :attr:`n_finals`.
        """
        if len(ids) > self.n_finals:
            raise ParameterError(f"at most {self.n_finals} final submissions per team; got {len(ids)} "
                                 f"({', '.join(map(str, ids))}). Pick the {self.n_finals} to keep")

    def round_score(self, value: float | None) -> float | None:
        """A score as shown to teams before finalize: rounded to :attr:`public_precision` decimals."""
        return None if value is None else round(float(value), self.public_precision)

    def shown_metrics(self, metrics: Mapping | None, *, finalized: bool) -> dict:
        """What anyone but the organiser sees of one part's metrics.

        Before finalize: the primary metric and its interval, rounded (scores at full
        precision, other metrics and confusion counts reveal test labels); after it, all.
        """
        metrics = dict(metrics or {})
        if finalized:
            return metrics
        keys = (self.metric, f"{self.metric}_low", f"{self.metric}_high")
        return {k: self.round_score(metrics.get(k)) for k in keys}

    def shown_scores(self, scores: Sequence[float | None]) -> list[float | None]:
        """The Public scores a team is shown for its submissions, in submission order.

        ``'score'`` feedback: each score rounded.  ``'ladder'``: the Ladder's running value,
        which moves only when a score beats it by more than ``ladder_step`` (then to that score,
        rounded); a submission that does not is shown the team's standing value again.

        >>> Rules(feedback="ladder", ladder_step=0.01).shown_scores([0.90, 0.905, 0.93, None, 0.92])
        [0.9, 0.9, 0.93, None, 0.93]
        """
        if self.feedback == "score":
            return [self.round_score(s) for s in scores]
        shown, best = [], None
        for score in scores:
            if score is None:
                shown.append(None)
                continue
            if best is None or self.is_better(score, best + self.sort_direction * self.ladder_step):
                best = self.round_score(score)
            shown.append(best)
        return shown

    @property
    def sort_direction(self) -> int:
        """+1 when higher is better, -1 when lower is better."""
        return 1 if self.greater_is_better else -1

    def format_score(self, value: float | None) -> str:
        """The score as text with :attr:`public_precision` decimals (``'n/a'`` when undefined)."""
        return "n/a" if value is None else f"{value:.{self.public_precision}f}"


def day_bounds(at: datetime) -> tuple[datetime, datetime]:
    """Start and end (next midnight) of the UTC day holding ``at``: the quota's day."""
    start = datetime.combine(at.astimezone(timezone.utc).date(), time(0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)
