"""The locked test set and the official grouped folds.

Pure functions of arrays: no file is read here.  Groups (acquisition day by
default) are never split across train/test nor across folds, because the same
ship appears in neighbouring chips and in consecutive scenes of one pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

from competition.errors import ParameterError

__all__ = ["Split", "make_split", "make_folds", "make_ids", "check_test_size", "check_fraction"]


@dataclass(frozen=True)
class Split:
    """Assignment of every chip.

    Attributes
    ----------
    is_test : ndarray of bool, shape (n,)
    is_public : ndarray of bool, shape (n,); True only for Public test chips
    fold : ndarray of int, shape (n,); official CV fold of train chips, -1 for test
    """

    is_test: np.ndarray
    is_public: np.ndarray
    fold: np.ndarray


def check_test_size(test_size: float) -> float:
    """Validate ``test_size`` (a fraction strictly between 0 and 0.5)."""
    if not 0.0 < float(test_size) <= 0.5:
        raise ParameterError(f"test_size={test_size} is invalid; expected a fraction in (0, 0.5], e.g. 0.2")
    return float(test_size)


def check_fraction(name: str, value: float) -> float:
    """Validate a fraction strictly between 0 and 1."""
    if not 0.0 < float(value) < 1.0:
        raise ParameterError(f"{name}={value} is invalid; expected a fraction in (0, 1), e.g. 0.3")
    return float(value)


def make_split(
    y: np.ndarray,
    groups: np.ndarray,
    *,
    test_size: float = 0.2,
    public_fraction: float = 0.3,
    n_splits: int = 5,
    random_state: int = 0,
) -> Split:
    """Choose the locked test set, its Public/Private parts, and the train folds.

    The test set is one fold of a ``StratifiedGroupKFold`` with
    ``round(1 / test_size)`` folds: whole groups only, with the class ratio kept.
    Public/Private is a stratified split of the test chips.

    Parameters
    ----------
    y : array of shape (n,)
        Labels (1 ship, 0 no ship).
    groups : array of shape (n,)
        Group of each chip; no group is ever on both sides.
    test_size, public_fraction : float
    n_splits : int
        Number of official CV folds over train.
    random_state : int

    Returns
    -------
    Split
    """
    y = np.asarray(y)
    groups = np.asarray(groups)
    check_test_size(test_size)
    check_fraction("public_fraction", public_fraction)
    n_test_folds = max(2, int(round(1.0 / test_size)))
    n_groups = len(np.unique(groups))
    if n_groups < n_test_folds or n_groups < n_splits + 1:
        raise ParameterError(
            f"only {n_groups} groups; need at least {max(n_test_folds, n_splits + 1)} for test_size={test_size} "
            f"and n_splits={n_splits}; group by 'scene' or use fewer folds"
        )
    outer = StratifiedGroupKFold(n_splits=n_test_folds, shuffle=True, random_state=random_state)
    _, test_idx = next(outer.split(np.zeros(len(y)), y, groups))
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_idx] = True

    pub = StratifiedShuffleSplit(n_splits=1, train_size=public_fraction, random_state=random_state)
    public_rel, _ = next(pub.split(np.zeros(len(test_idx)), y[test_idx]))
    is_public = np.zeros(len(y), dtype=bool)
    is_public[test_idx[public_rel]] = True

    fold = np.full(len(y), -1, dtype=np.int64)
    train_idx = np.flatnonzero(~is_test)
    fold[train_idx] = make_folds(y[train_idx], groups[train_idx], n_splits=n_splits, random_state=random_state)
    return Split(is_test=is_test, is_public=is_public, fold=fold)


def make_folds(y: np.ndarray, groups: np.ndarray, *, n_splits: int = 5, random_state: int = 0) -> np.ndarray:
    """Fold number of each chip under ``StratifiedGroupKFold`` (groups never cross folds)."""
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ParameterError(f"n_splits={n_splits!r} is invalid; expected an int >= 2")
    n_groups = len(np.unique(groups))
    if n_splits > n_groups:
        raise ParameterError(f"n_splits={n_splits} is more than the {n_groups} groups; expected n_splits <= {n_groups}")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    fold = np.full(len(y), -1, dtype=np.int64)
    for k, (_, idx) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
        fold[idx] = k
    return fold


def make_ids(X: np.ndarray, *, salt: str) -> np.ndarray:
    """Opaque chip ids: the first 12 hex digits of SHA-256(salt, pixels).

    The id depends on the pixels and on the salt (data hash and seed), never
    on the file name, the label or the order, so it reveals none of them.
    """
    ids = np.array(
        [hashlib.sha256(salt.encode() + X[i].tobytes()).hexdigest()[:12] for i in range(len(X))], dtype=object
    )
    if len(set(ids)) != len(ids):
        raise ParameterError("two chips have the same pixels; the data set must hold distinct chips")
    return ids
