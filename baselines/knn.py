"""k nearest neighbours on a PCA of the standardised pixels (whitened, 50 components).

Pixels at half resolution, each chip standardised; PCA keeps 50 whitened components and
the 25 nearest training chips vote, weighted by inverse distance.
"""

from __future__ import annotations

from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline

from baselines._features import ChipClassifier, ChipPixels

__all__ = ["make_estimator"]


def make_estimator(random_state=0, n_components=50, n_neighbors=25, weights="distance", pool=2,
                   n_jobs=None) -> ChipClassifier:
    """PCA + k nearest neighbours on raw chips.

    Parameters
    ----------
    random_state : int or None, default=0
        Seed of the randomised PCA solver.
    n_components : int, default=50
        Principal components kept (whitened).
    n_neighbors : int, default=25
    weights : {'distance', 'uniform'}, default='distance'
    pool : int, default=2
        Side of the square of pixels averaged into one.
    n_jobs : int or None, default=None
        Parallel jobs of the neighbour search.

    Returns
    -------
    ChipClassifier
    """
    pipeline = Pipeline([
        ("pixels", ChipPixels(pool=pool, standardize=True)),
        ("pca", PCA(n_components=n_components, whiten=True, random_state=random_state)),
        ("model", KNeighborsClassifier(n_neighbors=n_neighbors, weights=weights, n_jobs=n_jobs)),
    ])
    return ChipClassifier(pipeline, random_state=random_state)
