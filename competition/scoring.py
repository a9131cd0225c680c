"""Scoring: metrics and group-bootstrap intervals (validation of rows is re-exported from validation).

Pure functions of arrays: no file, no printing, no tracking.  Every metric is a
:class:`Metric` (in the manner of ramp-workflow's score types) that knows its
name, direction, bounds and display precision.  Point values come from
scikit-learn; the 95% intervals come from a percentile bootstrap that resamples
whole groups, computed for all resamples at once with matrix operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType

import numpy as np
from scipy import sparse
from sklearn import metrics as skm

from competition.errors import ParameterError
from competition.validation import validate_submission  # re-exported: part of scoring's API

__all__ = ["CLIP", "METRICS", "THRESHOLD", "Metric", "ScoreReport",
           "score_predictions", "validate_submission"]

THRESHOLD = 0.5  # a chip with y_proba >= THRESHOLD is predicted a ship
CLIP = 1e-15  # log loss clips probabilities to [CLIP, 1 - CLIP]
_CHUNK_CELLS = 2**21  # bootstrap resamples are processed in chunks of about this many matrix cells


@dataclass(frozen=True)
class Metric:
    """One score type: its name, direction, bounds, display precision and scikit-learn function.

    Attributes
    ----------
    name : str
        The name used in JSON, the store and MLflow.
    greater_is_better : bool
    minimum, maximum : float
        Bounds of the value.
    precision : int
        Decimals to display.
    uses_proba : bool
        True: computed on probabilities; False: on 0/1 predictions at ``THRESHOLD``.
    needs_both_classes : bool
        True: undefined (NaN) unless y_true holds both classes.
    function : callable
        ``function(y_true, y_score) -> float`` from scikit-learn.
    """

    name: str
    greater_is_better: bool
    minimum: float
    maximum: float
    precision: int
    uses_proba: bool
    needs_both_classes: bool
    function: Callable[[np.ndarray, np.ndarray], float]

    @property
    def worst(self) -> float:
        """The worst possible value."""
        return self.minimum if self.greater_is_better else self.maximum

    def __call__(self, y_true: np.ndarray, y_proba: np.ndarray) -> float:
        """Point value on ``y_true`` (n,) and ``y_proba`` (n,); NaN where undefined."""
        y_true, y_proba = np.asarray(y_true), np.asarray(y_proba, dtype=np.float64)
        if self.needs_both_classes and (len(y_true) == 0 or y_true.min() == y_true.max()):
            return math.nan
        y_score = y_proba if self.uses_proba else (y_proba >= THRESHOLD).astype(np.int64)
        return float(self.function(y_true, y_score))

    def format(self, value: float) -> str:
        """The value with this metric's precision (``'nan'`` when undefined)."""
        return f"{value:.{self.precision}f}"

    def is_better(self, a: float, b: float) -> bool:
        """True if value ``a`` is strictly better than value ``b``."""
        return a > b if self.greater_is_better else a < b


def _log_loss(y_true: np.ndarray, y_proba: np.ndarray) -> float:
    """Log loss with probabilities clipped to [CLIP, 1 - CLIP]."""
    return skm.log_loss(y_true, np.clip(y_proba, CLIP, 1 - CLIP), labels=[0, 1])


_MAX_LOG_LOSS = -math.log(CLIP)
METRICS: MappingProxyType[str, Metric] = MappingProxyType({m.name: m for m in (
    Metric("roc_auc", True, 0.0, 1.0, 4, True, True, skm.roc_auc_score),
    Metric("log_loss", False, 0.0, _MAX_LOG_LOSS, 4, True, False, _log_loss),
    Metric("average_precision", True, 0.0, 1.0, 4, True, True, skm.average_precision_score),
    Metric("brier_loss", False, 0.0, 1.0, 4, True, False, partial(skm.brier_score_loss, labels=[0, 1])),
    Metric("accuracy", True, 0.0, 1.0, 4, False, False, skm.accuracy_score),
    Metric("precision", True, 0.0, 1.0, 4, False, False, partial(skm.precision_score, zero_division=0)),
    Metric("recall", True, 0.0, 1.0, 4, False, False, partial(skm.recall_score, zero_division=0)),
    Metric("f1", True, 0.0, 1.0, 4, False, False, partial(skm.f1_score, zero_division=0)),
)})
_CONFUSION = ("tn", "fp", "fn", "tp")


