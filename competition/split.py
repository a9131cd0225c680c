"""The locked test set and the official grouped folds: a fair, balanced draw of whole groups.

Pure functions of arrays: no file is read here.  Groups (acquisition day by
default) are never split across train/test nor across folds, because the same
ship appears in neighbouring chips and in consecutive scenes of one pass.

Why this draw.  scikit-learn's ``StratifiedGroupKFold`` (the split before
``ships-split-2``) orders the groups by their class mix and lets the seed only
break ties: over 300 seeds two days of the real chips were in the test set every
time and 14 never, and the split could move with the library's version.  Here the
test groups are a balanced random draw (:func:`competition.sampling.draw_balanced`,
the cube method): every group has the chance ``test_size`` exactly, whatever its
size and class mix, and the draw keeps the number of chips and of ship chips of the
target up to one or two small groups.  The alternatives are worse: independent coin
flips conditioned on the size and class ratio reject most draws and favour groups of
average size and mix; a greedy fill in random order skips large groups late in the
order.  A draw outside ``SIZE_TOLERANCE`` or ``CLASS_RATIO_TOLERANCE`` (about 1% of
draws on the real chips) is redrawn from the same stream; measured over 3000 seeds,
this moves no day's chance beyond binomial noise.  The official folds are drawn the
same way (successive balanced draws), not by scikit-learn.

``SPLIT_ALGORITHM`` names this algorithm: the workspace hashes it with the split,
so a change of algorithm changes the hash.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from competition.errors import ParameterError
from competition.sampling import draw_balanced, random_keys

__all__ = ["CLASS_RATIO_TOLERANCE", "SIZE_TOLERANCE", "SPLIT_ALGORITHM", "Split", "check_fraction",
           "check_test_size", "make_folds", "make_ids", "make_split"]

SPLIT_ALGORITHM = "ships-split-2"  # balanced cube draw of whole groups, PCG64 raw stream
SIZE_TOLERANCE = 0.01  # |chips drawn / chips in the pool - target fraction| at most this
CLASS_RATIO_TOLERANCE = 0.01  # |ship fraction of the draw - ship fraction of the pool| at most this
_MAX_DRAWS = 100  # draws tried before keeping the closest (data with few or very uneven groups)


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

    One random stream, ``Generator(PCG64(random_state))``, draws in turn: the test
    groups (a balanced draw in which every group has the chance ``test_size``; the
    chip fraction within ``SIZE_TOLERANCE`` of ``test_size`` and the ship fraction
    within ``CLASS_RATIO_TOLERANCE`` of the whole set's), the Public chips (a share
    ``public_fraction`` of the test chips of each class, so Public and Private are
    stratified by label), and the official folds of the train groups (as
    :func:`make_folds`).  The tolerances hold on the real chips for every seed; on
    data with few or very uneven groups the closest of ``_MAX_DRAWS`` draws is kept.

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
        Seed (>= 0); the same seed and data give the same split on every platform.

    Returns
    -------
    Split

    Raises
    ------
    ParameterError
        If an argument is out of range or there are too few groups.
    """
    y, codes = _check_arrays(y, groups)
    check_test_size(test_size)
    check_fraction("public_fraction", public_fraction)
    _check_n_splits(n_splits)
    rng = _make_rng(random_state)
    n_groups = int(codes.max()) + 1
    need = max(2, int(round(1.0 / test_size)), n_splits + 1)
    if n_groups < need:
        raise ParameterError(
            f"only {n_groups} groups; need at least {need} for test_size={test_size} "
            f"and n_splits={n_splits}; group by 'scene' or use fewer folds"
        )
    table = _group_table(y, codes, n_groups)
    is_test = _draw(table, np.ones(n_groups, dtype=bool), test_size, test_size, rng, keep=n_splits)[codes]
    is_public = np.zeros(len(y), dtype=bool)
    test_idx = np.flatnonzero(is_test)
    is_public[test_idx[_draw_public(y[test_idx], public_fraction, rng)]] = True
    fold = np.full(len(y), -1, dtype=np.int64)
    train = ~is_test
    fold[train] = _draw_folds(table, ~_group_any(is_test, codes, n_groups), n_splits, rng)[codes[train]]
    return Split(is_test=is_test, is_public=is_public, fold=fold)


def make_folds(y: np.ndarray, groups: np.ndarray, *, n_splits: int = 5, random_state: int = 0) -> np.ndarray:
    """Fold number (0 .. n_splits - 1) of each chip: grouped, stratified, every group equally likely in each fold.

    Fold 0 is a balanced draw (see the module) with chance ``1 / n_splits`` from all
    groups, fold 1 one with chance ``1 / (n_splits - 1)`` from the rest, and so on; the
    last fold takes what is left, so every group has the chance ``1 / n_splits`` of
    each fold.  Each fold holds ``1 / n_splits`` of the chips within ``SIZE_TOLERANCE``
    and the pool's ship fraction within ``CLASS_RATIO_TOLERANCE`` where the groups allow.

    Raises
    ------
    ParameterError
        If ``n_splits`` is not an int >= 2, exceeds the number of groups, or no draw
        gives every fold a group.
    """
    y, codes = _check_arrays(y, groups)
    _check_n_splits(n_splits)
    n_groups = int(codes.max()) + 1
    if n_splits > n_groups:
        raise ParameterError(f"n_splits={n_splits} is more than the {n_groups} groups; expected n_splits <= {n_groups}")
    table = _group_table(y, codes, n_groups)
    rng = _make_rng(random_state)
    return _draw_folds(table, np.ones(n_groups, dtype=bool), n_splits, rng)[codes]


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


