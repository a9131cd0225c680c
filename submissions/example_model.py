"""An example of a team's own model for `ships cv`: logistic regression on 20x20 pixel means.

Evaluate it on the official folds, then write a submission for the test ids::

    ships cv submissions/example_model.py --data DIR                 # DIR: your downloaded folder
    ships cv submissions/example_model.py --data DIR --predict-test my_submission.csv

The contract: ``make_estimator(random_state)`` returns an unfitted estimator with
``fit(X, y)`` and ``predict_proba(X)``, where ``X`` is uint8 chips of shape (n, 80, 80, 3)
and ``predict_proba`` returns shape (n, 2): the probability of no ship, then of ship.
Anything the harness should not see (data, files) stays out of it: it is given the chips.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler


def pixel_means(X):
    """Chips (n, 80, 80, 3) to the means of their 4x4 blocks, 20x20x3 values in [0, 1] per chip."""
    X = np.asarray(X)
    blocks = X.reshape(len(X), 20, 4, 20, 4, 3).mean(axis=(2, 4), dtype=np.float32)
    return blocks.reshape(len(X), -1) / 255.0


def make_estimator(random_state=0):
    """Block means, standardised, then an L2-regularised logistic regression."""
    return make_pipeline(
        FunctionTransformer(pixel_means),
        StandardScaler(),
        LogisticRegression(C=0.01, max_iter=2000, random_state=random_state),
    )
