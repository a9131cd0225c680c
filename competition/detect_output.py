"""The ship finder's outputs: detections as CSV and GeoJSON (pixel coordinates), the heat map
as PNG, and the scene with its boxes drawn as PNG."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from competition.detect import CHIP_SIZE, Detections

__all__ = ["write_detections_csv", "write_detections_geojson", "render_heatmap", "draw_boxes", "save_png"]

_CSV_COLUMNS = ["id", "x0", "y0", "x1", "y1", "x_center", "y_center", "score"]


def write_detections_csv(detections: Detections, path: Path) -> Path:
    """Write one row per box: ``id,x0,y0,x1,y1,x_center,y_center,score`` (pixels)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=_CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(detections.to_records())
    return path


def write_detections_geojson(detections: Detections, path: Path, *, scene: str = "") -> Path:
    """Write a GeoJSON FeatureCollection of box Polygons in pixel coordinates (x right, y down)."""
    features = []
    for rec in detections.to_records():
        x0, y0, x1, y1 = rec["x0"], rec["y0"], rec["x1"], rec["y1"]
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        features.append({"type": "Feature", "id": rec["id"], "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {"id": rec["id"], "score": rec["score"]}})
    height, width = detections.image_shape
    doc = {"type": "FeatureCollection", "scene": scene, "width": width, "height": height,
           "crs_note": "pixel coordinates: x right, y down, from the top-left corner", "features": features}
    path = Path(path)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def render_heatmap(detections: Detections) -> np.ndarray:
    """The heat map as an (H, W, 3) uint8 image aligned with the scene (black 0 -> red -> yellow -> white 1).

    Each window's probability fills the ``stride`` x ``stride`` cell around the window's centre.
    """
    levels = (np.clip(detections.heatmap, 0.0, 1.0) * 255).round().astype(np.uint8)
    s = detections.stride
    cells = np.repeat(np.repeat(levels, s, axis=0), s, axis=1)
    height, width = detections.image_shape
    canvas = np.zeros((height, width), dtype=np.uint8)
    off = CHIP_SIZE // 2 - s // 2  # canvas pixel (y, x) shows cells[y - off, x - off]
    y0 = x0 = max(off, 0)
    cut = cells[y0 - off: height - off, x0 - off: width - off]
    canvas[y0: y0 + cut.shape[0], x0: x0 + cut.shape[1]] = cut
    ramp = np.arange(256, dtype=np.float64) / 255 * 3
    lut = (np.stack([np.clip(ramp, 0, 1), np.clip(ramp - 1, 0, 1), np.clip(ramp - 2, 0, 1)], axis=1) * 255)
    return lut.round().astype(np.uint8)[canvas]


def draw_boxes(image: np.ndarray, layers: list[tuple[np.ndarray, tuple[int, int, int], list[str] | None]],
               *, width: int = 3):
    """The scene as a Pillow image with each layer's boxes drawn in its colour, labelled when given."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(canvas)
    for boxes, colour, labels in layers:
        for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes).reshape(-1, 4).tolist()):
            draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=colour, width=width)
            if labels:
                draw.text((x0 + 2, max(y0 - 12, 0)), labels[i], fill=colour)
    return canvas


def save_png(image, path: Path) -> Path:
    """Save a Pillow image or an (H, W, 3) uint8 array as PNG."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    path = Path(path)
    image.save(path, format="PNG")
    return path
