"""Whole-process cost of `ships validate` / `ships score` against a floor, and peak memory.

The floor only starts Python, imports pandas and scikit-learn and computes one
roc_auc_score on the same submission file: no harness could be cheaper than that.
Goal: `ships score` <= 1.3x the floor; `ships score` peak memory under 300 MB.

    .venv/bin/python benchmarks/bench_cli.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FLOOR = """
import sys, pandas as pd
from sklearn.metrics import roc_auc_score
sub = pd.read_csv(sys.argv[1]); sol = pd.read_csv(sys.argv[2])
m = sol.merge(sub, on="id", suffixes=("_true", "_pred"))
print(roc_auc_score(m["ship_true"], m["ship_pred"]))
"""

PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); " \
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def wall(cmd: list[str], repeat: int) -> float:
    """Median wall time of a whole process, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_mb(cmd: list[str]) -> float:
    """Peak resident memory of a whole process, in MB."""
    out = subprocess.run([sys.executable, "-c", PEAK, *cmd], check=True, capture_output=True, text=True)
    return int(out.stdout.strip()) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ships = str(Path(sys.executable).with_name("ships"))
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        init_cmd = [ships, "init", "-w", str(ws), "--daily-quota", "1000"]
        init_mb = peak_mb(init_cmd)
        ids = pd.read_csv(ws / "public" / "test.csv", dtype={"id": str})["id"]
        sub = Path(tmp) / "submission.csv"
        pd.DataFrame({"id": ids, "ship": np.random.default_rng(0).random(len(ids)).round(4)}).to_csv(sub, index=False)
        floor_cmd = [sys.executable, "-c", FLOOR, str(sub), str(ws / "private" / "solution.csv")]
        validate_cmd = [ships, "validate", str(sub), "-w", str(ws)]
        # the scoring path itself; MLflow logging runs afterwards in a detached child process,
        # whose CPU would otherwise leak into the next repeat on 2 cores (measured apart below)
        score_cmd = [ships, "score", str(sub), "-w", str(ws), "--team", "bench", "--create", "--no-track"]
        tracked_cmd = [ships, "score", str(sub), "-w", str(ws), "--team", "bench", "--create"]
        wall(floor_cmd, 1)  # warm the page cache once
        t_floor = wall(floor_cmd, args.repeat)
        t_validate = wall(validate_cmd, args.repeat)
        t_score = wall(score_cmd, args.repeat)
        score_mb = peak_mb(score_cmd)
        t_tracked = wall(tracked_cmd, 1)
        floor_mb = peak_mb(floor_cmd)
    print(f"test set: {len(ids)} ids; median of {args.repeat} runs, whole process")
    print(f"floor (python + pandas + sklearn, one roc_auc_score): {t_floor:.3f} s")
    print(f"ships validate: {t_validate:.3f} s  ratio {t_validate / t_floor:.2f}x floor")
    print(f"ships score:    {t_score:.3f} s  ratio {t_score / t_floor:.2f}x floor (goal <= 1.3x)")
    print(f"ships score with MLflow logging handed to a child (one run): {t_tracked:.3f} s  "
          f"ratio {t_tracked / t_floor:.2f}x floor")
    print(f"peak memory: ships init {init_mb:.0f} MB, ships score {score_mb:.0f} MB (goal < 300 MB), "
          f"floor {floor_mb:.0f} MB, ratio score/floor {score_mb / floor_mb:.2f}x")


if __name__ == "__main__":
    main()
