"""Benchmark of cross-validation and the baselines on the bundled real chips.

Measures, on one machine:

1. the wall time of ``ships cv logreg --cv date`` with ``--n-jobs 1`` and ``--n-jobs 2``
   (whole command, in a fresh process) and their ratio;
2. each baseline's fit on all train chips (wall and CPU seconds);
3. each baseline's grouped CV ROC AUC (the official folds) next to its Public ROC AUC, the
   submission scored through the same path as a team's (``baselines.workflow.run_baseline``);
4. how much a leaky split overstates: one baseline under ``--cv random`` and ``--cv date``.

Usage::

    python benchmarks/bench_cv.py [--workspace DIR] [--baselines dummy,logreg,knn,xgboost]
                                  [--leak-model xgboost] [--skip-cli] [--out results.md]

Without ``--workspace`` a fresh workspace (seed 0) is created in a temporary folder.  Prints
Markdown tables (and writes them to ``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Runs the ships CLI; composes the command groups of this feature if the root does not list them yet.
_CLI = """
import sys, typer
from ships.cli import app
if "cv" not in typer.main.get_command(app).commands:
    from ships.baselines import cv_app
    app.add_typer(cv_app)
app(sys.argv[1:])
"""


def _ships(args: list[str]) -> float:
    """Wall seconds of one ``ships ...`` command in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _CLI, *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def bench_cli(ws_root: Path, tracking: str) -> list[str]:
    """``ships cv logreg --cv date`` with one and two parallel folds."""
    times = {}
    for n_jobs in (1, 2):
        times[n_jobs] = _ships(["cv", "logreg", "--cv", "date", "-w", str(ws_root), "--n-jobs", str(n_jobs),
                                "--tracking-uri", tracking])
        print(f"ships cv logreg --cv date --n-jobs {n_jobs}: {times[n_jobs]:.1f} s", flush=True)
    return ["| command | wall (s) |", "|---|---:|",
            *(f"| `ships cv logreg --cv date --n-jobs {j}` | {t:.1f} |" for j, t in times.items()),
            f"| ratio n-jobs 1 / n-jobs 2 | {times[1] / times[2]:.2f} |"]


def bench_baselines(ws, names: list[str], tracking: str) -> list[str]:
    """CV, fit, submit and log each baseline as ``ships baseline run NAME --submit`` does (the same library call)."""
    from functools import partial

    from baselines.workflow import run_baseline
    from competition.tracking import Tracker
    from leaderboard.submit import submit_file

    tracker = Tracker(tracking).check()
    submit = partial(submit_file, ws, kind="baseline")
    rows = ["| baseline | CV ROC AUC (official folds) | CV log loss | Public ROC AUC [95% CI] | fit on all train (s) |"
            " fit CPU (s) | CV + submit + log (s) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        start = time.perf_counter()
        outcome = run_baseline(ws, name, tracker=tracker, submit=submit, n_jobs=2,
                               notify=lambda text: print(text, file=sys.stderr, flush=True))
        total = time.perf_counter() - start
        fit_cpu = _fit_cpu(ws, name)
        cv, pub = outcome.cv, outcome.public
        rows.append(f"| {name} | {cv.mean['roc_auc']:.4f} ± {cv.std['roc_auc']:.4f} | {cv.mean['log_loss']:.4f} | "
                    f"{pub['roc_auc']:.4f} [{pub['roc_auc_low']:.4f}, {pub['roc_auc_high']:.4f}] | "
                    f"{outcome.fit_time:.1f} | {fit_cpu:.1f} | {total - outcome.fit_time:.1f} |")
        print(rows[-1], flush=True)
    return rows


def _fit_cpu(ws, name: str) -> float:
    """CPU seconds of one more fit on all train chips, in this process (one BLAS thread, one job)."""
    from baselines.registry import make_baseline

    train = ws.load_train()
    est = make_baseline(name, random_state=ws.config.seed)
    start = time.process_time()
    est.fit(train.X, train.y, groups=train.groups)
    return time.process_time() - start


def bench_leak(ws, name: str) -> list[str]:
    """The same baseline under leaky splits and grouped ones (the official folds for the workspace's grouping)."""
    from baselines.workflow import cross_validate_baseline, load_train_part, plan_cv

    train = load_train_part(ws)
    n = ws.config.n_splits
    rows = [f"| split ({name}, {n} folds) | ROC AUC | accuracy | log loss |", "|---|---:|---:|---:|"]
    for cv in ("random", "stratified", "scene", "date"):
        plan = plan_cv(ws, cv=cv, n_splits=n, train=train)
        r = cross_validate_baseline(ws, name, plan=plan, seed=0, n_jobs=2, train=train).result
        rows.append(f"| {cv} ({r.splitter}) | {r.mean['roc_auc']:.4f} ± {r.std['roc_auc']:.4f} | "
                    f"{r.mean['accuracy']:.4f} | {r.mean['log_loss']:.4f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="an existing workspace (default: a fresh one, seed 0)")
    parser.add_argument("--baselines", default="dummy,logreg,knn,xgboost")
    parser.add_argument("--leak-model", default="xgboost", help="baseline compared under leaky and grouped splits")
    parser.add_argument("--skip-cli", action="store_true", help="skip the ships cv n-jobs comparison")
    parser.add_argument("--out", type=Path, help="also write the Markdown tables here")
    args = parser.parse_args()

    from competition.create import init_workspace
    from competition.workspace import Workspace

    tmp = tempfile.TemporaryDirectory(prefix="bench-cv-")
    ws = Workspace.open(args.workspace) if args.workspace else init_workspace(Path(tmp.name) / "ws", seed=0)
    tracking = f"sqlite:///{Path(tmp.name) / 'mlflow.db'}"
    load = os.getloadavg()
    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
             f"load average at start {load[0]:.1f}; Python {platform.python_version()}", ""]
    if not args.skip_cli:
        lines += bench_cli(ws.root, tracking) + [""]
    lines += bench_baselines(ws, args.baselines.split(","), tracking) + [""]
    if args.leak_model:
        lines += bench_leak(ws, args.leak_model) + [""]
    lines.append(f"load average at end {os.getloadavg()[0]:.1f}")
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")
    tmp.cleanup()


if __name__ == "__main__":
    main()
