"""Speed and memory of the ship finder, and its quality on the paste-in test bed.

1. Speed: windows per second of the batched detector (``detect_scene``) against the usual
   notebook loop that calls ``predict_proba`` on one window at a time, same model, same
   scene region, on this machine's CPU (or whatever Keras uses).  Models: a fast baseline
   and the Keras CNN (briefly trained: speed does not depend on how well it learned).
2. Memory: peak Python/numpy allocation (tracemalloc) while scanning ever larger scenes
   memory-mapped from ``.npy`` files: it follows the batch size, not the scene size.
3. Quality (``--quality``): recall and precision on every scene with real test-part chips
   pasted into the water, models trained on the train part only.  Both parts are read from
   a workspace (``--workspace``; default: a fresh one, seed 0, as a plain ``ships init``).

Run::

    python benchmarks/bench_detect.py                      # speed and memory, on the bundled demo scene
    python benchmarks/bench_detect.py --skip-speed --skip-memory --quality logreg,xgboost,cnn \
        --scene ../shared/data/scenes/scene_*.png
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from competition.detect import CHIP_SIZE, detect_scene  # noqa: E402
from competition.scenes import evaluate_scene, load_test_part, read_scene  # noqa: E402

MB = 1024 * 1024


def fit_model(name: str, train, *, quick_chips: int = 0, quick_epochs: int = 1):
    """Baseline ``baselines/NAME.py`` fitted on the train part; ``quick_chips`` > 0 trains a Keras model briefly."""
    import importlib

    X, y, groups, params = train.X, train.y, train.groups, {}
    if quick_chips and name in ("cnn", "vgg16"):
        idx = np.random.default_rng(0).choice(len(y), size=min(quick_chips, len(y)), replace=False)
        X, y, groups, params = X[idx], y[idx], None, {"epochs": quick_epochs, "validation_fraction": 0}
    model = importlib.import_module(f"baselines.{name}").make_estimator(random_state=0, **params)
    start = time.perf_counter()
    model.fit(X, y, groups=groups)
    return model, time.perf_counter() - start


def time_batched(model, region: np.ndarray, stride: int, batch_size: int) -> tuple[int, float]:
    """Windows scored and seconds taken by ``detect_scene`` over the region."""
    start = time.perf_counter()
    det = detect_scene(region, model, stride=stride, batch_size=batch_size)
    return det.n_windows, time.perf_counter() - start


def time_naive(model, region: np.ndarray, stride: int, n_windows: int, budget_s: float) -> tuple[int, float]:
    """The notebook loop: ``predict_proba`` on one window at a time (stops after ``budget_s``)."""
    height, width = region.shape[:2]
    origins = [(y, x) for y in range(0, height - CHIP_SIZE + 1, stride) for x in range(0, width - CHIP_SIZE + 1, stride)]
    done, start = 0, time.perf_counter()
    for y, x in origins[:n_windows]:
        model.predict_proba(region[y: y + CHIP_SIZE, x: x + CHIP_SIZE][np.newaxis])
        done += 1
        if time.perf_counter() - start > budget_s:
            break
    return done, time.perf_counter() - start


def bench_speed(model, name: str, region: np.ndarray, args) -> dict:
    model.predict_proba(region[np.newaxis, :CHIP_SIZE, :CHIP_SIZE])  # warm-up (graph tracing) for both
    n_batched, t_batched = time_batched(model, region, args.stride, args.batch_size)
    n_naive, t_naive = time_naive(model, region, args.stride, args.naive_windows, args.naive_budget)
    row = {"model": name, "region": f"{region.shape[1]}x{region.shape[0]}", "stride": args.stride,
           "batched_windows": n_batched, "batched_s": round(t_batched, 3),
           "batched_windows_per_s": round(n_batched / t_batched, 1),
           "naive_windows": n_naive, "naive_s": round(t_naive, 3),
           "naive_windows_per_s": round(n_naive / t_naive, 1)}
    row["speedup"] = round(row["batched_windows_per_s"] / row["naive_windows_per_s"], 1)
    print(f"{name:8s} batched {row['batched_windows_per_s']:>9,.0f} windows/s ({n_batched} windows in {t_batched:.2f} s) | "
          f"naive {row['naive_windows_per_s']:>7,.1f} windows/s ({n_naive} windows in {t_naive:.2f} s) | "
          f"x{row['speedup']:,.1f}", flush=True)
    return row


def bench_memory(model, image: np.ndarray, sides: list[int], batch_sizes: list[int], stride: int) -> list[dict]:
    """Peak traced allocation while scanning square scenes tiled from ``image``, memory-mapped from .npy."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for side in sides:
            path = Path(tmp) / f"scene_{side}.npy"
            big = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(side, side, 3))
            for y in range(0, side, image.shape[0]):
                for x in range(0, side, image.shape[1]):
                    tile = image[: side - y, : side - x]
                    big[y: y + tile.shape[0], x: x + tile.shape[1]] = tile
            big.flush()
            del big
            scene = read_scene(path)
            for batch_size in batch_sizes:
                tracemalloc.start()
                start = time.perf_counter()
                det = detect_scene(scene, model, stride=stride, batch_size=batch_size)
                seconds = time.perf_counter() - start
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                row = {"scene": f"{side}x{side}", "scene_mb": round(side * side * 3 / MB, 1), "stride": stride,
                       "batch_size": batch_size, "windows": det.n_windows, "seconds": round(seconds, 2),
                       "peak_mb": round(peak / MB, 1), "batch_mb": round(batch_size * CHIP_SIZE**2 * 3 / MB, 1),
                       "all_windows_mb": round(det.n_windows * CHIP_SIZE**2 * 3 / MB, 1)}
                print(f"scene {row['scene']:>11s} ({row['scene_mb']:>6.1f} MB on disk, memory-mapped) "
                      f"batch {batch_size:>5d} ({row['batch_mb']:>5.1f} MB of chips): {det.n_windows:>7,d} windows "
                      f"in {seconds:6.1f} s, peak traced allocation {row['peak_mb']:7.1f} MB "
                      f"(all windows copied at once: {row['all_windows_mb']:,.0f} MB)", flush=True)
                rows.append(row)
            del scene
    return rows


