"""Baselines: one contract over every baseline, grouped inner tuning, the registry, model files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone

from baselines.persist import load_model, save_model
from baselines.registry import BASELINES, make_baseline
from competition.errors import ModelError, ParameterError

CLASSIC = ["dummy", "logreg", "knn", "xgboost"]
# Tiny settings for the Keras baselines: the contract, not the quality (their own tests train more).
TINY = {"cnn": {"epochs": 1, "batch_size": 32}, "vgg16": {"weights": "none", "epochs": 1, "fine_tune_epochs": 1,
                                                          "batch_size": 32}}
CONTRACT = CLASSIC + ["cnn", pytest.param("vgg16", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def train(real_workspace_path):
    from competition.workspace import Workspace

    return Workspace.open(real_workspace_path).load_train()


@pytest.fixture(scope="module")
def subset(train):
    """300 real train chips to fit on and 120 others to predict (ships and no-ships)."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(train.y))
    fit_idx, pred_idx = np.sort(order[:300]), np.sort(order[300:420])
    return (train.X[fit_idx], train.y[fit_idx], train.groups[fit_idx]), train.X[pred_idx]


def _fit_predict(name, subset, random_state=0, **params):
    (X, y, groups), X_new = subset
    est = make_baseline(name, random_state=random_state, **{**TINY.get(name, {}), **params})
    est.fit(X, y, groups=groups)
    return est, est.predict_proba(X_new)


@pytest.mark.parametrize("name", CONTRACT)
def test_contract_shape_range_and_same_seed_same_output(name, subset):
    est, proba = _fit_predict(name, subset)
    n = len(subset[1])
    assert proba.shape == (n, 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert list(est.classes_) == [0, 1]
    assert est.predict(subset[1]).shape == (n,)
    clone(est)  # scikit-learn compatible: parameters round-trip through get_params
    if name in TINY:
        return  # repeatability of the Keras baselines is tested with them (it costs a second fit)
    _, again = _fit_predict(name, subset)
    np.testing.assert_array_equal(proba, again)


@pytest.mark.parametrize("name", ["logreg", "knn", "xgboost"])
def test_real_models_learn_something(name, subset, train):
    from sklearn.metrics import roc_auc_score

    est, _ = _fit_predict(name, subset, **({"C": 1e-3} if name == "logreg" else {}))
    fit_groups = set(subset[0][2])
    unseen = np.flatnonzero(~np.isin(train.groups, list(fit_groups)))  # days none of the 300 chips came from
    assert len(unseen) > 50 and train.y[unseen].min() == 0 and train.y[unseen].max() == 1
    assert roc_auc_score(train.y[unseen], est.predict_proba(train.X[unseen])[:, 1]) > 0.85


def test_dummy_predicts_the_prior(subset):
    (X, y, _), X_new = subset
    proba = make_baseline("dummy").fit(X, y).predict_proba(X_new)
    np.testing.assert_allclose(proba[:, 1], y.mean())


def test_logreg_tunes_C_by_grouped_inner_cv(subset):
    (X, y, groups), _ = subset
    est = make_baseline("logreg", Cs=(1e-4, 1e-2)).fit(X, y, groups=groups)
    assert est.best_params_["model__C"] in (1e-4, 1e-2)
    assert set(est.inner_scores_) == {"model__C=0.0001", "model__C=0.01"}
    inner = est._inner_cv(y, groups)
    for train_idx, test_idx in inner.split(X, y, groups):
        assert not set(groups[train_idx]) & set(groups[test_idx]), "an inner fold shares a group"


def test_logreg_with_fixed_C_skips_the_search(subset):
    (X, y, groups), _ = subset
    est = make_baseline("logreg", C=1e-3).fit(X, y, groups=groups)
    assert est.best_params_ == {} and est.estimator_[-1].C == 1e-3


def test_inner_search_needs_enough_groups(subset):
    (X, y, _), _ = subset
    groups = np.where(np.arange(len(y)) % 2, "a", "b")
    with pytest.raises(ParameterError, match="inner_splits=3 is more than the 2 groups"):
        make_baseline("logreg").fit(X, y, groups=groups)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((4, 80, 80), np.uint8), r"X has shape \(4, 80, 80\) and dtype uint8; expected \(n, 80, 80, 3\) uint8"),
    (np.zeros((4, 80, 80, 3), np.float32), "dtype float32; expected"),
    (np.zeros((0, 80, 80, 3), np.uint8), r"shape \(0, 80, 80, 3\)"),
])
def test_wrong_chip_arrays_are_refused(bad, message):
    with pytest.raises(ParameterError, match=message):
        make_baseline("dummy").fit(bad, np.arange(len(bad)) % 2)


def test_one_class_is_refused(subset):
    (X, y, _), _ = subset
    with pytest.raises(ParameterError, match=r"y holds the labels \[0\]; expected both 0 \(no ship\) and 1"):
        make_baseline("knn").fit(X[y == 0], y[y == 0])


def test_registry_lists_every_baseline_with_a_description():
    assert list(BASELINES) == ["dummy", "logreg", "knn", "xgboost", "cnn", "vgg16"]
    for b in BASELINES.values():
        assert b.module == f"baselines.{b.name}" and len(b.description) > 10


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ParameterError) as info:
        make_baseline("resnet")
    assert str(info.value) == "unknown model 'resnet'; expected one of: dummy, logreg, knn, xgboost, cnn, vgg16"


def test_unknown_parameter_is_named():
    with pytest.raises(ParameterError, match="baseline 'knn' takes no parameter C; expected some of: n_components"):
        make_baseline("knn", C=1.0)


def test_listing_and_making_classic_baselines_imports_no_heavy_library():
    code = ("import sys\nfrom baselines.registry import BASELINES, make_baseline\n"
            "make_baseline('logreg'); make_baseline('knn')\n"
            "print(sorted(m for m in ('xgboost', 'keras', 'tensorflow', 'mlflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_saved_model_predicts_the_same(subset, tmp_path):
    est, proba = _fit_predict("xgboost", subset)
    path = save_model(est, tmp_path / "deep" / "xgb.joblib")
    np.testing.assert_array_equal(load_model(path).predict_proba(subset[1]), proba)
    assert [p.name for p in path.parent.iterdir()] == ["xgb.joblib"]  # no temporary file left


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match=r"nope.joblib: no such model file; save one with `ships baseline run NAME"):
        load_model(tmp_path / "nope.joblib")


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"\x80\x04\x95truncated"])
def test_corrupt_model_file(tmp_path, content):
    path = tmp_path / "bad.joblib"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="bad.joblib: not a readable model file"):
        load_model(path)


def test_truncated_model_file(subset, tmp_path):
    est, _ = _fit_predict("dummy", subset)
    path = save_model(est, tmp_path / "m.joblib")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ModelError, match="not a readable model file"):
        load_model(path)
