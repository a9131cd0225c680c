"""Tests of competition.scoring: metrics, the group bootstrap and validation against test ids."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from competition.bootstrap import group_tables, resample_metrics
from competition.errors import ParameterError, SubmissionError
from competition.scoring import (
    CLIP,
    INTERVALS,
    METRICS,
    THRESHOLD,
    score_predictions,
    validate_submission,
)
from competition.submission import ParsedSubmission

NAMES = ["roc_auc", "log_loss", "average_precision", "brier_loss", "accuracy", "precision", "recall", "f1"]


def brute_auc(y_true, y_score, weight=None) -> float:
    """AUC by counting (weighted) positive-negative pairs; ties count one half."""
    weight = np.ones(len(y_true)) if weight is None else weight
    num = den = 0.0
    for i in np.flatnonzero(y_true == 1):
        for j in np.flatnonzero(y_true == 0):
            w = weight[i] * weight[j]
            num += w * (1.0 if y_score[i] > y_score[j] else 0.5 if y_score[i] == y_score[j] else 0.0)
            den += w
    return num / den


def sklearn_reference(y, p, weight=None) -> dict[str, float]:
    """Every metric computed by scikit-learn directly."""
    pred = (p >= THRESHOLD).astype(int)
    kw = {"sample_weight": weight}
    return {
        "roc_auc": skm.roc_auc_score(y, p, **kw),
        "log_loss": skm.log_loss(y, np.clip(p, CLIP, 1 - CLIP), **kw),
        "average_precision": skm.average_precision_score(y, p, **kw),
        "brier_loss": skm.brier_score_loss(y, p, **kw),
        "accuracy": skm.accuracy_score(y, pred, **kw),
        "precision": skm.precision_score(y, pred, zero_division=0, **kw),
        "recall": skm.recall_score(y, pred, zero_division=0, **kw),
        "f1": skm.f1_score(y, pred, zero_division=0, **kw),
    }


def weighted(y, p, weights, ranks=None) -> dict[str, np.ndarray]:
    """The vectorised metrics with per-chip integer weights (m, n), each chip its own group."""
    sums, tables = group_tables(y, p, np.arange(len(y)), len(y), threshold=THRESHOLD, clip=CLIP, ranks=ranks)
    return resample_metrics(np.asarray(weights, dtype=np.float64), sums, tables)[0]


@pytest.fixture(params=["pairs", "blocks"])
def ranks(request):
    """Both ways of computing roc_auc and average_precision over resamples (they must agree)."""
    return request.param


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.35 * y + rng.random(200) * 0.7, 0, 1).round(2)  # rounded: many ties
    return y, p


# --- metric definitions -------------------------------------------------------------------------


def test_vocabulary():
    assert list(METRICS) == NAMES
    for name, metric in METRICS.items():
        assert metric.name == name
        assert metric.greater_is_better == (not name.endswith("_loss"))
        assert metric.minimum < metric.maximum
        assert metric.worst == (metric.minimum if metric.greater_is_better else metric.maximum)
    assert [m.name for m in METRICS.values() if not m.uses_proba] == ["accuracy", "precision", "recall", "f1"]
    assert METRICS["log_loss"].maximum == pytest.approx(-math.log(1e-15))


def test_metric_helpers():
    auc, loss = METRICS["roc_auc"], METRICS["log_loss"]
    assert auc.is_better(0.9, 0.8) and not auc.is_better(0.8, 0.8)
    assert loss.is_better(0.1, 0.2) and not loss.is_better(0.2, 0.1)
    assert auc.format(0.123456) == "0.1235"
    with pytest.raises(TypeError):
        METRICS["new"] = auc  # read-only mapping


def test_threshold_is_inclusive():
    report = score_predictions([1, 0, 1, 0], [0.5, 0.5, 0.2, 0.1], n_bootstrap=0)
    assert report.confusion.tolist() == [[1, 1], [1, 1]]


# --- AUC against counting pairs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "y, s, expected",
    [
        ([0, 1], [0.1, 0.9], 1.0),  # perfect
        ([0, 0, 1, 1], [0.8, 0.9, 0.1, 0.2], 0.0),  # inverted
        ([0, 1, 0, 1, 0], [0.5] * 5, 0.5),  # all equal
        ([0, 1, 0, 1], [0.3, 0.3, 0.1, 0.9], 0.875),  # one tie across classes
        ([1, 1, 0, 0, 1, 0], [0.2, 0.2, 0.2, 0.1, 0.7, 0.7], None),  # ties within and across classes
    ],
)
def test_auc_matches_pair_counting(y, s, expected, ranks):
    y, s = np.array(y), np.array(s)
    reference = brute_auc(y, s)
    if expected is not None:
        assert reference == expected
    assert score_predictions(y, s, n_bootstrap=0).metrics["roc_auc"] == pytest.approx(reference)
    assert weighted(y, s, np.ones((1, len(y))), ranks)["roc_auc"][0] == pytest.approx(reference)


def test_weighted_auc_matches_pair_counting(data, ranks):
    y, p = data
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 4, size=(3, len(y)))
    got = weighted(y, p, weights, ranks)["roc_auc"]
    for b in range(3):
        assert got[b] == pytest.approx(brute_auc(y, p, weights[b]), abs=1e-12)


# --- every metric against scikit-learn ----------------------------------------------------------


def test_point_values_match_sklearn(data):
    y, p = data
    report = score_predictions(y, p, n_bootstrap=0)
    reference = sklearn_reference(y, p)
    assert report.metrics == pytest.approx(reference, abs=1e-12)
    assert report.confusion.tolist() == skm.confusion_matrix(y, (p >= 0.5).astype(int)).tolist()
    assert (report.n, report.n_positive, report.n_groups) == (200, int(y.sum()), 200)


def test_log_loss_clips():
    report = score_predictions([1, 0, 1], [0.0, 1.0, 1.0], n_bootstrap=0)
    top = 1 - 1e-15  # what 1.0 is clipped to
    expected = -(math.log(1e-15) + math.log(1 - top) + math.log(top)) / 3
    assert report.metrics["log_loss"] == pytest.approx(expected, rel=1e-12)
    assert weighted(np.array([1, 0, 1]), np.array([0.0, 1.0, 1.0]), np.ones((1, 3)))["log_loss"][0] == pytest.approx(
        expected, rel=1e-12
    )


@pytest.mark.parametrize("name", NAMES)
def test_weighted_metric_matches_sklearn_sample_weight(data, name, ranks):
    y, p = data
    weights = np.random.default_rng(3).integers(0, 5, size=(6, len(y)))
    got = weighted(y, p, weights, ranks)[name]
    for b in range(len(weights)):
        assert got[b] == pytest.approx(sklearn_reference(y, p, weights[b])[name], abs=1e-12), b


def test_weighted_zero_division_gives_zero():
    y, p = np.array([1, 0, 1, 0]), np.array([0.1, 0.2, 0.3, 0.4])  # nothing predicted a ship
    got = weighted(y, p, np.ones((1, 4)))
    assert (got["precision"][0], got["recall"][0], got["f1"][0]) == (0.0, 0.0, 0.0)


# --- the group bootstrap ------------------------------------------------------------------------


def test_resamples_without_positives_are_dropped():
    # 10 groups of 30 chips; every ship is in group 0, so a resample that misses group 0 has no
    # positive.  Resampling chips instead of groups would almost never miss all 15 ships.
    groups = np.repeat(np.arange(10), 30)
    y = np.zeros(300, dtype=int)
    y[:15] = 1
    p = np.linspace(0, 1, 300)[::-1]
    report = score_predictions(y, p, groups=groups, n_bootstrap=1000)
    expected = 1000 * (1 - 0.9**10)  # P(group 0 drawn at least once in 10 draws)
    assert abs(report.n_bootstrap_used - expected) < 60
    assert report.n_groups == 10
    chips = score_predictions(y, p, n_bootstrap=1000)
    assert chips.n_bootstrap_used == 1000


def test_interval_width_depends_on_grouping():
    # 20 groups of 40 chips: the model is right on every chip of half the groups and wrong on the
    # other half, so chips of a group are not independent and the grouped interval is wider.
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 40)
    y = rng.integers(0, 2, 800)
    right = np.isin(groups, np.arange(10))
    p = np.where(right, 0.2 + 0.6 * y, 0.8 - 0.6 * y)
    grouped = score_predictions(y, p, groups=groups).intervals["accuracy"]
    chips = score_predictions(y, p).intervals["accuracy"]
    assert grouped[1] - grouped[0] > 3 * (chips[1] - chips[0])


def test_group_bootstrap_matches_a_naive_loop():
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(30), 10)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + 0.5 * rng.random(30)[groups] + 0.3 * rng.random(300), 0, 1)
    report = score_predictions(y, p, groups=groups, n_bootstrap=1000, random_state=1, interval="percentile")
    naive = []
    for _ in range(1000):
        idx = np.concatenate([np.flatnonzero(groups == g) for g in rng.integers(0, 30, 30)])
        naive.append(skm.roc_auc_score(y[idx], p[idx]))
    low, high = np.quantile(naive, [0.025, 0.975])
    assert report.intervals["roc_auc"] == pytest.approx((low, high), abs=0.005)
    chips = score_predictions(y, p, n_bootstrap=1000, random_state=1, interval="percentile")  # chips: not the same
    assert chips.intervals["roc_auc"] != pytest.approx((low, high), abs=0.005)


def test_same_random_state_same_intervals(data):
    y, p = data
    groups = np.arange(len(y)) // 10
    a = score_predictions(y, p, groups=groups, random_state=3)
    b = score_predictions(y, p, groups=groups, random_state=3)
    c = score_predictions(y, p, groups=groups, random_state=4)
    assert a.intervals == b.intervals
    assert a.intervals != c.intervals


def test_no_groups_is_one_group_per_chip(data):
    y, p = data
    a = score_predictions(y, p, random_state=2)
    b = score_predictions(y, p, groups=[f"chip{i:03d}" for i in range(len(y))], random_state=2)
    assert a.intervals == b.intervals


@pytest.mark.parametrize("interval", INTERVALS)
def test_intervals_hold_the_point_value(data, interval):
    y, p = data
    report = score_predictions(y, p, groups=np.arange(len(y)) // 5, confidence=0.9, interval=interval)
    assert report.interval == interval
    for name, metric in METRICS.items():
        low, high = report.intervals[name]
        assert metric.minimum <= low <= report.metrics[name] <= high <= metric.maximum, name
    narrow = score_predictions(y, p, groups=np.arange(len(y)) // 5, confidence=0.5, interval=interval)
    low, high = narrow.intervals["roc_auc"]
    assert high - low < report.intervals["roc_auc"][1] - report.intervals["roc_auc"][0]


def test_delta_method_errors_match_numerical_derivatives(ranks):
    # se = sqrt(sum_g c_g (d metric / d c_g)^2); the derivative by central differences of the weighted metric.
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 12, 150)
    y = rng.integers(0, 2, 150)
    p = np.clip(0.3 * y + 0.7 * rng.random(150), 0, 1).round(2)  # ties
    tables = group_tables(y, p, codes, 12, threshold=THRESHOLD, clip=CLIP, ranks=ranks)
    counts = rng.integers(0, 4, 12).astype(np.float64)
    counts[0] = 0.0  # a group not drawn
    _, errors = resample_metrics(counts[None, :], *tables, with_se=True)
    step = 1e-6
    for name in NAMES:
        grad = np.array([(resample_metrics((counts + step * e)[None, :], *tables)[0][name][0]
                          - resample_metrics((counts - step * e)[None, :], *tables)[0][name][0]) / (2 * step)
                         for e in np.eye(12)])
        assert errors[name][0] == pytest.approx(np.sqrt((counts * grad**2).sum()), rel=1e-5), name


def test_studentized_matches_a_naive_bootstrap_t():
    # Accuracy with groups, written out: resample groups, the ratio's delta-method error per resample,
    # t = (value - point) / error, Hesterberg's level Phi(sqrt(G/(G-1)) t_(G-1)(0.025)), clipped to [0, 1].
    from scipy import stats

    rng = np.random.default_rng(11)
    n_groups = 25
    groups = np.repeat(np.arange(n_groups), 8)
    y = rng.integers(0, 2, len(groups))
    hard = rng.random(n_groups)[groups] < 0.3
    p = np.where(rng.random(len(y)) < np.where(hard, 0.35, 0.05), 1 - y, y) * 0.8 + 0.1
    right = ((p >= THRESHOLD) == y).astype(float)
    a, d = np.bincount(groups, right), np.bincount(groups).astype(float)
    point = a.sum() / d.sum()
    se = np.sqrt(((a - point * d) ** 2).sum()) / d.sum()
    t = []
    for _ in range(4000):
        c = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        value = c @ a / (c @ d)
        t.append((value - point) / (np.sqrt(c @ (a - value * d) ** 2) / (c @ d)))
    level = stats.norm.cdf(np.sqrt(n_groups / (n_groups - 1)) * stats.t.ppf(0.025, n_groups - 1))
    t_low, t_high = np.quantile(t, [level, 1 - level])
    expected = (max(0.0, point - t_high * se), min(1.0, point - t_low * se))
    report = score_predictions(y, p, groups=groups, n_bootstrap=4000, random_state=2)
    assert report.metrics["accuracy"] == pytest.approx(point)
    assert report.intervals["accuracy"] == pytest.approx(expected, abs=0.006)
    percentile = score_predictions(y, p, groups=groups, n_bootstrap=4000, random_state=2, interval="percentile")
    assert percentile.intervals["accuracy"] != pytest.approx(expected, abs=0.006)


def test_bca_matches_scipy_on_chips():
    # One group per chip: the group jackknife is scipy's jackknife, so BCa must agree with scipy.stats.bootstrap.
    from scipy import stats

    def auc(y, p, axis=-1):  # Mann-Whitney, vectorised over resamples for scipy
        n_pos = y.sum(axis=axis)
        rank_sum = (stats.rankdata(p, axis=axis) * y).sum(axis=axis)
        return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * (y.shape[axis] - n_pos))

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 120)
    p = np.clip(0.25 * y + 0.75 * rng.random(120), 0, 1)
    assert auc(y, p) == pytest.approx(skm.roc_auc_score(y, p))
    got = score_predictions(y, p, n_bootstrap=10000, random_state=0, interval="bca").intervals["roc_auc"]
    ref = stats.bootstrap((y, p), auc, paired=True, vectorized=True, n_resamples=10000, method="BCa",
                          random_state=1).confidence_interval
    assert got == pytest.approx((ref.low, ref.high), abs=0.006)
    plain = score_predictions(y, p, n_bootstrap=10000, random_state=0, interval="percentile").intervals["roc_auc"]
    assert abs(got[0] - plain[0]) + abs(got[1] - plain[1]) > 0.002  # the correction moves the ends


def test_a_resample_without_errors_keeps_the_sample_error():
    # Recall errors in 2 of 20 groups only: about 1 resample in 9 has none (recall 1, no delta-method error).
    groups = np.repeat(np.arange(20), 10)
    y = np.tile([1, 0], 100)
    p = np.where(y == 1, 0.9, 0.1)
    p[[0, 2, 4, 100, 102]] = 0.2  # missed ships in groups 0 and 10
    report = score_predictions(y, p, groups=groups, n_bootstrap=2000)
    low, high = report.intervals["recall"]
    assert 0.5 < low < report.metrics["recall"] < high <= 1.0  # not stretched to [0, 1]


def test_a_perfect_prediction_has_a_point_interval():
    groups = np.repeat(np.arange(10), 6)
    y = np.tile([0, 1, 0], 20)
    report = score_predictions(y, 0.2 + 0.6 * y, groups=groups)
    for name in ("roc_auc", "average_precision", "accuracy", "precision", "recall", "f1"):
        assert report.intervals[name] == (1.0, 1.0), name


def test_chunks_give_the_same_values(data, monkeypatch):
    y, p = data
    whole = score_predictions(y, p, n_bootstrap=50)
    monkeypatch.setattr("competition.bootstrap._CHUNK_CELLS", 1000)  # 5 resamples per chunk
    assert score_predictions(y, p, n_bootstrap=50).intervals == whole.intervals


def test_no_bootstrap_gives_nan_intervals(data):
    y, p = data
    report = score_predictions(y, p, n_bootstrap=0)
    assert all(math.isnan(low) and math.isnan(high) for low, high in report.intervals.values())
    assert report.n_bootstrap_used == 0
    assert report.to_dict()["roc_auc_low"] is None


def test_to_dict_is_flat_json(data):
    y, p = data
    report = score_predictions(y, p, groups=np.arange(len(y)) // 20, n_bootstrap=100)
    d = report.to_dict()
    expected = [k for n in NAMES for k in (n, f"{n}_low", f"{n}_high")]
    expected += ["tn", "fp", "fn", "tp", "n", "n_positive", "n_groups"]
    assert list(d) == expected
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["tn"] + d["fp"] + d["fn"] + d["tp"] == d["n"] == 200
    assert d["n_groups"] == 10


def test_single_class_leaves_auc_undefined():
    report = score_predictions([0, 0, 0], [0.1, 0.6, 0.2], n_bootstrap=20)
    assert math.isnan(report.metrics["roc_auc"]) and math.isnan(report.metrics["average_precision"])
    assert report.n_bootstrap_used == 0
    d = report.to_dict()
    assert d["roc_auc"] is None and d["roc_auc_low"] is None
    assert d["accuracy"] == pytest.approx(2 / 3)
    json.dumps(d, allow_nan=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"y_true": [0, 1], "y_proba": [0.5]}, "y_true has 2 values and y_proba 1"),
        ({"y_true": [], "y_proba": []}, "expected the same length >= 1"),
        ({"y_true": [0, 2], "y_proba": [0.5, 0.5]}, "y_true holds values other than 0 and 1"),
        ({"y_proba": [0.5, 1.5]}, "y_proba holds 1 values outside [0, 1], e.g. [1.5]"),
        ({"y_proba": [0.5, float("nan")]}, "y_proba holds 1 values outside [0, 1]"),
        ({"n_bootstrap": -1}, "n_bootstrap=-1 is invalid; expected an int >= 0"),
        ({"n_bootstrap": 2.5}, "n_bootstrap=2.5 is invalid"),
        ({"confidence": 1.0}, "confidence=1.0 is invalid; expected a fraction in (0, 1)"),
        ({"groups": [1, 2, 3]}, "groups has 3 values but y_true 2"),
        ({"interval": "wald"}, "interval='wald' is invalid; expected one of 'studentized', 'bca', 'percentile'"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"y_true": [0, 1], "y_proba": [0.2, 0.7], **kwargs}
    with pytest.raises(ParameterError) as err:
        score_predictions(args.pop("y_true"), args.pop("y_proba"), **args)
    assert message in str(err.value)


def test_bad_labels_are_not_shown():
    with pytest.raises(ParameterError) as err:
        score_predictions([0, 7], [0.2, 0.7])
    assert str(err.value) == "y_true holds values other than 0 and 1; expected labels 1 (ship) and 0 (no ship)"


# --- validation against the test ids ------------------------------------------------------------


def parsed(rows, source="sub.csv") -> ParsedSubmission:
    return ParsedSubmission(ids=[r[0] for r in rows], values=[r[1] for r in rows],
                            lines=list(range(2, len(rows) + 2)), source=source)


def test_validate_aligns_to_expected_order():
    got = validate_submission(parsed([("c", "0.3"), ("a", " 1 "), ("b", "0"), ("d", "1e-3")]), ["a", "b", "c", "d"])
    assert got.dtype == np.float64
    assert got.tolist() == [1.0, 0.0, 0.3, 0.001]


def test_validate_accepts_numpy_ids():
    got = validate_submission(parsed([("x1", "0.5"), ("x2", "0.25")]), np.array(["x2", "x1"], dtype=object))
    assert got.tolist() == [0.25, 0.5]


def test_validate_reports_every_kind_at_once():
    rows = [("a", "1.7"), ("a", "0.5"), ("zz", "0.1"), ("b", "yes"), ("", "0.2")]
    with pytest.raises(SubmissionError) as err:
        validate_submission(parsed(rows), ["a", "b", "c"])
    problems = err.value.problems
    assert problems == [
        "5 rows but the test set has 3 ids (1 missing, e.g. 'c'); give one row per id of test.csv",
        "line 4: id 'zz' is not a test id; give one row per id of test.csv",
        "duplicate id 'a' on lines 2 and 3; keep one row per id",
        "line 6: 'id' is blank; expected a test id; fill it in or remove the row",
        "line 5: 'ship' must be a number, got 'yes'; expected a probability in [0, 1] written as a decimal number "
        "such as 0.25",
        "line 2: 'ship' must be a probability in [0, 1], got 1.7; the values look like percentages "
        "(the largest is 1.7); divide by 100 to get probabilities",
    ]
    assert str(err.value).startswith("sub.csv: 5 rows")


def test_validate_rejects_duplicate_expected_ids():
    with pytest.raises(ParameterError, match="expected_ids holds 1 duplicate"):
        validate_submission(parsed([("a", "0.5")]), ["a", "a"])


def test_docstring_examples():
    import doctest

    import competition.scoring

    result = doctest.testmod(competition.scoring)
    assert result.attempted > 0 and result.failed == 0


def test_metrics_pickle():
    import pickle

    assert pickle.loads(pickle.dumps(dict(METRICS)))["f1"]([1, 0, 1], [0.9, 0.2, 0.4]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("hard", [0, 1, 2, 5])
def test_both_ways_of_ranking_give_the_same_intervals_near_auc_1(hard, monkeypatch):
    """Resamples at AUC 1 have a delta-method error of exactly 0 (they take the sample's): the pair
    tables' round-off (1e-17) once made t huge and the studentized interval [0, 1]."""
    from competition import bootstrap

    rng = np.random.default_rng(hard)
    codes, y = rng.integers(0, 30, 240), (rng.random(240) < 0.25).astype(int)
    p = np.clip(0.6 * y + 0.4 * rng.random(240), 0, 1).round(4)
    p[np.flatnonzero(y == 0)[:hard]] = 0.99  # a few hard negatives: many resamples at exactly AUC 1
    reports = {}
    for path, max_groups in (("pairs", 1024), ("blocks", 0)):
        monkeypatch.setattr(bootstrap, "_PAIR_MAX_GROUPS", max_groups)
        reports[path] = score_predictions(y, p, groups=codes)
    for name in NAMES:
        assert reports["pairs"].intervals[name] == pytest.approx(reports["blocks"].intervals[name], abs=1e-9), name
        np.testing.assert_allclose(reports["pairs"].replicates[name], reports["blocks"].replicates[name], atol=1e-12)
    assert reports["pairs"].intervals["roc_auc"][0] > 0.85  # the bug gave 0.0
