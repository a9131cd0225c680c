"""The locked split and the official folds, on the real chips."""

from __future__ import annotations

import numpy as np
import pytest

from competition.data import make_groups
from competition.errors import ParameterError
from competition.split import make_folds, make_ids, make_split


@pytest.fixture(scope="module")
def real_split(chips):
    groups = make_groups(chips.scene_id, "date")
    return groups, make_split(chips.y, groups, random_state=0)


def test_no_group_on_both_sides(chips, real_split):
    groups, split = real_split
    assert not set(groups[split.is_test]) & set(groups[~split.is_test])
    train = ~split.is_test
    for k in range(5):
        inside = set(groups[train & (split.fold == k)])
        outside = set(groups[train & (split.fold != k)])
        assert inside and not inside & outside


def test_class_ratio_is_kept(chips, real_split):
    _, split = real_split
    assert abs(chips.y[split.is_test].mean() - chips.y.mean()) <= 0.02
    assert 0.17 <= split.is_test.mean() <= 0.23
    test_y = chips.y[split.is_test]
    pub_y = chips.y[split.is_public]
    assert abs(split.is_public.sum() / split.is_test.sum() - 0.3) < 0.01
    assert abs(pub_y.mean() - test_y.mean()) <= 0.01  # stratified Public/Private
    assert not (split.is_public & ~split.is_test).any()
    assert (split.fold[split.is_test] == -1).all() and (split.fold[~split.is_test] >= 0).all()


def test_scene_grouping_is_respected(chips):
    groups = make_groups(chips.scene_id, "scene")
    split = make_split(chips.y, groups, random_state=3)
    assert not set(groups[split.is_test]) & set(groups[~split.is_test])


def test_same_seed_same_split_other_seed_other_split(chips, real_split):
    groups, split = real_split
    again = make_split(chips.y, groups, random_state=0)
    np.testing.assert_array_equal(split.is_test, again.is_test)
    np.testing.assert_array_equal(split.fold, again.fold)
    other = make_split(chips.y, groups, random_state=1)
    assert (split.is_test != other.is_test).any()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"test_size": 0.0}, "test_size=0.0 is invalid"),
        ({"test_size": 0.7}, "test_size=0.7 is invalid"),
        ({"public_fraction": 1.0}, "public_fraction=1.0 is invalid"),
        ({"n_splits": 1}, "n_splits=1 is invalid; expected an int >= 2"),
    ],
)
def test_bad_parameters(chips, kwargs, message):
    groups = make_groups(chips.scene_id, "date")
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        make_split(chips.y, groups, **kwargs)


def test_more_folds_than_groups():
    y = np.array([0, 1] * 6)
    groups = np.repeat(np.arange(4), 3)
    with pytest.raises(ParameterError, match="n_splits=5 is more than the 4 groups"):
        make_folds(y, groups, n_splits=5)


def test_ids_depend_on_pixels_and_salt_only(chips):
    X = chips.X[:50]
    a = make_ids(X, salt="s1")
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in a)
    np.testing.assert_array_equal(a, make_ids(X, salt="s1"))
    assert not set(a) & set(make_ids(X, salt="s2"))
    np.testing.assert_array_equal(make_ids(X[::-1], salt="s1"), a[::-1])  # not the order
