"""XGBoost: gradient-boosted trees on standardised 20x20 pixel means (1200 features).

Each chip is standardised by its own mean and spread, then averaged over 4x4 squares;
200 trees of depth 4 with row and column subsampling (histogram method, 64 bins).
"""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from baselines._features import ChipClassifier, ChipPixels

__all__ = ["make_estimator"]


def make_estimator(random_state=0, n_estimators=200, max_depth=4, learning_rate=0.1, subsample=0.8,
                   colsample_bytree=0.3, max_bin=64, pool=4, n_jobs=None) -> ChipClassifier:
    """``XGBClassifier`` on raw chips (xgboost is imported here, not with the module).

    Parameters
    ----------
    random_state : int, default=0
        Seed of the row and column subsampling.
    n_estimators, max_depth, learning_rate, subsample, colsample_bytree, max_bin
        Passed to :class:`xgboost.XGBClassifier` (``tree_method='hist'``).
    pool : int, default=4
        Side of the square of pixels averaged into one feature.
    n_jobs : int or None, default=None
        Threads of xgboost (None: as many as OpenMP allows).

    Returns
    -------
    ChipClassifier
    """
    from xgboost import XGBClassifier

    model = XGBClassifier(
        n_estimators=n_estimators, max_depth=max_depth, learning_rate=learning_rate, subsample=subsample,
        colsample_bytree=colsample_bytree, max_bin=max_bin, tree_method="hist", n_jobs=n_jobs,
        random_state=0 if random_state is None else random_state, eval_metric="logloss",
    )
    pipeline = Pipeline([("pixels", ChipPixels(pool=pool, standardize=True)), ("model", model)])
    return ChipClassifier(pipeline, random_state=random_state)
