"""Dummy: predicts the class prior of the training chips for every chip (ROC AUC 0.5).

The floor every other baseline must clear: it ignores the pixels.
"""

from __future__ import annotations

from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from baselines._features import ChipClassifier, ChipPixels

__all__ = ["make_estimator"]


def make_estimator(random_state=0, strategy="prior") -> ChipClassifier:
    """A ``DummyClassifier`` on raw chips.

    Parameters
    ----------
    random_state : int or None, default=0
        Seed (used by the ``stratified`` and ``uniform`` strategies only).
    strategy : str, default="prior"
        Any strategy of :class:`~sklearn.dummy.DummyClassifier`.

    Returns
    -------
    ChipClassifier
        ``fit(X, y, groups=None)`` and ``predict_proba(X) -> (n, 2)`` on uint8 chips ``(n, 80, 80, 3)``.
    """
    pipeline = Pipeline([
        ("pixels", ChipPixels(pool=16)),  # the pixels are ignored; pooled to keep this cheap
        ("model", DummyClassifier(strategy=strategy, random_state=random_state)),
    ])
    return ChipClassifier(pipeline, random_state=random_state)