def _check_arrays(y, groups) -> tuple[np.ndarray, np.ndarray]:
    """(y as int64 0/1, group codes 0..G-1 in sorted group order), or ParameterError."""
    y, groups = np.asarray(y).ravel(), np.asarray(groups).ravel()
    if len(y) == 0 or len(y) != len(groups):
        raise ParameterError(f"y has {len(y)} values and groups {len(groups)}; expected the same length >= 1")
    if not np.all((y == 0) | (y == 1)):
        raise ParameterError("y holds values other than 0 and 1; expected labels 1 (ship) and 0 (no ship)")
    return y.astype(np.int64), np.unique(groups, return_inverse=True)[1].ravel()


def _check_n_splits(n_splits) -> None:
    """ParameterError unless ``n_splits`` is an int >= 2."""
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ParameterError(f"n_splits={n_splits!r} is invalid; expected an int >= 2")


def _make_rng(random_state) -> np.random.Generator:
    """``Generator(PCG64(random_state))``, or ParameterError unless the seed is an int >= 0."""
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ParameterError(f"random_state={random_state!r} is invalid; expected an int >= 0, e.g. 0")
    return np.random.Generator(np.random.PCG64(int(random_state)))


def _group_table(y: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Chips and ship chips of each group, (G, 2) int64."""
    return np.stack([np.bincount(codes, minlength=n_groups), np.bincount(codes, y, minlength=n_groups)],
                    axis=1).astype(np.int64)


def _group_any(mask: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """True for each group holding a chip in ``mask``, (G,)."""
    return np.bincount(codes[mask], minlength=n_groups) > 0


def _draw_public(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Public mask over test chips: ``fraction`` of each class, at random (chip ids are stratified by label)."""
    keys = random_keys(rng, len(y))
    public = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        idx = idx[np.argsort(keys[idx], kind="stable")]
        public[idx[: int(math.floor(fraction * len(idx) + 0.5))]] = True
    return public


def _draw_folds(table: np.ndarray, pool: np.ndarray, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """Fold of each group in ``pool`` (G,), -1 elsewhere: successive balanced draws with chance 1 / (folds left)."""
    fold = np.full(len(table), -1, dtype=np.int64)
    left, target = pool.copy(), 1.0 / n_splits
    total = table[pool].sum(axis=0)
    for k in range(n_splits - 1):
        chosen = _draw(table, left, 1.0 / (n_splits - k), target, rng, reference=total, keep=n_splits - k - 1,
                       check_rest=k == n_splits - 2)
        fold[chosen] = k
        left &= ~chosen
    fold[left] = n_splits - 1
    return fold


def _draw(table: np.ndarray, pool: np.ndarray, chance: float, target: float, rng: np.random.Generator,
          reference: np.ndarray | None = None, keep: int = 0, check_rest: bool = False) -> np.ndarray:
    """Groups drawn from ``pool`` (G,) bool, each with probability ``chance``, redrawn until within tolerance.

    A draw is within tolerance when its chips are ``target`` times the ``reference``
    chips (default: the pool's) within ``SIZE_TOLERANCE`` and its ship fraction is
    the reference's within ``CLASS_RATIO_TOLERANCE``; it must hold a group and leave
    ``keep`` groups in the pool; with ``check_rest``, what it leaves (the last fold) must be
    within tolerance too.  After ``_MAX_DRAWS`` draws the closest is kept.
    """
    reference = table[pool].sum(axis=0) if reference is None else reference
    members = np.flatnonzero(pool)
    best, best_miss = None, math.inf
    for _ in range(_MAX_DRAWS):
        chosen = np.zeros(len(table), dtype=bool)
        chosen[members[draw_balanced(table[members].tolist(), chance, rng)]] = True
        miss = _miss(table[chosen].sum(axis=0), reference, target, int(chosen.sum()), len(members) - keep)
        if check_rest:
            rest = pool & ~chosen
            miss = max(miss, _miss(table[rest].sum(axis=0), reference, target, int(rest.sum()), len(members)))
        if miss <= 1.0:
            return chosen
        if miss < best_miss:
            best, best_miss = chosen, miss
    if best is None:
        raise ParameterError(f"no draw from {len(members)} groups held a group and left {keep} groups for the folds; "
                             "expected more groups: use fewer folds or group by 'scene'")
    return best


def _miss(drawn: np.ndarray, reference: np.ndarray, target: float, n_drawn: int, most: int) -> float:
    """How far a draw is from the target, in tolerances (<= 1 is within); inf if it holds no group or too many."""
    if n_drawn == 0 or n_drawn > most:
        return math.inf
    size = abs(drawn[0] / reference[0] - target) / SIZE_TOLERANCE
    ratio = abs(drawn[1] / drawn[0] - reference[1] / reference[0]) / CLASS_RATIO_TOLERANCE
    return max(size, ratio)
