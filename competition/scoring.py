"""Scoring: metrics and group-bootstrap intervals (validation of rows is re-exported from validation).

Pure functions of arrays: no file, no printing, no tracking.  Every metric is a
:class:`Metric` (in the manner of ramp-workflow's score types) that knows its
name, direction, bounds and display precision.  Point values come from
scikit-learn; the 95% intervals come from a bootstrap that resamples
whole groups, computed for all resamples at once with matrix operations
(:mod:`competition.bootstrap`); the default interval is the studentized bootstrap
(bootstrap-t), whose coverage ``benchmarks/bench_coverage.py`` measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from types import MappingProxyType

import numpy as np
import sklearn
from sklearn import metrics as skm
from threadpoolctl import ThreadpoolController

from competition.bootstrap import INTERVALS, bootstrap_metrics, group_tables, jackknife_metrics, make_interval
from competition.bootstrap import resample_metrics
from competition.errors import ParameterError
from competition.validation import validate_submission  # re-exported: part of scoring's API

__all__ = ["CLIP", "INTERVALS", "METRICS", "THRESHOLD", "Metric", "ScoreReport",
           "score_predictions", "validate_submission"]

THRESHOLD = 0.5  # a chip with y_proba >= THRESHOLD is predicted a ship
CLIP = 1e-15  # log loss clips probabilities to [CLIP, 1 - CLIP]


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
        Group-bootstrap interval of every metric, by the method ``interval``; (NaN, NaN)
        without resamples or where the metric is undefined.
    confusion : ndarray of int, shape (2, 2)
        ``[[tn, fp], [fn, tp]]`` at ``THRESHOLD``.
    n, n_positive, n_groups : int
        Chips, ship chips and groups scored.
    n_bootstrap : int
        Resamples drawn.
    n_bootstrap_used : int
        Resamples holding both classes, those used for roc_auc and average_precision.
    confidence : float
    interval : str
        The interval method, one of ``INTERVALS``.
    replicates : dict of str to ndarray of shape (n_bootstrap,)
        Every metric on each resample (NaN where undefined).  The resamples depend only on the
        groups and ``random_state``, so two sets of predictions scored on the same chips with
        the same seed share them: the difference of their replicates is the paired bootstrap
        distribution of the difference of their scores.
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
    interval: str = "studentized"
    replicates: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

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
    interval: str = "studentized",
) -> ScoreReport:
    """Every metric of ``METRICS`` with a bootstrap interval that resamples whole groups.

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
    interval : {"studentized", "bca", "percentile"}
        ``studentized`` (default): the bootstrap-t, each resample divided by its own
        delta-method standard error; ``bca``: bias-corrected and accelerated
        percentiles (group jackknife); ``percentile``: plain percentiles.  All are
        clipped to the metric's bounds; see :mod:`competition.bootstrap`.

    Returns
    -------
    ScoreReport
        Resamples with a single class are left out of the roc_auc and
        average_precision intervals (``n_bootstrap_used`` counts those kept).

    Raises
    ------
    ParameterError
        If the arrays have different lengths or are empty, y_true holds values
        other than 0 and 1, y_proba values outside [0, 1], or an argument is out of range
        (``interval`` not one of ``INTERVALS``).

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
    if interval not in INTERVALS:
        raise ParameterError(f"interval={interval!r} is invalid; expected one of {', '.join(map(repr, INTERVALS))}")
    n_groups = int(codes.max()) + 1
    # The arrays are checked above (finite, in range, labels 0 and 1): scikit-learn need not check
    # its parameters again on every call (a third of the point values' time).
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        metrics = {name: metric(y_true, y_proba) for name, metric in METRICS.items()}
        confusion = skm.confusion_matrix(y_true, (y_proba >= THRESHOLD).astype(np.int64), labels=[0, 1])
    values, intervals = _bootstrap(y_true, y_proba, codes, n_groups, int(n_bootstrap), confidence, interval,
                                   random_state)
    return ScoreReport(
        metrics=metrics, intervals=intervals, confusion=confusion, n=len(y_true), n_positive=int(y_true.sum()),
        n_groups=n_groups, n_bootstrap=int(n_bootstrap), confidence=float(confidence),
        n_bootstrap_used=int(np.isfinite(values["roc_auc"]).sum()), interval=interval,  # both classes
        replicates={name: np.asarray(values[name], dtype=np.float64) for name in METRICS},
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


@cache
def _threadpools() -> ThreadpoolController:
    """The process's thread pools (numpy's BLAS is loaded with numpy), looked up once: 1 ms a time."""
    return ThreadpoolController()


def _bootstrap(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int, n_bootstrap: int,
               confidence: float, method: str, random_state: int | None
               ) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Every metric on ``n_bootstrap`` group resamples {name: (B,)} (NaN where undefined), and its interval."""
    if n_bootstrap == 0:
        return {name: np.empty(0) for name in METRICS}, {name: (math.nan, math.nan) for name in METRICS}
    # Small matrix products: one BLAS thread is several times faster than many, and leaves the
    # other cores to the other requests and processes.
    with _threadpools().limit(limits=1, user_api="blas"):
        tables = group_tables(y, p, codes, n_groups, threshold=THRESHOLD, clip=CLIP)
        values, errors = bootstrap_metrics(tables, n_bootstrap, random_state, with_se=method == "studentized")
        point, se = resample_metrics(np.ones((1, n_groups)), *tables, with_se=True)  # the resamples' arithmetic
        jackknife = jackknife_metrics(tables) if method == "bca" else {}
    alpha = (1.0 - confidence) / 2.0
    intervals = {
        name: make_interval(method, float(point[name][0]), values[name], alpha, (metric.minimum, metric.maximum),
                            n_groups=n_groups, se=float(se[name][0]), errors=errors.get(name),
                            jackknife=jackknife.get(name))
        for name, metric in METRICS.items()
    }
    return values, intervals
