"""Logistic regression on scaled pixels, its C chosen by grouped nested cross-validation.

Pixels at half resolution (2x2 means, 40x40x3 values), each chip standardised by its own
mean and spread; the inverse regularisation C is tuned by an inner StratifiedGroupKFold
over the groups given to ``fit`` ("tune inside, estimate outside").
"""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from baselines._features import ChipClassifier, ChipPixels

__all__ = ["make_estimator", "DEFAULT_CS"]

DEFAULT_CS = (3e-4, 1e-3, 3e-3)


def make_estimator(random_state=0, C=None, Cs=DEFAULT_CS, pool=2, inner_splits=3, max_iter=1000,
                   n_jobs=None) -> ChipClassifier:
    """Logistic regression on raw chips.

    Parameters
    ----------
    random_state : int or None, default=0
        Seed of the inner folds.
    C : float or None, default=None
        A fixed inverse regularisation strength; None tunes it over ``Cs``.
    Cs : sequence of float, default=(3e-4, 1e-3, 3e-3)
        Candidates for C (inner grouped CV picks the best ROC AUC).
    pool : int, default=2
        Side of the square of pixels averaged into one (1: full 80x80 resolution).
    inner_splits : int, default=3
        Folds of the inner search.
    max_iter : int, default=1000
        Iterations of the lbfgs solver.
    n_jobs : int or None, default=None
        Parallel jobs of the inner search.

    Returns
    -------
    ChipClassifier
    """
    pipeline = Pipeline([
        ("pixels", ChipPixels(pool=pool, standardize=True)),
        ("model", LogisticRegression(C=1.0 if C is None else C, max_iter=max_iter)),
    ])
    grid = {"model__C": list(Cs)} if C is None else None
    return ChipClassifier(pipeline, param_grid=grid, inner_splits=inner_splits, random_state=random_state,
                          n_jobs=n_jobs)
