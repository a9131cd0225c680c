"""Benchmark: logreg's cross-validation on local joblib processes against a local Dask cluster.

The same call (:func:`baselines.workflow.cross_validate_baseline`, the official folds, logreg's
grouped nested search of C inside each fold) runs

1. with joblib's default backend, ``n_jobs`` local processes (loky), and
2. inside :func:`competition.cluster.dask_backend` on a ``distributed.LocalCluster`` of as many
   worker processes, one thread each, on 127.0.0.1;

both in this process, alternating, ``--repeat`` times each.  The cluster is started once and
its start-up time is reported apart; so is the start of the loky pool, which the first local
run pays.  Both runs must give the same out-of-fold predictions (checked).  Goal: the Dask run
takes at most 10% longer than the local one (median over the repeats).

Usage::

    python benchmarks/bench_dask.py [--workspace DIR] [--n-jobs 2] [--repeat 3] [--out results.md]

Without ``--workspace`` a fresh workspace (seed 0, the bundled 4000 chips) is created in a
temporary folder.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed_cv(ws, train, n_jobs: int):
    """Seconds of one logreg CV on the official folds, and its result."""
    from baselines.workflow import cross_validate_baseline

    start = time.perf_counter()
    result = cross_validate_baseline(ws, "logreg", n_jobs=n_jobs, train=train).result
    return time.perf_counter() - start, result


def bench(ws, n_jobs: int, repeat: int) -> list[str]:
    """Alternate local and Dask runs; return the Markdown table."""
    import numpy as np
    from distributed import LocalCluster

    from baselines.workflow import load_train_part
    from competition.cluster import connect_scheduler, dask_backend

    train = load_train_part(ws)
    start = time.perf_counter()
    cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, memory_limit=0)
    client = connect_scheduler(cluster.scheduler_address)
    startup = time.perf_counter() - start
    local, dask = [], []
    try:
        for k in range(repeat):
            seconds, ref = _timed_cv(ws, train, n_jobs)
            local.append(seconds)
            print(f"run {k}: local joblib, {n_jobs} processes: {seconds:.1f} s", flush=True)
            with dask_backend(client) as n_threads:
                seconds, res = _timed_cv(ws, train, -1)
            dask.append(seconds)
            print(f"run {k}: Dask, {n_threads} workers x 1 thread: {seconds:.1f} s", flush=True)
            np.testing.assert_array_equal(ref.y_proba, res.y_proba)  # the same numbers
    finally:
        client.close()
        cluster.close()
    ratio = statistics.median(dask) / statistics.median(local)
    goal = "met" if ratio <= 1.10 else "**not met**"
    return [f"logreg, official folds ({ref.n_splits}), {len(train.y)} train chips, C tuned by 3-fold grouped "
            f"inner search in each fold; ROC AUC {ref.mean['roc_auc']:.4f} on both (identical out-of-fold "
            "predictions)", "",
            "| backend | runs (s) | median (s) |", "|---|---|---:|",
            f"| joblib loky, n_jobs={n_jobs} | {', '.join(f'{t:.1f}' for t in local)} | "
            f"{statistics.median(local):.1f} |",
            f"| Dask LocalCluster, {n_jobs} workers x 1 thread | {', '.join(f'{t:.1f}' for t in dask)} | "
            f"{statistics.median(dask):.1f} |",
            f"| ratio Dask / local | | {ratio:.2f} (goal <= 1.10: {goal}) |", "",
            f"Cluster start-up (not in the runs above): {startup:.1f} s."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="an existing workspace (default: a fresh one, seed 0)")
    parser.add_argument("--n-jobs", type=int, default=2, help="local processes, and Dask worker processes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    args = parser.parse_args()

    from competition.create import init_workspace
    from competition.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        ws = Workspace.open(args.workspace) if args.workspace else init_workspace(Path(tmp) / "ws", seed=0)
        load = os.getloadavg()
        lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load average "
                 f"at start {load[0]:.1f}; Python {platform.python_version()}", ""]
        lines += bench(ws, args.n_jobs, args.repeat)
        lines.append(f"Load average at end {os.getloadavg()[0]:.1f}.")
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
