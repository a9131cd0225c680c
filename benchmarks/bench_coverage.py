"""Coverage of the 95% group-bootstrap intervals on the real chips.

A fixed model is fitted once per official fold of all 4000 real chips (5 folds drawn by
``make_folds`` over acquisition days), which gives every chip an out-of-fold
probability; the "true" value of each metric is its value on all 4000 chips.  Then, for
each of ``--draws`` draws of held-out days, ``score_predictions`` computes the interval of
every metric from the held-out chips alone, by each method of ``INTERVALS``; the
coverage is the share of draws whose interval holds the true value (target: 95%).

Two designs of the held-out days:

- ``fair``: the locked test set of seed ``i`` (``make_split``, the fair balanced draw of
  about 20% of the days without replacement), as teams are scored.  The test days are
  part of the 157 whose value is the truth, so an exact interval would cover a little
  more than 95% here (finite-population correction, about 0.8 in variance).
- ``iid``: as many days as the locked test set of seed 0 holds (29), drawn with
  replacement from the 157 (the bootstrap's own model of the world): here an exact 95%
  interval covers 95%.

Each design also prints the mean held-out value minus the true one (the bias of the draw).

Models: ``xgboost`` (the baseline, 20x20 pixel means; true ROC AUC about 0.996, the case
near 1) or ``logreg`` (logistic regression on the same means; about 0.97).  Run::

    .venv/bin/python benchmarks/bench_coverage.py [--model xgboost] [--draws 1000] [--design fair,iid]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from competition.data import load_bundled, make_groups  # noqa: E402
from competition.scoring import INTERVALS, METRICS, score_predictions  # noqa: E402
from competition.split import make_folds, make_split  # noqa: E402

TARGET = 0.95


def make_model(name: str):
    """The estimator on raw chips: the xgboost baseline, or logistic regression on 20x20 pixel means."""
    if name == "xgboost":
        from baselines.xgboost import make_estimator

        return make_estimator(random_state=0)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    def means(X):
        return X.reshape(len(X), 20, 4, 20, 4, 3).mean(axis=(2, 4)).reshape(len(X), -1) / 255.0

    return make_pipeline(FunctionTransformer(means), StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))


def out_of_fold(name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, cache: Path | None) -> np.ndarray:
    """Out-of-fold probability of every chip (5 grouped folds), read from ``cache`` if it exists."""
    if cache is not None and cache.exists():
        return np.load(cache)
    fold = make_folds(y, groups, n_splits=5, random_state=0)
    proba = np.zeros(len(y))
    for k in range(5):
        model = make_model(name).fit(X[fold != k], y[fold != k])
        proba[fold == k] = model.predict_proba(X[fold == k])[:, 1]
    if cache is not None:
        np.save(cache, proba)
    return proba


def held_out(design: str, draw: int, y: np.ndarray, groups: np.ndarray, codes: np.ndarray,
             n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(chip indices, group of each) of one draw of held-out days."""
    if design == "fair":
        idx = np.flatnonzero(make_split(y, groups, random_state=draw).is_test)
        return idx, codes[idx]
    days = np.random.default_rng([draw, 7]).integers(0, codes.max() + 1, n_days)
    members = [np.flatnonzero(codes == d) for d in days]
    return np.concatenate(members), np.repeat(np.arange(n_days), [len(m) for m in members])  # a repeat is a new day


def coverage(design: str, draws: int, y: np.ndarray, proba: np.ndarray,
             groups: np.ndarray) -> tuple[dict, dict[str, float], dict[str, float]]:
    """{(metric, method): (hits, misses low, misses high, widths)} over ``draws`` held-out sets; truth; bias."""
    codes = np.unique(groups, return_inverse=True)[1]
    truth = {name: metric(y, proba) for name, metric in METRICS.items()}
    n_days = len(np.unique(groups[make_split(y, groups, random_state=0).is_test]))
    out = {(name, method): [] for name in METRICS for method in INTERVALS}
    points = {name: [] for name in METRICS}
    for draw in range(draws):
        idx, day = held_out(design, draw, y, groups, codes, n_days)
        for method in INTERVALS:
            report = score_predictions(y[idx], proba[idx], groups=day, random_state=draw, interval=method)
            if method == INTERVALS[0]:
                for name in METRICS:
                    points[name].append(report.metrics[name])
            for name in METRICS:
                low, high = report.intervals[name]
                out[name, method].append((low <= truth[name] <= high, truth[name] < low, truth[name] > high,
                                          high - low))
    bias = {name: float(np.mean(values) - truth[name]) for name, values in points.items()}
    return {key: np.array(rows, dtype=np.float64) for key, rows in out.items()}, truth, bias


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["xgboost", "logreg"], default="xgboost", help="the fixed model")
    parser.add_argument("--draws", type=int, default=1000, help="draws of held-out days per design")
    parser.add_argument("--design", default="fair,iid", help="comma-separated designs: fair, iid")
    parser.add_argument("--cache", type=Path, default=None, help="a .npy file keeping the out-of-fold predictions")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, {platform.machine()}")
    chips = load_bundled()
    groups = make_groups(chips.scene_id, "date")
    y = chips.y.astype(np.int64)
    start = time.perf_counter()
    proba = out_of_fold(args.model, chips.X, y, groups, args.cache)
    print(f"model {args.model}: out-of-fold predictions in {time.perf_counter() - start:.1f} s")
    for design in args.design.split(","):
        start = time.perf_counter()
        table, truth, bias = coverage(design, args.draws, y, proba, groups)
        print(f"\ndesign {design}: {args.draws} draws, 1000 resamples each, {time.perf_counter() - start:.0f} s; "
              f"coverage (misses below / above the interval), mean width, coverage / {TARGET:.0%}")
        print(f"{'metric':>18} {'true':>7} {'bias':>8} " + " ".join(f"{m:>31}" for m in INTERVALS))
        for name in METRICS:
            cells = []
            for method in INTERVALS:
                rows = table[name, method]
                hit, low, high, width = rows.mean(axis=0)
                cells.append(f"{hit:6.1%} ({low:4.1%}/{high:4.1%}) {width:6.4f} {hit / TARGET:4.2f}x")
            print(f"{name:>18} {truth[name]:7.4f} {bias[name]:+8.5f} " + " ".join(f"{c:>31}" for c in cells))


if __name__ == "__main__":
    main()
