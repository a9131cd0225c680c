"""The locked split and the official folds, on the real chips; the balanced draw behind them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import stats

from competition.data import make_groups
from competition.errors import ParameterError
from competition.sampling import _null_vector, draw_balanced
from competition.split import (
    CLASS_RATIO_TOLERANCE,
    SIZE_TOLERANCE,
    SPLIT_ALGORITHM,
    make_folds,
    make_ids,
    make_split,
)

N_SEEDS = 300
# sha256 of (is_test, is_public, fold) as int64 bytes for the real chips, date groups, seed 0.
# It changes only with the algorithm: change SPLIT_ALGORITHM with it.
PINNED = ("ships-split-2", "ae29ed6c53533ca48497ee53d98fb44bd5822480537adf9ee76bf94d02f5aea6")


@pytest.fixture(scope="module")
def codes(chips):
    """Day code (0..156) of each real chip."""
    return np.unique(make_groups(chips.scene_id, "date"), return_inverse=True)[1]


@pytest.fixture(scope="module")
def many(chips):
    """The default split of the real chips for seeds 0..N_SEEDS-1, stacked: (is_test, is_public, fold), (S, n)."""
    groups = make_groups(chips.scene_id, "date")
    splits = [make_split(chips.y, groups, random_state=seed) for seed in range(N_SEEDS)]
    return tuple(np.array([getattr(s, f) for s in splits]) for f in ("is_test", "is_public", "fold"))


def _per_group(masks: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Chips of each group inside each mask: (S, n) bool -> (S, G) counts."""
    n_groups = int(codes.max()) + 1
    onehot = np.zeros((len(codes), n_groups))
    onehot[np.arange(len(codes)), codes] = 1.0
    return masks.astype(np.float64) @ onehot


def test_every_day_has_the_same_chance(many, codes):
    # Each day is in the test set with probability 0.2, whatever its size and class mix, so over
    # 300 seeds its count is Binomial(300, 0.2): sd 0.023 in frequency.  Bonferroni over the 157
    # days at a family-wise 0.001 gives z = 4.51, a bound of +-0.104 around 0.2; and the sum of
    # squared z-scores is at most chi2(157).isf(0.001) = 217.5 (the counts are slightly negatively
    # correlated, which only makes the sum smaller).  The seed-driven StratifiedGroupKFold put two
    # days in every time and 14 never: frequencies 1 and 0, z = 34 and -8.7.
    in_test = _per_group(many[0], codes) > 0
    freq = in_test.mean(axis=0)
    sd = np.sqrt(0.2 * 0.8 / N_SEEDS)
    z = (freq - 0.2) / sd
    assert in_test.any(axis=0).all() and (~in_test).any(axis=0).all()  # no day always in, none never
    assert np.abs(z).max() <= stats.norm.isf(0.001 / (2 * len(freq))), (freq.min(), freq.max())
    assert (z**2).sum() <= stats.chi2.isf(0.001, len(freq))


def test_every_seed_keeps_size_and_class_ratio(chips, many):
    is_test, is_public, fold = many
    y = chips.y.astype(np.float64)
    n_test = is_test.sum(axis=1)
    assert np.abs(n_test / len(y) - 0.2).max() <= SIZE_TOLERANCE
    assert np.abs(is_test @ y / n_test - y.mean()).max() <= CLASS_RATIO_TOLERANCE
    train = ~is_test
    train_ratio = train @ y / train.sum(axis=1)
    for k in range(5):
        in_fold = fold == k
        n_fold = in_fold.sum(axis=1)
        assert np.abs(n_fold / train.sum(axis=1) - 0.2).max() <= SIZE_TOLERANCE, k
        assert np.abs(in_fold @ y / n_fold - train_ratio).max() <= CLASS_RATIO_TOLERANCE, k
    assert ((fold == -1) == is_test).all()


def test_public_private_is_stratified_by_label(chips, many):
    is_test, is_public, _ = many
    assert not (is_public & ~is_test).any()
    for label in (0, 1):
        of_label = chips.y == label
        n_public = (is_public & of_label).sum(axis=1)
        n_test = (is_test & of_label).sum(axis=1)
        assert np.abs(n_public - 0.3 * n_test).max() <= 0.5  # the nearest whole number, every seed


def test_no_group_on_both_sides(many, codes):
    is_test, _, fold = many
    for part in [is_test] + [fold == k for k in range(5)]:
        inside, outside = _per_group(part, codes) > 0, _per_group(~part, codes) > 0
        assert not (inside & outside).any()


def test_same_seed_same_split_other_seed_other_split(chips, many):
    groups = make_groups(chips.scene_id, "date")
    again = make_split(chips.y, groups, random_state=7)
    for got, want in zip((again.is_test, again.is_public, again.fold), many):
        np.testing.assert_array_equal(got, want[7])
    assert (many[0][0] != many[0][1]).any()


