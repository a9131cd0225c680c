"""The ship finder: slide a chip classifier over a full scene and turn its heat map into boxes.

Every 80x80 window at the stride is a *view* of the scene (numpy stride tricks), never a
copy; windows are scored in batches and only one batch is copied at a time, so memory stays
bounded whatever the size of the scene (a memory-mapped ``.npy`` scene included).  Windows
scoring at least ``threshold`` become boxes; overlapping boxes are merged by greedy
non-maximum suppression.  :mod:`competition.detect_output` writes them out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from competition.errors import DataError, ModelError, ParameterError

__all__ = [
    "CHIP_SIZE",
    "Detections",
    "check_scene",
    "check_scene_size",
    "make_windows",
    "score_windows",
    "boxes_from_heatmap",
    "box_iou",
    "non_max_suppression",
    "check_detect_params",
    "detect_scene",
]

CHIP_SIZE = 80


@dataclass(frozen=True)
class Detections:
    """What the ship finder found in one scene.

    Attributes
    ----------
    boxes : ndarray of shape (n, 4), int64
        ``x0, y0, x1, y1`` in pixels (x right, y down; ``x1``/``y1`` exclusive), best score first.
    scores : ndarray of shape (n,), float64
        Probability of ship of each box.
    heatmap : ndarray of shape (n_rows, n_cols), float32
        ``heatmap[r, c]`` is the probability of ship of the window whose top-left corner is
        ``(x, y) = (c * stride, r * stride)``.
    stride : int
    image_shape : tuple (height, width)
    """

    boxes: np.ndarray
    scores: np.ndarray
    heatmap: np.ndarray
    stride: int
    image_shape: tuple[int, int]

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def n_windows(self) -> int:
        """Number of windows scored."""
        return int(self.heatmap.size)

    def to_records(self) -> list[dict]:
        """One dict per box: id, x0, y0, x1, y1, x_center, y_center, score."""
        return [
            {"id": i, "x0": int(b[0]), "y0": int(b[1]), "x1": int(b[2]), "y1": int(b[3]),
             "x_center": (int(b[0]) + int(b[2])) / 2, "y_center": (int(b[1]) + int(b[3])) / 2,
             "score": round(float(s), 6)}
            for i, (b, s) in enumerate(zip(self.boxes, self.scores))
        ]


def check_scene(image: np.ndarray, where: str = "scene") -> np.ndarray:
    """Check that ``image`` is an (H, W, 3) uint8 array at least one chip in size.

    Raises
    ------
    ParameterError
        If it is not an (H, W, 3) uint8 array.
    DataError
        If it is smaller than a chip (both sizes in the message).
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        found = f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}".strip()
        raise ParameterError(f"{where}: expected an (H, W, 3) uint8 RGB array, got {found}")
    check_scene_size(image.shape[1], image.shape[0], where)
    return image


def check_scene_size(width: int, height: int, where: str = "scene") -> None:
    """Raise :class:`DataError` (with both sizes) if a ``width`` x ``height`` scene is smaller than one chip."""
    if height < CHIP_SIZE or width < CHIP_SIZE:
        raise DataError(
            f"{where}: scene is {width}x{height} pixels, smaller than one {CHIP_SIZE}x{CHIP_SIZE} chip; "
            f"expected a scene at least {CHIP_SIZE}x{CHIP_SIZE} pixels"
        )