def bench_quality(model, name: str, scenes: list[Path], test, args) -> list[dict]:
    """Test-bed figures of one model on every scene (other pasted chips in each), at each threshold."""
    from competition.detect import boxes_from_heatmap, non_max_suppression
    from competition.scenes import evaluate_detections

    thresholds = [float(t) for t in args.thresholds.split(",")]
    rows = []
    for k, path in enumerate(scenes):
        report, pasted, det = evaluate_scene(read_scene(path), model, test.X, test.y, n_ships=args.n_ships,
                                             n_no_ships=args.n_ships, random_state=args.seed + k, where=str(path),
                                             stride=args.stride, threshold=min(thresholds), iou_threshold=args.iou)
        for threshold in thresholds:
            boxes, scores = boxes_from_heatmap(det.heatmap, det.stride, threshold)
            keep = non_max_suppression(boxes, scores, args.iou)
            report = evaluate_detections(boxes[keep], scores[keep], pasted.boxes, pasted.y)
            rows.append({"model": name, "scene": path.name, "threshold": threshold, **report.to_dict()})
            print(f"{name:8s} {path.name:12s} threshold {threshold:.2f}: ships found {report.true_positives:>2d}/"
                  f"{report.n_ships} recall {report.recall:.2f} precision {report.precision:.2f} no-ship chips fired "
                  f"{report.no_ships_fired}/{report.n_no_ships} duplicates {report.duplicates} "
                  f"elsewhere {report.elsewhere}", flush=True)
    for threshold in thresholds:
        part = [r for r in rows if r["threshold"] == threshold]
        tp, fp = sum(r["true_positives"] for r in part), sum(r["false_positives"] for r in part)
        n, fired = sum(r["n_ships"] for r in part), sum(r["no_ships_fired"] for r in part)
        n_no = sum(r["n_no_ships"] for r in part)
        print(f"{name:8s} all scenes   threshold {threshold:.2f}: ships found {tp}/{n} recall {tp / n:.2f} "
              f"precision {tp / max(tp + fp, 1):.2f} no-ship chips fired {fired}/{n_no} "
              f"elsewhere {sum(r['elsewhere'] for r in part)}", flush=True)
    return rows