def test_split_is_pinned_for_this_algorithm(chips):
    # A numpy, scikit-learn or Python upgrade must not move the locked test set.
    split = make_split(chips.y, make_groups(chips.scene_id, "date"), random_state=0)
    digest = hashlib.sha256()
    for array in (split.is_test, split.is_public, split.fold):
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    assert (SPLIT_ALGORITHM, digest.hexdigest()) == PINNED


def test_scene_grouping_is_respected(chips):
    groups = make_groups(chips.scene_id, "scene")
    split = make_split(chips.y, groups, random_state=3)
    assert not set(groups[split.is_test]) & set(groups[~split.is_test])
    assert abs(split.is_test.mean() - 0.2) <= SIZE_TOLERANCE


def test_balanced_draw_gives_each_unit_its_chance():
    # Uneven units (1 to 100 chips, some all ships, some none): each is drawn with chance 0.3.
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 101, 40)
    ships = np.where(np.arange(40) % 4 == 0, sizes, rng.integers(0, sizes + 1) // 3)
    ships[1::4] = 0
    totals = np.stack([sizes, ships], axis=1).tolist()
    n_draws = 4000
    hits = np.zeros(40)
    chips_drawn = []
    for seed in range(n_draws):
        drawn = draw_balanced(totals, 0.3, np.random.Generator(np.random.PCG64(seed)))
        hits[drawn] += 1
        chips_drawn.append(sizes[drawn].sum())
    z = (hits / n_draws - 0.3) / np.sqrt(0.3 * 0.7 / n_draws)
    assert np.abs(z).max() <= stats.norm.isf(0.001 / 80)
    # Balanced: the chips drawn are 30% of all within the size of the largest unit (binomial sd: 10x more).
    assert np.abs(np.array(chips_drawn) - 0.3 * sizes.sum()).max() <= sizes.max()


@pytest.mark.parametrize("rows", [[[3, 5, 7], [1, 0, 2]], [[2, 4, 6], [0, 0, 0]], [[1, 2, 3], [2, 4, 6]], [[4, 9]], []])
def test_null_vector_is_exact_even_when_columns_are_dependent(rows):
    m = len(rows[0]) if rows else 1
    u = np.array(_null_vector(rows, m))
    assert np.abs(u).max() > 0
    assert np.allclose(np.array(rows, dtype=np.float64).reshape(len(rows), m) @ u, 0.0)
    assert _null_vector([[1, 0], [0, 1]], 2) is None  # independent columns: no direction


def test_small_data_keeps_the_closest_draw():
    # 8 groups of very uneven size: 20% within 1% is out of reach; the closest draw is kept.
    sizes = [1, 2, 3, 5, 8, 13, 21, 34]
    groups = np.repeat(np.arange(8), sizes)
    y = (np.arange(len(groups)) % 4 == 0).astype(int)
    split = make_split(y, groups, n_splits=2, random_state=0)
    assert 0 < split.is_test.sum() < len(y)
    assert not set(groups[split.is_test]) & set(groups[~split.is_test])
    assert set(split.fold[~split.is_test]) == {0, 1}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"test_size": 0.0}, "test_size=0.0 is invalid"),
        ({"test_size": 0.7}, "test_size=0.7 is invalid"),
        ({"public_fraction": 1.0}, "public_fraction=1.0 is invalid"),
        ({"n_splits": 1}, "n_splits=1 is invalid; expected an int >= 2"),
        ({"random_state": None}, "random_state=None is invalid; expected an int >= 0"),
        ({"random_state": -1}, "random_state=-1 is invalid; expected an int >= 0"),
    ],
)
def test_bad_parameters(chips, kwargs, message):
    groups = make_groups(chips.scene_id, "date")
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        make_split(chips.y, groups, **kwargs)


def test_too_few_groups():
    y = np.array([0, 1] * 6)
    with pytest.raises(ParameterError, match="only 4 groups; need at least 6 for test_size=0.2 and n_splits=5"):
        make_split(y, np.repeat(np.arange(4), 3))
    with pytest.raises(ParameterError, match="n_splits=5 is more than the 4 groups"):
        make_folds(y, np.repeat(np.arange(4), 3), n_splits=5)


def test_make_folds_is_grouped_and_balanced(chips, codes):
    fold = make_folds(chips.y, codes, n_splits=4, random_state=1)
    assert set(fold) == {0, 1, 2, 3}
    assert (_per_group(np.array([fold == k for k in range(4)]), codes) > 0).sum(axis=0).max() == 1
    for k in range(4):
        assert abs((fold == k).mean() - 0.25) <= SIZE_TOLERANCE
        assert abs(chips.y[fold == k].mean() - chips.y.mean()) <= CLASS_RATIO_TOLERANCE


def test_ids_depend_on_pixels_and_salt_only(chips):
    X = chips.X[:50]
    a = make_ids(X, salt="s1")
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in a)
    np.testing.assert_array_equal(a, make_ids(X, salt="s1"))
    assert not set(a) & set(make_ids(X, salt="s2"))
    np.testing.assert_array_equal(make_ids(X[::-1], salt="s1"), a[::-1])  # not the order