def _check_int(name: str, value: int, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ParameterError(f"{name}={value!r} is invalid; expected an int >= {low}")
    return int(value)


def _check_fraction(name: str, value: float, low_open: bool) -> float:
    ok = (0.0 < value <= 1.0) if low_open else (0.0 <= value <= 1.0)
    if not ok:
        span = "(0, 1]" if low_open else "[0, 1]"
        raise ParameterError(f"{name}={value!r} is invalid; expected a number in {span}")
    return float(value)


def make_windows(image: np.ndarray, stride: int) -> np.ndarray:
    """Every 80x80 window at ``stride`` as a read-only view of ``image`` (nothing is copied).

    Returns
    -------
    ndarray of shape (n_rows, n_cols, 80, 80, 3)
        ``windows[r, c]`` is ``image[r*stride : r*stride+80, c*stride : c*stride+80]``.
    """
    stride = _check_int("stride", stride)
    check_scene(image)
    view = np.lib.stride_tricks.sliding_window_view(image, (CHIP_SIZE, CHIP_SIZE, 3))
    return view[::stride, ::stride, 0]


def _ship_column(model) -> int:
    classes = getattr(model, "classes_", None)
    if classes is not None and 1 in list(classes):
        return list(classes).index(1)
    return 1


def _predict_ship(model, batch: np.ndarray, column: int) -> np.ndarray:
    """Probability of ship of each chip in ``batch``, with the output shape checked."""
    from sklearn.exceptions import NotFittedError

    try:
        proba = np.asarray(model.predict_proba(batch))
    except NotFittedError as exc:
        raise ModelError(f"model of type {type(model).__name__} is not fitted; fit it or load a saved one") from exc
    if proba.ndim != 2 or proba.shape[0] != len(batch) or proba.shape[1] < 2:
        raise ModelError(
            f"{type(model).__name__}.predict_proba returned shape {proba.shape} for {len(batch)} chips; "
            f"expected ({len(batch)}, 2)"
        )
    return proba[:, column]


def score_windows(
    windows: np.ndarray,
    model,
    *,
    batch_size: int = 1024,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Probability of ship of every window, scored ``batch_size`` windows at a time.

    Only the current batch is copied (fancy indexing of the view), so memory is
    ``batch_size`` chips plus what the model needs for them.

    Parameters
    ----------
    windows : ndarray of shape (n_rows, n_cols, 80, 80, 3)
        From :func:`make_windows`.
    model : object with ``predict_proba(X) -> (n, 2)``
    batch_size : int
    progress : callable ``(n_done, n_total)``, optional
        Called after every batch.

    Returns
    -------
    heatmap : ndarray of shape (n_rows, n_cols), float32
    """
    batch_size = _check_int("batch_size", batch_size)
    if not callable(getattr(model, "predict_proba", None)):
        raise ModelError(
            f"model of type {type(model).__name__} has no predict_proba; expected a fitted classifier "
            "with predict_proba(X) -> (n, 2), e.g. a baseline from baselines.registry.make_baseline"
        )
    n_rows, n_cols = windows.shape[:2]
    total = n_rows * n_cols
    heat = np.empty(total, dtype=np.float32)
    column = _ship_column(model)
    for start in range(0, total, batch_size):
        flat = np.arange(start, min(start + batch_size, total))
        batch = windows[flat // n_cols, flat % n_cols]  # the one copy: (b, 80, 80, 3)
        heat[flat] = _predict_ship(model, batch, column)
        if progress is not None:
            progress(int(flat[-1]) + 1, total)
    return heat.reshape(n_rows, n_cols)


def boxes_from_heatmap(heatmap: np.ndarray, stride: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (x0, y0, x1, y1) and scores of the windows whose probability is >= ``threshold``."""
    rows, cols = np.nonzero(heatmap >= threshold)
    x0, y0 = cols.astype(np.int64) * stride, rows.astype(np.int64) * stride
    boxes = np.stack([x0, y0, x0 + CHIP_SIZE, y0 + CHIP_SIZE], axis=1).reshape(-1, 4)
    return boxes, heatmap[rows, cols].astype(np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (n, 4) with every box of ``b`` (m, 4): shape (n, m)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.3) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, best score first.

    The best box is kept and every box overlapping it with IoU > ``iou_threshold`` is
    merged into it (dropped); repeat with the best remaining box.  Ties keep the
    earlier box.
    """
    _check_fraction("iou_threshold", iou_threshold, low_open=True)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        order = rest[box_iou(boxes[best], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def check_detect_params(*, stride: int, threshold: float, iou_threshold: float, batch_size: int) -> None:
    """Raise :class:`ParameterError`, naming the argument and its value, for a setting out of range."""
    _check_int("stride", stride)
    _check_int("batch_size", batch_size)
    _check_fraction("threshold", threshold, low_open=False)
    _check_fraction("iou_threshold", iou_threshold, low_open=True)


def detect_scene(
    image: np.ndarray,
    model,
    *,
    stride: int = 10,
    threshold: float = 0.9,
    iou_threshold: float = 0.3,
    batch_size: int = 1024,
    progress: Callable[[int, int], None] | None = None,
) -> Detections:
    """Find ships in a full scene with a chip classifier.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
        The scene (see :func:`competition.scenes.read_scene`); H and W at least 80.
    model : object with ``predict_proba(X) -> (n, 2)``
        A fitted chip classifier taking raw uint8 chips ``(n, 80, 80, 3)``; column 1
        (or the column of class 1 in ``classes_``) is the probability of ship.
    stride : int
        Step in pixels between windows (>= 1).
    threshold : float
        Windows scoring at least this become boxes, in [0, 1].
    iou_threshold : float
        Boxes overlapping a better one with IoU above this are merged into it, in (0, 1].
    batch_size : int
        Windows scored per call to ``predict_proba``.
    progress : callable ``(n_done, n_total)``, optional

    Returns
    -------
    Detections

    Raises
    ------
    ParameterError
        For a stride, batch size or threshold out of range, or an image that is not (H, W, 3) uint8.
    DataError
        If the scene is smaller than a chip.
    ModelError
        If the model has no ``predict_proba`` or returns the wrong shape.
    """
    check_detect_params(stride=stride, threshold=threshold, iou_threshold=iou_threshold, batch_size=batch_size)
    windows = make_windows(image, stride)
    heatmap = score_windows(windows, model, batch_size=batch_size, progress=progress)
    boxes, scores = boxes_from_heatmap(heatmap, stride, threshold)
    keep = non_max_suppression(boxes, scores, iou_threshold)
    return Detections(boxes[keep], scores[keep], heatmap, stride, (int(image.shape[0]), int(image.shape[1])))
