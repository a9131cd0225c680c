"""Shared pieces of the classic baselines: chip checks, pixel features, grouped inner tuning.

Every classic baseline is a :class:`ChipClassifier`: a scikit-learn pipeline over
raw uint8 chips ``(n, 80, 80, 3)`` whose first step, :class:`ChipPixels`, scales
the pixels (and optionally pools them and standardises each chip), wrapped so that
``fit(X, y, groups=None)`` can tune hyper-parameters by a grouped inner
cross-validation: "tune inside, estimate outside".
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController

from competition.data import CHIP_SHAPE, check_chips
from competition.errors import ParameterError

__all__ = ["ChipClassifier", "ChipPixels", "check_chips", "chip_pixels"]

_CHUNK = 1024  # chips converted to float at a time


@functools.cache
def _threadpools() -> ThreadpoolController:
    """One controller for the process: building one re-reads the loaded libraries (ms per call)."""
    return ThreadpoolController()


def _blas_limit(n_threads):
    """Context manager limiting BLAS to ``n_threads`` (None: no limit)."""
    return _threadpools().limit(limits=n_threads, user_api="blas")


def chip_pixels(X: np.ndarray, pool: int = 1, standardize: bool = False) -> np.ndarray:
    """Pixels of raw chips as float32 rows, scaled to [0, 1] (or standardised per chip).

    Parameters
    ----------
    X : ndarray of shape (n, 80, 80, 3), uint8
    pool : int
        Side of the square averaged into one pixel (1, 2, 4, 5, 8, ...; must divide 80).
    standardize : bool
        After pooling, subtract each chip's mean and divide by its standard deviation,
        which removes the brightness and contrast of the acquisition day.

    Returns
    -------
    ndarray of shape (n, 3 * (80 // pool) ** 2), float32
    """
    X = check_chips(X)
    side = CHIP_SHAPE[0] // pool
    out = np.empty((len(X), side * side * 3), dtype=np.float32)
    for start in range(0, len(X), _CHUNK):  # bounded memory for any number of chips
        part = X[start:start + _CHUNK].astype(np.float32) / 255.0
        if pool > 1:
            part = part.reshape(len(part), side, pool, side, pool, 3).mean(axis=(2, 4))
        part = part.reshape(len(part), -1)
        if standardize:
            part -= part.mean(axis=1, keepdims=True)
            part /= part.std(axis=1, keepdims=True) + 1e-3
        out[start:start + len(part)] = part
    return out


class ChipPixels(TransformerMixin, BaseEstimator):
    """Stateless transformer: raw chips to scaled pixel rows (see :func:`chip_pixels`).

    Parameters
    ----------
    pool : int, default=1
        Side of the square of pixels averaged into one (must divide 80).
    standardize : bool, default=False
        Standardise each chip by its own mean and standard deviation.
    """

    def __init__(self, pool=1, standardize=False):
        self.pool = pool
        self.standardize = standardize

    def fit(self, X, y=None):
        """Check the parameters; nothing is learnt."""
        if not isinstance(self.pool, (int, np.integer)) or self.pool < 1 or CHIP_SHAPE[0] % self.pool:
            raise ParameterError(f"pool={self.pool!r} is invalid; expected an int that divides 80 (1, 2, 4, 5, 8, ...)")
        check_chips(X)
        return self

    def transform(self, X):
        """Pixel rows of shape ``(n, 3 * (80 // pool) ** 2)``, float32."""
        return chip_pixels(X, pool=self.pool, standardize=self.standardize)


class ChipClassifier(ClassifierMixin, BaseEstimator):
    """A pipeline over raw chips whose ``fit`` accepts ``groups`` for grouped inner tuning.

    Parameters
    ----------
    pipeline : estimator
        Classifier (usually a :class:`~sklearn.pipeline.Pipeline` starting with
        :class:`ChipPixels`) that takes raw chips.
    param_grid : dict or None, default=None
        Grid of ``pipeline`` parameters to tune.  None: fit ``pipeline`` as it is.
    inner_splits : int, default=3
        Folds of the inner search: ``StratifiedGroupKFold`` over ``groups`` when ``fit``
        gets them, ``StratifiedKFold`` otherwise.
    scoring : str, default="roc_auc"
        Score that picks the parameters of the grid.
    random_state : int or None, default=0
        Seed of the inner folds.
    n_jobs : int or None, default=None
        Parallel jobs of the inner search.
    blas_threads : int or None, default=1
        BLAS threads during ``fit`` and ``predict_proba``.  One is the fastest at these
        sizes (a fit of logreg on all train chips: 7.8 s with one thread, 14.4 s with two,
        measured on 2 cores); parallelism comes from folds and the inner search instead.
        None leaves the BLAS setting as it is.

    Attributes
    ----------
    estimator_ : the fitted pipeline (refitted on all chips with the best parameters)
    classes_ : ndarray of shape (2,)
    best_params_ : dict
        The parameters chosen by the inner search (empty without ``param_grid``).
    inner_scores_ : dict of str to float
        Mean inner-CV score of each candidate, keyed by its parameters.
    """

    def __init__(self, pipeline, param_grid=None, inner_splits=3, scoring="roc_auc", random_state=0, n_jobs=None,
                 blas_threads=1):
        self.pipeline = pipeline
        self.param_grid = param_grid
        self.inner_splits = inner_splits
        self.scoring = scoring
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.blas_threads = blas_threads

    def fit(self, X, y, groups=None):
        """Fit on raw chips; with ``param_grid``, choose the parameters by grouped inner CV first.

        Parameters
        ----------
        X : ndarray of shape (n, 80, 80, 3), uint8
        y : array of shape (n,), 0/1
        groups : array of shape (n,), optional
            Group of each chip (acquisition day); inner folds never split a group.
        """
        X = check_chips(X)
        y = _check_labels(y, len(X))
        try:
            with _blas_limit(self.blas_threads):
                return self._fit(X, y, groups)
        except InvalidParameterError as exc:  # a hyper-parameter given by the user: input, not a bug
            raise ParameterError(f"invalid baseline parameter: {exc}") from exc

    def _fit(self, X, y, groups):
        if not self.param_grid:
            self.estimator_ = clone(self.pipeline).fit(X, y)
            self.best_params_, self.inner_scores_ = {}, {}
        else:
            search = GridSearchCV(clone(self.pipeline), self.param_grid, scoring=self.scoring,
                                  cv=self._inner_cv(y, groups), n_jobs=self.n_jobs, refit=True, error_score="raise")
            search.fit(X, y, groups=groups)
            self.estimator_ = search.best_estimator_
            self.best_params_ = dict(search.best_params_)
            self.inner_scores_ = {_label(p): float(s) for p, s in
                                  zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])}
        self.classes_ = self.estimator_.classes_
        return self

    def _inner_cv(self, y, groups):
        if not isinstance(self.inner_splits, (int, np.integer)) or self.inner_splits < 2:
            raise ParameterError(f"inner_splits={self.inner_splits!r} is invalid; expected an int >= 2")
        if groups is None:
            return StratifiedKFold(self.inner_splits, shuffle=True, random_state=self.random_state)
        n_groups = len(np.unique(np.asarray(groups)))
        if n_groups < self.inner_splits:
            raise ParameterError(
                f"inner_splits={self.inner_splits} is more than the {n_groups} groups given to fit; "
                f"expected inner_splits <= {n_groups} (or fit without groups)"
            )
        return StratifiedGroupKFold(self.inner_splits, shuffle=True, random_state=self.random_state)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of no ship and ship, shape ``(n, 2)``."""
        check_is_fitted(self, "estimator_")
        X = check_chips(X)
        with _blas_limit(self.blas_threads):
            return self.estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """0/1 prediction at probability 0.5."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def _check_labels(y, n: int) -> np.ndarray:
    """Labels of ``n`` chips: 0/1 with both classes present (a proba of shape (n, 2) needs both)."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ParameterError(f"y has shape {y.shape}; expected ({n},), one label per chip")
    found = sorted(set(np.unique(y).tolist()))
    if found != [0, 1]:
        raise ParameterError(f"y holds the labels {found}; expected both 0 (no ship) and 1 (ship)")
    return y


def _label(params: dict) -> str:
    """``'model__C=0.001'``: a readable key for one candidate of a grid."""
    return ",".join(f"{k}={v}" for k, v in sorted(params.items()))
