"""The ship finder over one scene: detections (or the test bed's evaluation), the four output files, a summary.

``ships detect`` calls :func:`find_ships` once per scene; it only draws the progress and
prints the summaries.  On the test bed (``test_part`` given: the workspace's locked test
part, see :func:`competition.scenes.load_test_part`) the outputs show the pasted scene.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from competition.detect import detect_scene
from competition.detect_output import (draw_boxes, render_heatmap, save_png, write_detections_csv,
                                       write_detections_geojson)
from competition.scenes import HeldOutChips, evaluate_scene

__all__ = ["SHIP_COLOUR", "NO_SHIP_COLOUR", "FOUND_COLOUR", "find_ships"]

SHIP_COLOUR, NO_SHIP_COLOUR, FOUND_COLOUR = (40, 220, 60), (60, 200, 255), (255, 40, 40)


def find_ships(image: np.ndarray, model, *, scene: Path, out: Path, stem: str, params: dict,
               test_part: HeldOutChips | None = None, bed: dict | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict:
    """Detect ships in one scene (on the test bed with ``test_part``), write the outputs, return the summary.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The scene (:func:`competition.scenes.read_scene`).
    model : estimator with ``predict_proba``
    scene : path
        Where the scene came from (named in messages and in the GeoJSON).
    out, stem : path, str
        Writes ``out/STEM.csv``, ``.geojson``, ``.heatmap.png`` and ``.boxes.png`` (STEM + ``.pasted``
        on the test bed).
    params : dict
        ``stride``, ``threshold``, ``iou_threshold``, ``batch_size`` of :func:`detect_scene`.
    test_part : HeldOutChips, optional
        Chips to paste into the scene's water (the workspace's locked test part).
    bed : dict, optional
        ``n_ships``, ``n_no_ships``, ``random_state`` of the test bed.
    progress : callable, optional
        ``progress(done, total)`` after each batch of windows.

    Returns
    -------
    dict
        JSON-ready: size, params, windows, seconds, detections, output paths, and the
        test bed's ``evaluation`` when there is one.
    """
    start = time.perf_counter()
    if test_part is None:
        detections, pasted, report = detect_scene(image, model, progress=progress, **params), None, None
    else:
        report, pasted, detections = evaluate_scene(image, model, test_part.X, test_part.y, where=str(scene),
                                                    progress=progress, **(bed or {}), **params)
    seconds = time.perf_counter() - start
    outputs = _write_outputs(detections, pasted.image if pasted else image, pasted, out,
                             f"{stem}.pasted" if pasted else stem, scene)
    summary = {"width": int(image.shape[1]), "height": int(image.shape[0]), **params,
               "n_windows": detections.n_windows, "seconds": round(seconds, 3),
               "windows_per_second": round(detections.n_windows / max(seconds, 1e-9), 1),
               "n_detections": len(detections), "outputs": outputs, "detections": detections.to_records()}
    if report is not None:
        summary["evaluation"] = report.to_dict()
    return summary


def _write_outputs(detections, image, pasted, out: Path, stem: str, scene: Path) -> dict:
    """The table, the GeoJSON, the heat map and the boxes drawn on the (pasted) scene; their paths."""
    layers = []
    if pasted is not None:
        layers += [(pasted.boxes[pasted.y == 1], SHIP_COLOUR, None), (pasted.boxes[pasted.y == 0], NO_SHIP_COLOUR, None)]
    layers.append((detections.boxes, FOUND_COLOUR, [f"{s:.2f}" for s in detections.scores]))
    paths = {
        "csv": write_detections_csv(detections, out / f"{stem}.csv"),
        "geojson": write_detections_geojson(detections, out / f"{stem}.geojson", scene=Path(scene).name),
        "heatmap": save_png(render_heatmap(detections), out / f"{stem}.heatmap.png"),
        "boxes": save_png(draw_boxes(image, layers), out / f"{stem}.boxes.png"),
    }
    return {k: str(v) for k, v in paths.items()}