def _parts(workspace: Path | None):
    """(train part, locked test part with labels) of the workspace, or of a fresh one (seed 0)."""
    from competition.workspace import Workspace, init_workspace

    if workspace is None:
        with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
            ws = init_workspace(Path(tmp) / "ws", seed=0)
            return ws.load_train(), load_test_part(ws)
    ws = Workspace.open(workspace)
    return ws.load_train(), load_test_part(ws)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scene", nargs="+", type=Path, default=[ROOT / "competition" / "data" / "scenes" / "scene_2.png"],
                        help="Scenes (the first one for speed and memory; all for --quality).")
    parser.add_argument("--models", default="dummy,logreg,xgboost,cnn",
                        help="Models of the speed test (dummy measures the detector's own cost per window).")
    parser.add_argument("--region", type=int, default=800, help="Side of the scene region scanned for speed.")
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--naive-windows", type=int, default=1000, help="Windows the naive loop scores at most.")
    parser.add_argument("--naive-budget", type=float, default=30.0, help="Seconds the naive loop runs at most.")
    parser.add_argument("--memory-sides", default="2000,4000,8000", help="Sides of the memory-mapped scenes.")
    parser.add_argument("--memory-batches", default="256,1024,4096")
    parser.add_argument("--memory-stride", type=int, default=20)
    parser.add_argument("--memory-model", default="logreg", help="Model of the memory test (numpy-based, traced).")
    parser.add_argument("--quality", default="", help="Models for the test bed (e.g. logreg,xgboost); none by default.")
    parser.add_argument("--n-ships", type=int, default=20, help="Ship chips (and as many no-ship chips) per scene.")
    parser.add_argument("--thresholds", default="0.5,0.9", help="Thresholds of the test bed (one scan each scene).")
    parser.add_argument("--iou", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cnn-chips", type=int, default=800, help="Train chips of the Keras model of the speed test.")
    parser.add_argument("--cnn-epochs", type=int, default=1, help="Epochs of the Keras model of the speed test.")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", type=Path, help="Also write every figure to this JSON file.")
    parser.add_argument("--workspace", type=Path, help="Workspace whose train part fits the models and whose "
                        "locked test part is pasted (default: a fresh one, seed 0, in a temporary folder).")
    args = parser.parse_args(argv)

    import os
    import platform

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start (other processes share these CPUs)", flush=True)
    train, test = _parts(args.workspace)
    image = read_scene(args.scene[0])
    region = np.ascontiguousarray(image[: args.region, : args.region])
    results: dict = {"speed": [], "memory": [], "quality": []}
    fitted = {}
    for name in [m for m in args.models.split(",") if m and not args.skip_speed]:
        model, fit_s = fit_model(name, train, quick_chips=args.cnn_chips, quick_epochs=args.cnn_epochs)
        fitted[name] = model
        print(f"fitted {name} in {fit_s:.1f} s", flush=True)
        results["speed"].append(bench_speed(model, name, region, args))
    if not args.skip_memory:
        name = args.memory_model
        model = fitted[name] if name in fitted else fit_model(name, train, quick_chips=args.cnn_chips)[0]
        sides = [int(s) for s in args.memory_sides.split(",")]
        batches = [int(b) for b in args.memory_batches.split(",")]
        results["memory"] = bench_memory(model, image, sides, batches, args.memory_stride)
    for name in [m for m in args.quality.split(",") if m]:
        if name in fitted and name not in ("cnn", "vgg16"):
            model = fitted[name]
        else:
            model, fit_s = fit_model(name, train)  # fully trained, on the non-test part only
            print(f"fitted {name} on {len(train.y)} train-part chips in {fit_s:.1f} s", flush=True)
        results["quality"] += bench_quality(model, name, args.scene, test, args)
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
