"""Grouped cross-validation and final fit of the Keras baselines (``cnn``, ``vgg16``).

Made for a GPU machine with JAX or PyTorch, no TensorFlow and no internet, so this
script imports neither tensorflow nor mlflow nor any module of this repository that
does: only numpy, scikit-learn, Pillow (chip reading) and keras with the chosen backend.

On the bundled chips grouped by acquisition day: the locked holdout of ``ships init``
(``make_split``: 20% of days), the official grouped folds of the rest for CV, then a
final fit on all non-holdout chips scored on the holdout.  Writes a markdown table
(``--output``) and JSON (``--json``): device, backend, per-fold ROC AUC, seconds per
fit and per epoch.

Run::

    KERAS_BACKEND=jax python benchmarks/gpu_baselines.py --output benchmarks/RESULTS.md --json results.json
    python benchmarks/gpu_baselines.py --backend jax --weights vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
    python benchmarks/gpu_baselines.py --max-chips 400 --epochs 1 --output /tmp/smoke.md   # quick CPU check
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOALS = {"cnn": (0.995, 15.0), "vgg16": (0.999, 30.0)}  # ROC AUC, fit seconds on one H100


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=["tensorflow", "jax", "torch"], help="Keras backend (default: KERAS_BACKEND or keras.json)")
    p.add_argument("--models", default="cnn,vgg16", help="comma-separated baselines to run (cnn, vgg16)")
    p.add_argument("--weights", default="none", help="vgg16 weights: none, imagenet, or a weights file path")
    p.add_argument("--n-splits", type=int, default=5, help="grouped CV folds over the non-holdout chips")
    p.add_argument("--test-size", type=float, default=0.2, help="holdout fraction (whole groups)")
    p.add_argument("--group-by", choices=["date", "scene"], default="date", help="grouping unit")
    p.add_argument("--epochs", type=int, help="epochs (first phase for vgg16); default: each model's default")
    p.add_argument("--fine-tune-epochs", type=int, help="vgg16 epochs with block5 unfrozen (pretrained weights only)")
    p.add_argument("--batch-size", type=int, help="batch size; default: each model's default (64)")
    p.add_argument("--max-chips", type=int, default=0, help="use a stratified random subset of this many chips (0: all)")
    p.add_argument("--no-cv", action="store_true", help="skip CV, run only the final fit")
    p.add_argument("--seed", type=int, default=0, help="random_state of the split and of every fit")
    p.add_argument("--output", type=Path, help="markdown results file")
    p.add_argument("--json", type=Path, help="JSON results file")
    return p.parse_args(argv)


def load_data(args):
    """X, y, groups, holdout mask and official folds (-1 on the holdout)."""
    from competition.data import load_bundled, make_groups
    from competition.split import make_split

    chips = load_bundled()
    X, y, groups = chips.X, chips.y, make_groups(chips.scene_id, args.group_by)
    if 0 < args.max_chips < len(y):
        rng = np.random.default_rng(args.seed)
        keep = np.concatenate([rng.choice(np.flatnonzero(y == k), round(args.max_chips * np.mean(y == k)), replace=False) for k in (0, 1)])
        keep.sort()
        X, y, groups = X[keep], y[keep], groups[keep]
    split = make_split(y, groups, test_size=args.test_size, n_splits=args.n_splits, random_state=args.seed)
    return X, y, groups, split.is_test, split.fold


def model_params(name: str, args) -> dict:
    params = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None}
    if name == "vgg16":
        params["weights"] = args.weights
        if args.fine_tune_epochs is not None:
            params["fine_tune_epochs"] = args.fine_tune_epochs
    return params


def fit_and_score(name, params, seed, X, y, groups, train, test) -> dict:
    """One fit on ``train``, ROC AUC on ``test``, with timings."""
    import importlib

    from sklearn.metrics import roc_auc_score

    module = importlib.import_module(f"baselines.{name}")
    est = module.make_estimator(random_state=seed, **params)
    est.fit(X[train], y[train], groups=groups[train])
    start = time.perf_counter()
    proba = est.predict_proba(X[test])[:, 1]
    predict_seconds = time.perf_counter() - start
    epochs = [round(s, 3) for s in est.epoch_seconds_]
    return {
        "roc_auc": float(roc_auc_score(y[test], proba)),
        "fit_seconds": round(est.fit_seconds_, 2),
        "epochs": len(epochs),
        "seconds_per_epoch": round(float(np.median(epochs[1:] or epochs)), 3),
        "first_epoch_seconds": epochs[0],
        "epoch_seconds": epochs,
        "predict_seconds": round(predict_seconds, 2),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "weights_source": est.weights_source_,
        "backend": est.backend_,
    }


def run_model(name, args, data, log) -> list[dict]:
    X, y, groups, is_test, fold = data
    params = model_params(name, args)
    rows = []
    folds = [] if args.no_cv else sorted(set(fold[~is_test].tolist()))
    for k in folds:
        row = fit_and_score(name, params, args.seed, X, y, groups, np.flatnonzero(~is_test & (fold != k)), np.flatnonzero(fold == k))
        rows.append({"model": name, "part": f"fold {k + 1}", **row})
        log(f"{name} fold {k + 1}/{len(folds)}: ROC AUC {row['roc_auc']:.4f}, fit {row['fit_seconds']:.1f} s")
    row = fit_and_score(name, params, args.seed, X, y, groups, np.flatnonzero(~is_test), np.flatnonzero(is_test))
    rows.append({"model": name, "part": "holdout", **row})
    log(f"{name} final fit: holdout ROC AUC {row['roc_auc']:.4f}, fit {row['fit_seconds']:.1f} s")
    return rows


def describe_device(keras) -> str:
    """The accelerator Keras runs on (or the CPU), in words."""
    backend = keras.backend.backend()
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    try:
        if backend == "jax":
            import jax

            dev = jax.devices()[0]
            return f"{dev.device_kind} ({dev.platform}, {len(jax.devices())} device(s)); host CPU {cpu}"
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                return f"{torch.cuda.get_device_name(0)} (cuda); host CPU {cpu}"
        if backend == "tensorflow":  # only reached when keras already imported tensorflow
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                return f"{tf.config.experimental.get_device_details(gpus[0]).get('device_name', 'GPU')} (gpu); host CPU {cpu}"
    except (ImportError, RuntimeError) as exc:
        return f"unknown ({exc}); host CPU {cpu}"
    return f"CPU only: {cpu}"


def summarize(rows) -> list[dict]:
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        folds = [r["roc_auc"] for r in rows if r["model"] == name and r["part"] != "holdout"]
        final = next(r for r in rows if r["model"] == name and r["part"] == "holdout")
        goal_auc, goal_fit = GOALS.get(name, (None, None))
        out.append({
            "model": name, "weights": final["weights_source"],
            "cv_roc_auc": float(np.mean(folds)) if folds else None,
            "cv_roc_auc_std": float(np.std(folds)) if folds else None,
            "holdout_roc_auc": final["roc_auc"], "fit_seconds": final["fit_seconds"],
            "seconds_per_epoch": final["seconds_per_epoch"], "goal_roc_auc": goal_auc, "goal_fit_seconds": goal_fit,
        })
    return out


def to_markdown(report: dict) -> str:
    cfg = report["config"]
    lines = [
        "# Keras baselines: grouped CV and final fit", "",
        f"- device: {report['device']}",
        f"- backend: {report['backend']} (keras {report['keras_version']})",
        f"- data: {cfg['n_chips']} bundled chips grouped by {cfg['group_by']}; holdout {cfg['n_holdout']} chips "
        f"(whole groups, `make_split`, seed {cfg['seed']}); {cfg['n_splits']}-fold grouped CV on the rest",
        f"- command: `{report['command']}`",
        f"- date: {report['date']}", "",
        "| model | weights | CV ROC AUC | holdout ROC AUC | final fit s | s/epoch | goal (GPU) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report["summary"]:
        cv = f"{s['cv_roc_auc']:.4f} ± {s['cv_roc_auc_std']:.4f}" if s["cv_roc_auc"] is not None else "-"
        goal = f"AUC ≥ {s['goal_roc_auc']}, fit < {s['goal_fit_seconds']:.0f} s" if s["goal_roc_auc"] else "-"
        lines.append(f"| {s['model']} | {s['weights']} | {cv} | {s['holdout_roc_auc']:.4f} | {s['fit_seconds']:.1f} "
                     f"| {s['seconds_per_epoch']:.2f} | {goal} |")
    lines += ["", "| model | part | train / test chips | ROC AUC | fit s | epochs | first epoch s | s/epoch | predict s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['model']} | {r['part']} | {r['n_train']} / {r['n_test']} | {r['roc_auc']:.4f} | {r['fit_seconds']:.1f} "
                     f"| {r['epochs']} | {r['first_epoch_seconds']:.2f} | {r['seconds_per_epoch']:.2f} | {r['predict_seconds']:.2f} |")
    lines += ["", "s/epoch: median over epochs after the first (the first includes compilation)."]
    return "\n".join(lines) + "\n"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend  # before keras is first imported
    from baselines._keras import import_keras
    from competition.errors import ShipsError

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - {"cnn", "vgg16"})
    if unknown:
        print(f"Error: unknown model(s) {unknown}; expected cnn and/or vgg16", file=sys.stderr)
        return 2
    try:
        keras = import_keras()
        data = load_data(args)
        rows = [row for name in models for row in run_model(name, args, data, _log)]
    except ShipsError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    report = {
        "device": describe_device(keras), "backend": keras.backend.backend(), "keras_version": keras.__version__,
        "command": " ".join([Path(sys.argv[0]).name if argv is None else "gpu_baselines.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "config": {"n_chips": int(len(data[1])), "n_holdout": int(data[3].sum()), "n_splits": args.n_splits,
                   "group_by": args.group_by, "seed": args.seed, "models": models,
                   "params": {m: model_params(m, args) for m in models}},
        "summary": summarize(rows), "results": rows,
    }
    text = to_markdown(report)
    print(text)
    if args.output:
        args.output.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
