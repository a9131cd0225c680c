"""Cross-validation of any baseline, or a team's own model, with scikit-learn's splitters.

Four ways to split the training chips:

- ``date`` (default) and ``scene``: whole acquisition days or whole scenes, with
  ``StratifiedGroupKFold`` over the groups given; or the workspace's official folds
  (``public/folds.csv``, a ``PredefinedSplit``) when they are passed as ``folds``;
- ``stratified`` (``StratifiedKFold``) and ``random`` (``KFold``): leaky, since neighbouring
  and shifted copies of one ship then fall on both sides; they exist to measure by how much
  a leaky split overstates a score.

:func:`competition.folds.plan_folds` decides which: the official folds unless another split or another number
of folds is asked for, and then it says why the folds are fresh ones.

Folds run in parallel (joblib), each a clone of the estimator fitted on its training chips
and scored on its test chips, so that a progress callback hears of every finished fold.  Inside
:func:`competition.cluster.dask_backend` the same joblib calls (the folds, and a baseline's
inner search) run on a Dask distributed cluster instead of local processes, with the same numbers.  The groups are
passed on to ``fit`` (``fit(X, y, groups=...)``), so a baseline that tunes itself by an
inner cross-validation keeps that inner split grouped too.  Per-fold metrics are those of
:mod:`competition.scoring` (no bootstrap inside folds): one vocabulary for CV and submissions;
:func:`score_out_of_fold` adds the pooled out-of-fold metrics with group-bootstrap intervals.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold

from competition.errors import ParameterError
from competition.folds import (CV_KINDS, GROUPED_CV_KINDS, LEAKY_CV_KINDS, FoldPlan, check_leaky_n_splits,
                               check_n_splits, make_splitter, plan_folds)
from competition.scoring import METRICS, ScoreReport, score_predictions

__all__ = ["CV_KINDS", "LEAKY_CV_KINDS", "CVResult", "FoldResult", "FoldPlan", "check_n_splits", "plan_folds",
           "make_splitter", "cross_validate_model", "cross_validate_plan", "score_out_of_fold"]
# the splitter side comes from competition.folds

@dataclass(frozen=True)
class FoldResult:
    """One fold: sizes, metrics (the names of ``METRICS``), times, and the fitted estimator if kept."""

    fold: int
    n_train: int
    n_test: int
    metrics: dict[str, float]
    fit_time: float
    score_time: float
    estimator: object = None


@dataclass(frozen=True)
class CVResult:
    """Outcome of :func:`cross_validate_model`.

    Attributes
    ----------
    cv : str
        One of ``CV_KINDS``.
    n_splits : int
    splitter : str
        The scikit-learn splitter used, e.g. ``PredefinedSplit (official folds)``.
    folds : list of FoldResult
        In fold order.
    y_true : ndarray of shape (n,)
    y_proba : ndarray of shape (n,)
        Out-of-fold probability of ship of every chip (each chip is in exactly one test fold).
    test_fold : ndarray of shape (n,)
        The fold in which each chip was predicted.
    official_folds : bool
        True when the folds were the workspace's official ones (``folds`` was given).
    fresh_folds_reason : str
        Why fresh folds were used instead of the official ones (see :class:`FoldPlan`); "" otherwise.
    out_of_fold : ScoreReport or None
        Every metric of the pooled out-of-fold predictions with its group-bootstrap interval
        (see :func:`score_out_of_fold`); None until computed.
    """

    cv: str
    n_splits: int
    splitter: str
    folds: list[FoldResult]
    y_true: np.ndarray
    y_proba: np.ndarray
    test_fold: np.ndarray
    mean: dict[str, float] = field(init=False)
    std: dict[str, float] = field(init=False)
    official_folds: bool = False
    fresh_folds_reason: str = ""
    out_of_fold: ScoreReport | None = None

    def __post_init__(self):
        values = {name: np.array([f.metrics[name] for f in self.folds], dtype=float) for name in METRICS}
        values["fit_time"] = np.array([f.fit_time for f in self.folds])
        mean = {k: float(np.nanmean(v)) if not np.isnan(v).all() else math.nan for k, v in values.items()}
        std = {k: float(np.nanstd(v)) if not np.isnan(v).all() else math.nan for k, v in values.items()}
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def estimators(self) -> list:
        """The fitted estimator of each fold (empty unless ``return_estimator=True``)."""
        return [f.estimator for f in self.folds if f.estimator is not None]

    def to_dict(self) -> dict:
        """JSON-ready summary: per-fold metrics, mean and std (NaN as None)."""
        return {
            "cv": self.cv,
            "n_splits": self.n_splits,
            "splitter": self.splitter,
            "official_folds": self.official_folds,
            "fresh_folds_reason": self.fresh_folds_reason or None,
            "folds": [{"fold": f.fold, "n_train": f.n_train, "n_test": f.n_test,
                       **{k: _none(v) for k, v in f.metrics.items()},
                       "fit_time": round(f.fit_time, 3), "score_time": round(f.score_time, 3)} for f in self.folds],
            "mean": {k: _none(v) for k, v in self.mean.items()},
            "std": {k: _none(v) for k, v in self.std.items()},
            "out_of_fold": None if self.out_of_fold is None else self.out_of_fold.to_dict(),
        }


def cross_validate_model(
    estimator,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    cv: str = "date",
    n_splits: int | None = None,
    random_state=0,
    n_jobs: int | None = None,
    folds: np.ndarray | None = None,
    return_estimator: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> CVResult:
    """Cross-validate an estimator on raw chips and score every fold.

    Parameters
    ----------
    estimator : estimator
        Unfitted; cloned for each fold.  When its ``fit`` takes ``groups``, it gets the
        training fold's groups.
    X : ndarray of shape (n, 80, 80, 3), uint8
    y : array of shape (n,)
    groups : array of shape (n,), optional
        Acquisition day of each chip for ``date``, scene id for ``scene``; required by both.
    cv : {'date', 'scene', 'stratified', 'random'}
    n_splits : int, optional
        Default: the number of ``folds`` when given, else 5.
    random_state : int or None, default=0
        Seed of the shuffled splitters.
    n_jobs : int or None
        Folds run at once (joblib); None or 1: one after the other.
    folds : array of shape (n,), optional
        The official fold of each chip (``public/folds.csv``; see :func:`plan_folds`): the
        folds are then exactly these (``PredefinedSplit``), for a grouped ``cv`` only.
    return_estimator : bool, default=False
        Keep each fold's fitted estimator in the result.
    progress : callable, optional
        Called as ``progress(done, total)`` once at the start and after each fold.

    Returns
    -------
    CVResult

    Raises
    ------
    ParameterError
        For an unknown ``cv``, ``n_splits`` < 2, more folds than groups (or than chips of
        a class), missing groups, arrays of different lengths, or ``folds`` with a leaky
        ``cv`` or with another number of folds than ``n_splits``.
    """
    y = np.asarray(y)
    if len(X) != len(y) or (groups is not None and len(groups) != len(y)) or (folds is not None and len(folds) != len(y)):
        raise ParameterError(f"X, y, groups and folds must have one entry per chip; got lengths "
                             f"{len(X)}, {len(y)}, {None if groups is None else len(groups)}, "
                             f"{None if folds is None else len(folds)}")
    grouped = cv in GROUPED_CV_KINDS
    if grouped and groups is None:
        raise ParameterError(f"cv={cv!r} needs the groups of the chips; pass groups=...")
    if folds is not None:
        n_folds = len(np.unique(folds))
        if n_splits is not None and n_splits != n_folds:
            raise ParameterError(f"n_splits={n_splits} but the official folds are {n_folds}; pass n_splits={n_folds} "
                                 "or folds=None for fresh folds")
        n_splits = n_folds
    n_splits = 5 if n_splits is None else n_splits
    check_n_splits(n_splits, groups if grouped else None)
    if not grouped:
        check_leaky_n_splits(n_splits, y, cv)
    splitter, description = make_splitter(cv, n_splits=n_splits, random_state=random_state, folds=folds)
    split_groups = groups if isinstance(splitter, StratifiedGroupKFold) else None
    splits = list(splitter.split(np.zeros(len(y)), y, split_groups))
    fit_groups = groups if groups is not None and "groups" in inspect.signature(estimator.fit).parameters else None

    if progress:
        progress(0, len(splits))
    jobs = (delayed(_run_fold)(estimator, X, y, fit_groups, k, train, test, return_estimator)
            for k, (train, test) in enumerate(splits))
    results = []
    parallel = Parallel(n_jobs=min(n_jobs or 1, len(splits)), return_as="generator_unordered")
    for result in parallel(jobs):
        results.append(result)
        if progress:
            progress(len(results), len(splits))
    ordered = sorted(results, key=lambda r: r[0].fold)
    return _collect(cv, len(splits), description, splits, y, ordered, official=folds is not None)


def cross_validate_plan(estimator, X: np.ndarray, y: np.ndarray, plan: FoldPlan, **kwargs) -> CVResult:
    """:func:`cross_validate_model` on the split of a :class:`~competition.folds.FoldPlan`.

    The result says whether the folds were the official ones and, if not, why
    (``official_folds``, ``fresh_folds_reason``).  ``kwargs`` go to :func:`cross_validate_model`
    (``random_state``, ``n_jobs``, ``return_estimator``, ``progress``).
    """
    result = cross_validate_model(estimator, X, y, plan.groups, cv=plan.cv, n_splits=plan.n_splits, folds=plan.folds,
                                  **kwargs)
    return replace(result, fresh_folds_reason=plan.reason)


def score_out_of_fold(result: CVResult, groups: np.ndarray, *, n_bootstrap: int = 1000, random_state=0) -> CVResult:
    """``result`` with ``out_of_fold``: every metric of its pooled out-of-fold predictions and their intervals.

    The intervals resample whole ``groups`` (the acquisition days, as for a scored
    submission), so near-copies of one ship never count as independent evidence.
    """
    y_proba = np.clip(result.y_proba, 0.0, 1.0)
    report = score_predictions(result.y_true, y_proba, groups=np.asarray(groups), n_bootstrap=n_bootstrap,
                               random_state=random_state)
    return replace(result, out_of_fold=report)


def _run_fold(estimator, X, y, groups, k: int, train: np.ndarray, test: np.ndarray, keep: bool):
    """Fit a clone on the training chips, predict and score the test chips; return the fold and its predictions.

    No joblib call of its own, so that on a Dask cluster (:func:`competition.cluster.dask_backend`)
    only the estimator's inner search, if any, fans out to the workers.
    """
    fitted = clone(estimator)
    start = time.perf_counter()
    fitted.fit(X[train], y[train], **({} if groups is None else {"groups": groups[train]}))
    fit_time = time.perf_counter() - start
    proba = np.asarray(fitted.predict_proba(X[test]))
    if proba.ndim != 2 or proba.shape != (len(test), 2):
        raise ParameterError(f"{type(fitted).__name__}.predict_proba returned shape {proba.shape}; "
                             f"expected ({len(test)}, 2)")
    y_proba = proba[:, 1].astype(np.float64)
    metrics = score_predictions(y[test], np.clip(y_proba, 0.0, 1.0), n_bootstrap=0).metrics
    fold = FoldResult(fold=k, n_train=len(train), n_test=len(test), metrics=metrics, fit_time=fit_time,
                      score_time=time.perf_counter() - start - fit_time, estimator=fitted if keep else None)
    return fold, y_proba


def _collect(cv: str, n_splits: int, description: str, splits, y, results, official: bool) -> CVResult:
    y_proba = np.full(len(y), np.nan)
    test_fold = np.full(len(y), -1, dtype=np.int64)
    for fold, proba in results:
        test = splits[fold.fold][1]
        y_proba[test] = proba
        test_fold[test] = fold.fold
    return CVResult(cv=cv, n_splits=n_splits, splitter=description, folds=[r[0] for r in results],
                    y_true=y, y_proba=y_proba, test_fold=test_fold, official_folds=official)


def _none(value: float):
    return None if isinstance(value, float) and math.isnan(value) else value