@dataclass(frozen=True)
class ScoreReport:
    """Metrics of one set of predictions, with bootstrap intervals.

    Attributes
    ----------
    metrics : dict of str to float
        Point value of every metric of ``METRICS`` (NaN where undefined).
    intervals : dict of str to (float, float)
        Percentile bootstrap interval of every metric; (NaN, NaN) without resamples.
    confusion : ndarray of int, shape (2, 2)
        ``[[tn, fp], [fn, tp]]`` at ``THRESHOLD``.
    n, n_positive, n_groups : int
        Chips, ship chips and groups scored.
    n_bootstrap : int
        Resamples drawn.
    n_bootstrap_used : int
        Resamples holding both classes, those used for roc_auc and average_precision.
    confidence : float
    """

    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    confusion: np.ndarray
    n: int
    n_positive: int
    n_groups: int
    n_bootstrap: int
    n_bootstrap_used: int
    confidence: float

    def to_dict(self) -> dict[str, float | int | None]:
        """Flat JSON-able dict: ``NAME``, ``NAME_low``, ``NAME_high``, tn, fp, fn, tp, n, n_positive, n_groups.

        Undefined values (NaN) become None.
        """
        out: dict[str, float | int | None] = {}
        for name, value in self.metrics.items():
            low, high = self.intervals[name]
            for key, v in ((name, value), (f"{name}_low", low), (f"{name}_high", high)):
                out[key] = None if math.isnan(v) else float(v)
        out.update(zip(_CONFUSION, (int(v) for v in self.confusion.ravel())))
        out.update(n=self.n, n_positive=self.n_positive, n_groups=self.n_groups)
        return out



