"""Speed of the scoring function and of the group bootstrap.

(a) ``score_predictions(..., n_bootstrap=0)`` (all eight metrics and the confusion
    matrix) on synthetic data of 10^3 .. 10^7 rows, against a peer measured in the
    same run on the same arrays: scikit-learn's ``roc_auc_score`` alone.
(b) The group bootstrap, 1000 resamples, on the real locked test set (bundled chips,
    the default split, groups = acquisition day) with fixed synthetic predictions
    (noisy labels): against the 0.3 s goal, and against a naive loop that draws the
    groups and calls ``roc_auc_score`` once per resample (AUC only, where the
    vectorised bootstrap computes all eight metrics).

Times are medians of several runs after one warm-up run.  Run::

    .venv/bin/python benchmarks/bench_scoring.py [--max-power 7] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from competition.data import load_bundled, make_groups  # noqa: E402
from competition.scoring import INTERVALS, METRICS, score_predictions  # noqa: E402
from competition.split import make_split  # noqa: E402

GOAL_S = 0.3


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn()`` in seconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels (25% ships, as in ShipsNet) and noisy probabilities rounded to 4 decimals, as in a real file."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(np.int64)
    p = np.clip(0.2 + 0.5 * y + rng.normal(0.0, 0.2, n), 0.0, 1.0).round(4)
    return y, p


def sklearn_calls(y: np.ndarray, p: np.ndarray) -> None:
    """The scikit-learn calls score_predictions makes, made directly (its floor)."""
    for metric in METRICS.values():
        metric.function(y, p if metric.uses_proba else (p >= 0.5).astype(np.int64))
    confusion_matrix(y, (p >= 0.5).astype(np.int64), labels=[0, 1])


def bench_point_values(max_power: int, repeat: int) -> None:
    """(a): score_predictions without bootstrap against roc_auc_score alone and the bare sklearn calls."""
    print("(a) score_predictions(n_bootstrap=0): all 8 metrics + confusion matrix; peers: roc_auc_score alone, "
          "and the same 9 scikit-learn calls made directly")
    print(f"{'rows':>10} {'ours s':>9} {'roc_auc_score s':>16} {'ours/auc':>9} {'9 sklearn calls s':>18} "
          f"{'ours/calls':>10}")
    for power in range(3, max_power + 1):
        n = 10**power
        y, p = synthetic(n)
        reps = repeat if n <= 10**6 else max(1, repeat // 3)
        ours = timed(lambda: score_predictions(y, p, n_bootstrap=0), reps)
        peer = timed(lambda: roc_auc_score(y, p), reps)
        calls = timed(lambda: sklearn_calls(y, p), reps)
        print(f"{n:>10,} {ours:>9.4f} {peer:>16.4f} {ours / peer:>8.2f}x {calls:>18.4f} {ours / calls:>9.2f}x")


def real_test_set() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_proba, groups, is_public) of the real locked test set, with fixed noisy predictions."""
    chips = load_bundled()
    groups = make_groups(chips.scene_id, "date")
    split = make_split(chips.y, groups)
    y = chips.y[split.is_test].astype(np.int64)
    rng = np.random.default_rng(0)
    p = np.clip(0.15 + 0.6 * y + rng.normal(0.0, 0.2, len(y)), 0.0, 1.0).round(4)
    return y, p, groups[split.is_test], split.is_public[split.is_test]


def naive_loop(y: np.ndarray, p: np.ndarray, groups: np.ndarray, n_bootstrap: int, seed: int = 0) -> np.ndarray:
    """The usual loop: draw groups with replacement, gather their chips, call roc_auc_score."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    values = []
    for _ in range(n_bootstrap):
        idx = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        if 0 < y[idx].sum() < len(idx):
            values.append(roc_auc_score(y[idx], p[idx]))
    return np.array(values)


def bench_bootstrap(repeat: int, n_bootstrap: int = 1000) -> None:
    """(b): the group bootstrap on the real test set (and its Public part)."""
    y, p, groups, is_public = real_test_set()
    print(f"\n(b) group bootstrap, {n_bootstrap} resamples, real test set, groups = acquisition day")
    print(f"{'part':>7} {'chips':>6} {'groups':>6} {'point s':>8} {'with bootstrap s':>17} {'bootstrap s':>12} "
          f"{'/ 0.3 s goal':>12} {'naive loop s':>13} {'naive / ours':>12}")
    for part, mask in (("test", np.ones(len(y), dtype=bool)), ("Public", is_public)):
        yy, pp, gg = y[mask], p[mask], groups[mask]
        point = timed(lambda: score_predictions(yy, pp, groups=gg, n_bootstrap=0), repeat)
        whole = timed(lambda: score_predictions(yy, pp, groups=gg, n_bootstrap=n_bootstrap), repeat)
        boot = whole - point
        naive = timed(lambda: naive_loop(yy, pp, gg, n_bootstrap), max(1, repeat // 3))
        print(f"{part:>7} {len(yy):>6} {len(np.unique(gg)):>6} {point:>8.4f} {whole:>17.4f} {boot:>12.4f} "
              f"{boot / GOAL_S:>11.2f}x {naive:>13.3f} {naive / boot:>11.1f}x")
    report = score_predictions(y, p, groups=groups, n_bootstrap=n_bootstrap, interval="percentile")
    naive = np.quantile(naive_loop(y, p, groups, n_bootstrap), [0.025, 0.975])
    low, high = report.intervals["roc_auc"]
    print(f"\nroc_auc on the test set: {report.metrics['roc_auc']:.4f}, 95% percentile interval [{low:.4f}, {high:.4f}] "
          f"(naive loop, same seed: [{naive[0]:.4f}, {naive[1]:.4f}]), "
          f"{report.n_bootstrap_used}/{n_bootstrap} resamples used; {len(METRICS)} metrics per resample")
    for method in INTERVALS:
        whole = timed(lambda: score_predictions(y, p, groups=groups, n_bootstrap=n_bootstrap, interval=method), repeat)
        low, high = score_predictions(y, p, groups=groups, n_bootstrap=n_bootstrap, interval=method).intervals["roc_auc"]
        print(f"interval={method:>11}: {whole:.4f} s with {n_bootstrap} resamples ({whole / GOAL_S:.2f}x the goal), "
              f"roc_auc [{low:.4f}, {high:.4f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-power", type=int, default=7, help="largest synthetic size is 10**max_power rows")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (median reported)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, {platform.machine()}")
    bench_point_values(args.max_power, args.repeat)
    bench_bootstrap(args.repeat)


if __name__ == "__main__":
    main()