def score_predictions(
    y_true: np.ndarray,
    y_proba: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> ScoreReport:
    """Every metric of ``METRICS`` with a percentile bootstrap interval that resamples whole groups.

    Parameters
    ----------
    y_true : array of shape (n,)
        Labels, 1 ship and 0 no ship.
    y_proba : array of shape (n,)
        Predicted probability of ship, in [0, 1].
    groups : array of shape (n,), optional
        Group of each chip; a resample draws as many groups as there are, with
        replacement, and keeps all chips of each draw.  None: every chip is its own group.
    n_bootstrap : int
        Number of resamples; 0 for point values only.
    confidence : float
        Coverage of the interval, in (0, 1).
    random_state : int or None
        Seed of the resampling; the same seed gives the same intervals.

    Returns
    -------
    ScoreReport
        Resamples with a single class are left out of the roc_auc and
        average_precision intervals (``n_bootstrap_used`` counts those kept).

    Raises
    ------
    ParameterError
        If the arrays have different lengths or are empty, y_true holds values
        other than 0 and 1, y_proba values outside [0, 1], or an argument is out of range.

    Examples
    --------
    >>> y_true = np.array([0, 0, 1, 1, 0, 1, 0, 0])
    >>> y_proba = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.3])
    >>> report = score_predictions(y_true, y_proba, groups=[1, 1, 2, 2, 3, 3, 4, 4], n_bootstrap=200)
    >>> round(report.metrics["roc_auc"], 4), report.n_groups
    (0.8667, 4)
    >>> d = report.to_dict()
    >>> d["tp"], d["fp"], d["roc_auc_low"] <= d["roc_auc"] <= d["roc_auc_high"]
    (2, 1, True)
    """
    y_true, y_proba, codes = _check_inputs(y_true, y_proba, groups, n_bootstrap, confidence)
    n_groups = int(codes.max()) + 1
    metrics = {name: metric(y_true, y_proba) for name, metric in METRICS.items()}
    confusion = skm.confusion_matrix(y_true, (y_proba >= THRESHOLD).astype(np.int64), labels=[0, 1])
    values = _bootstrap(y_true, y_proba, codes, n_groups, int(n_bootstrap), random_state)
    alpha = (1.0 - confidence) / 2.0
    intervals = {name: _percentiles(values[name], alpha) for name in METRICS}
    return ScoreReport(
        metrics=metrics, intervals=intervals, confusion=confusion, n=len(y_true), n_positive=int(y_true.sum()),
        n_groups=n_groups, n_bootstrap=int(n_bootstrap), confidence=float(confidence),
        n_bootstrap_used=int(np.isfinite(values["roc_auc"]).sum()),  # resamples holding both classes
    )


def _check_inputs(y_true, y_proba, groups, n_bootstrap, confidence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (y_true int64, y_proba float64, group codes 0..G-1), or ParameterError."""
    y_true, y_proba = np.asarray(y_true).ravel(), np.asarray(y_proba, dtype=np.float64).ravel()
    if len(y_true) == 0 or len(y_true) != len(y_proba):
        raise ParameterError(
            f"y_true has {len(y_true)} values and y_proba {len(y_proba)}; expected the same length >= 1"
        )
    if not np.all((y_true == 0) | (y_true == 1)):
        raise ParameterError("y_true holds values other than 0 and 1; expected labels 1 (ship) and 0 (no ship)")
    bad = y_proba[~((y_proba >= 0) & (y_proba <= 1))]
    if len(bad):
        raise ParameterError(f"y_proba holds {len(bad)} values outside [0, 1], e.g. {bad[:5].tolist()}; "
                             "expected probabilities of ship")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ParameterError(f"n_bootstrap={n_bootstrap!r} is invalid; expected an int >= 0")
    if not 0.0 < confidence < 1.0:
        raise ParameterError(f"confidence={confidence!r} is invalid; expected a fraction in (0, 1), e.g. 0.95")
    if groups is None:
        return y_true.astype(np.int64), y_proba, np.arange(len(y_true))
    groups = np.asarray(groups).ravel()
    if len(groups) != len(y_true):
        raise ParameterError(f"groups has {len(groups)} values but y_true {len(y_true)}; expected one group per chip")
    return y_true.astype(np.int64), y_proba, np.unique(groups, return_inverse=True)[1].ravel()


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """(low, high) percentiles of the finite values; (NaN, NaN) if there are none."""
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _bootstrap(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int, n_bootstrap: int,
               random_state: int | None) -> dict[str, np.ndarray]:
    """Every metric on ``n_bootstrap`` group resamples: {name: (n_bootstrap,)}, NaN where undefined.

    A resample draws ``n_groups`` groups with replacement; group g drawn c_g
    times gives each of its chips the weight c_g, so a resample is a row of
    group counts C (B, G) and every weighted sum over chips is a product with
    a per-group matrix: (B, G) @ (G, k).
    """
    if n_bootstrap == 0:
        return {name: np.empty(0) for name in METRICS}
    tables = _group_tables(y, p, codes, n_groups)
    rng = np.random.default_rng(random_state)
    chunk = max(1, min(n_bootstrap, _CHUNK_CELLS // max(n_groups, tables[1].shape[1])))
    parts = []
    for start in range(0, n_bootstrap, chunk):
        m = min(chunk, n_bootstrap - start)
        draws = rng.integers(0, n_groups, size=(m, n_groups)) + (np.arange(m) * n_groups)[:, None]
        counts = np.bincount(draws.ravel(), minlength=m * n_groups).reshape(m, n_groups).astype(np.float64)
        parts.append(_resample_metrics(counts, *tables))
    return {name: np.concatenate([part[name] for part in parts]) for name in METRICS}


def _group_tables(y: np.ndarray, p: np.ndarray, codes: np.ndarray,
                  n_groups: int) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Per-group sums (G, 6): n, log loss, Brier, tp, fp, fn; and per-(group, score) counts (G, 2K) as sparse.

    Columns 0..K-1 of the sparse table count positives at each distinct score
    (ascending), columns K..2K-1 negatives.
    """
    q = np.clip(p, CLIP, 1 - CLIP)
    loss = -(y * np.log(q) + (1 - y) * np.log1p(-q))
    pred = p >= THRESHOLD
    chip = np.stack([np.ones_like(p), loss, (p - y) ** 2, pred & (y == 1), pred & (y == 0), ~pred & (y == 1)], axis=1)
    sums = np.stack([np.bincount(codes, chip[:, j], minlength=n_groups) for j in range(chip.shape[1])], axis=1)
    _, block = np.unique(p, return_inverse=True)
    n_blocks = int(block.max()) + 1
    cols = block.ravel() + n_blocks * (1 - y)
    blocks = sparse.csr_matrix((np.ones(len(y)), (codes, cols)), shape=(n_groups, 2 * n_blocks))
    return sums, blocks


def _resample_metrics(counts: np.ndarray, sums: np.ndarray, blocks: sparse.csr_matrix) -> dict[str, np.ndarray]:
    """Every metric for each row of group counts ``counts`` (m, G): {name: (m,)}."""
    n, loss, brier, tp, fp, fn = (counts @ sums).T
    tn = n - tp - fp - fn
    weighted = np.asarray((blocks.T @ counts.T).T)
    k = weighted.shape[1] // 2
    pos, neg = weighted[:, :k], weighted[:, k:]
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    both = (n_pos > 0) & (n_neg > 0)
    below = np.cumsum(neg, axis=1) - neg  # negatives scored strictly lower; ties count half
    auc = (pos * (below + 0.5 * neg)).sum(axis=1)
    tp_at = np.cumsum(pos[:, ::-1], axis=1)
    called = tp_at + np.cumsum(neg[:, ::-1], axis=1)
    precision_at = np.divide(tp_at, called, out=np.zeros_like(called), where=called > 0)
    ap = (pos[:, ::-1] * precision_at).sum(axis=1)
    return {
        "roc_auc": _ratio(auc, n_pos * n_neg, both),
        "log_loss": loss / n,
        "average_precision": _ratio(ap, n_pos, both),
        "brier_loss": brier / n,
        "accuracy": (tp + tn) / n,
        "precision": _ratio(tp, tp + fp, tp + fp > 0, fill=0.0),
        "recall": _ratio(tp, tp + fn, tp + fn > 0, fill=0.0),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, 2 * tp + fp + fn > 0, fill=0.0),
    }


def _ratio(num: np.ndarray, den: np.ndarray, ok: np.ndarray, fill: float = math.nan) -> np.ndarray:
    """num / den where ``ok``, else ``fill``."""
    return np.divide(num, den, out=np.full(num.shape, fill), where=ok)

# kind: (message for one row with {found}, message for several rows, the fix)
