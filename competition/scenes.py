"""Full scenes: reading them by content, and the paste-in test bed that measures the ship finder.

Scenes carry no box labels, so the ship finder is measured on a test bed: real ship chips
from a workspace's locked test part (read from the workspace, never recomputed; never seen
in training) and no-ship chips are pasted into a real
scene's open water at known positions, the detector runs on the result, and its detections
are matched against the pasted chips.  Detections elsewhere are counted apart, since the
real scenes hold real, unlabelled ships.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from competition.detect import CHIP_SIZE, Detections, box_iou, check_scene, check_scene_size, detect_scene
from competition.errors import DataError, ParameterError, WorkspaceError
from competition.limits import MAX_SCENE_PIXELS, check_scene_pixels, open_image

__all__ = [
    "read_scene",
    "check_scene_file",
    "HeldOutChips",
    "load_test_part",
    "find_water",
    "PastedScene",
    "paste_chips",
    "make_test_bed",
    "DetectionReport",
    "evaluate_detections",
    "evaluate_scene",
]

_NPY_MAGIC = b"\x93NUMPY"


def read_scene(path: Path, *, max_pixels: int = MAX_SCENE_PIXELS) -> np.ndarray:
    """Read a scene as an (H, W, 3) uint8 array, whatever its file name says.

    The format is sniffed from the bytes (Pillow), so JPEG data under a ``.png`` name
    reads fine; the alpha channel of RGBA scenes is dropped, grey and palette scenes
    become RGB.  A ``.npy`` file (any name) holding an (H, W, 3) uint8 array is
    memory-mapped, for scenes too large to decode into memory.

    Parameters
    ----------
    path : path
    max_pixels : int
        Largest image decoded, width times height (default 100 million: decoding takes about
        8 bytes per pixel).  Checked from the header before anything is decoded; ``.npy``
        scenes, which are memory-mapped, are not limited.

    Raises
    ------
    DataError
        If the file is missing, is not an image, is smaller than one 80x80 chip, or holds
        more than ``max_pixels`` pixels.
    """
    return _open_scene(Path(path), decode=True, max_pixels=max_pixels)


def check_scene_file(path: Path, *, max_pixels: int = MAX_SCENE_PIXELS) -> tuple[int, int]:
    """``(width, height)`` of a scene file, from its header only (cheap): the checks of :func:`read_scene`
    but for a damaged body, which only decoding finds."""
    image = _open_scene(Path(path), decode=False, max_pixels=max_pixels)
    return (image.shape[1], image.shape[0]) if isinstance(image, np.ndarray) else image


def _open_scene(path: Path, decode: bool, max_pixels: int):
    """The scene as an array (``decode``), or its ``(width, height)`` from the header of an image file."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected a scene image (PNG, JPEG, TIFF, ...)")
    with path.open("rb") as fh:
        is_npy = fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    if is_npy:
        try:
            image = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"{path}: not a readable .npy array ({exc}); expected an (H, W, 3) uint8 array") from exc
        try:
            return check_scene(image, str(path))
        except ParameterError as exc:
            raise DataError(str(exc)) from exc
    expected = "a scene in a format Pillow reads (PNG, JPEG, TIFF, ...) or an (H, W, 3) uint8 .npy array"
    with open_image(path, str(path), expected) as im:
        check_scene_size(*im.size, where=str(path))
        check_scene_pixels(*im.size, max_pixels=max_pixels, where=str(path))
        if not decode:
            return im.size
        try:
            return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable image ({exc}); expected {expected}") from exc


@dataclass(frozen=True)
class HeldOutChips:
    """The locked test part of a workspace with its labels: ``ids`` (n,), ``X`` (n, 80, 80, 3) uint8, ``y`` (n,)."""

    ids: np.ndarray
    X: np.ndarray
    y: np.ndarray


def load_test_part(ws) -> HeldOutChips:
    """The chips the test bed pastes: the workspace's locked test part, as ``ships init`` wrote it.

    Test ids and pixels come from ``public/`` (``Workspace.load_test``), labels from the
    organiser's ``private/solution.csv`` (``Workspace.load_solution``, which checks its
    SHA-256).  The split is read, never recomputed, so a model fitted on the workspace's
    train part never saw these chips, whatever the splitter does today.

    Raises
    ------
    WorkspaceError
        If a file is missing, the solution changed since ``ships init``, or it does not
        list the test ids of public/test.csv.
    """
    test = ws.load_test()
    solution = ws.load_solution()
    if not np.array_equal(np.asarray(solution.ids, dtype=object), np.asarray(test.ids, dtype=object)):
        raise WorkspaceError(f"{ws.solution_path}: does not list the test ids of {ws.public_dir / 'test.csv'} "
                             f"({len(solution.ids)} and {len(test.ids)} ids); re-create the workspace with "
                             f"`ships init --workspace {ws.root} --force`")
    return HeldOutChips(ids=test.ids, X=test.X, y=np.asarray(solution.y_true, dtype=np.int64))


def _box_stats(gray: np.ndarray, size: int, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard deviation of every ``size`` x ``size`` box on a grid of ``step`` (integral images)."""
    total = np.zeros((gray.shape[0] + 1, gray.shape[1] + 1))
    squares = np.zeros_like(total)
    np.cumsum(np.cumsum(gray, axis=0), axis=1, out=total[1:, 1:])
    np.cumsum(np.cumsum(gray * gray, axis=0), axis=1, out=squares[1:, 1:])
    ys, xs = np.meshgrid(np.arange(0, gray.shape[0] - size + 1, step),
                         np.arange(0, gray.shape[1] - size + 1, step), indexing="ij")

    def box(s):
        return s[ys + size, xs + size] - s[ys, xs + size] - s[ys + size, xs] + s[ys, xs]

    mean = box(total) / size**2
    std = np.sqrt(np.clip(box(squares) / size**2 - mean**2, 0, None))
    return ys.ravel(), xs.ravel(), mean.ravel(), std.ravel()


def find_water(image: np.ndarray, n: int, *, gap: int = 40, random_state: int = 0, where: str = "scene") -> np.ndarray:
    """Top-left corners ``(x, y)`` of ``n`` non-overlapping chip-sized spots of open water.

    Water is told by its flatness and darkness: the chip plus ``gap`` pixels around it
    must have a low standard deviation (close to the flattest of the scene, at most 8 grey
    levels) and a mean close to the darkest flat areas (not cloud or bare roofs).  Spots
    are at least ``gap`` pixels apart, at random positions (not aligned to any stride).

    Raises
    ------
    DataError
        If the scene has fewer than ``n`` such spots.
    """
    check_scene(image, where)
    if n < 0:
        raise ParameterError(f"n={n} is invalid; expected an int >= 0")
    gray = np.asarray(image, dtype=np.float32).mean(axis=2, dtype=np.float64)
    size = CHIP_SIZE + 2 * gap
    if min(gray.shape) < size:
        raise DataError(f"{where}: scene is {gray.shape[1]}x{gray.shape[0]} pixels; too small to hold a {size}x{size} "
                        "spot of water")
    ys, xs, mean, std = _box_stats(gray, size, step=4)
    flat = std <= min(8.0, 1.6 * np.percentile(std, 5))
    water = flat & (mean <= np.percentile(mean[flat], 5) + 25.0)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(np.flatnonzero(water))
    jitter = rng.integers(0, 4, size=(len(order), 2))
    chosen: list[tuple[int, int]] = []
    for k, j in zip(order, jitter):
        x, y = int(xs[k] + gap + j[0]), int(ys[k] + gap + j[1])
        if all(abs(x - cx) >= CHIP_SIZE + gap or abs(y - cy) >= CHIP_SIZE + gap for cx, cy in chosen):
            chosen.append((x, y))
            if len(chosen) == n:
                break
    if len(chosen) < n:
        raise DataError(f"{where}: found room for only {len(chosen)} chips in open water, asked for {n}; "
                        "paste fewer chips")
    return np.asarray(chosen, dtype=np.int64).reshape(-1, 2)


@dataclass(frozen=True)
class PastedScene:
    """A scene with chips pasted at known places: ``boxes`` (n, 4) x0, y0, x1, y1 and their labels ``y``."""

    image: np.ndarray
    boxes: np.ndarray
    y: np.ndarray


def paste_chips(image: np.ndarray, chips: np.ndarray, corners: np.ndarray, y: np.ndarray) -> PastedScene:
    """Copy of ``image`` with each 80x80 chip pasted with its top-left corner at ``corners[i] = (x, y)``."""
    out = np.array(image, dtype=np.uint8, copy=True)
    corners = np.asarray(corners, dtype=np.int64).reshape(-1, 2)
    for chip, (x, y0) in zip(chips, corners):
        out[y0: y0 + CHIP_SIZE, x: x + CHIP_SIZE] = chip
    boxes = np.concatenate([corners, corners + CHIP_SIZE], axis=1)
    return PastedScene(out, boxes, np.asarray(y, dtype=np.int64))


def make_test_bed(image: np.ndarray, X: np.ndarray, y: np.ndarray, *, n_ships: int = 20,
                  n_no_ships: int = 20, random_state: int = 0, where: str = "scene") -> PastedScene:
    """Paste ``n_ships`` random ship chips and ``n_no_ships`` no-ship chips of ``(X, y)`` into the scene's water."""
    rng = np.random.default_rng(random_state)
    y = np.asarray(y)
    picks = []
    for label, count in ((1, n_ships), (0, n_no_ships)):
        pool = np.flatnonzero(y == label)
        if count > len(pool):
            raise ParameterError(f"n={count} chips of label {label} asked for, but only {len(pool)} are available")
        picks.append(rng.choice(pool, size=count, replace=False))
    idx = np.concatenate(picks)
    corners = find_water(image, len(idx), random_state=random_state, where=where)
    return paste_chips(image, X[idx], corners, y[idx])


@dataclass(frozen=True)
class DetectionReport:
    """How the detections of a pasted scene match the pasted chips.

    ``recall`` = ships found / ships pasted; ``precision`` = ships found / detections on
    pasted chips (a second detection of one ship and any detection of a no-ship chip are
    false positives).  ``elsewhere`` counts detections off the pasted chips: real ships of
    the scene or false alarms, which the test bed cannot tell apart.
    """

    n_ships: int
    n_no_ships: int
    n_detections: int
    true_positives: int
    false_negatives: int
    false_positives: int
    duplicates: int
    no_ships_fired: int
    elsewhere: int
    recall: float
    precision: float
    f1: float

    def to_dict(self) -> dict:
        """Plain dict (for JSON)."""
        return asdict(self)


def evaluate_detections(boxes: np.ndarray, scores: np.ndarray, truth: np.ndarray, y: np.ndarray, *,
                        iou_threshold: float = 0.3) -> DetectionReport:
    """Match detections to pasted chips: IoU >= ``iou_threshold`` or the detection's centre inside the chip.

    Detections are taken best score first; each one goes to the matching pasted chip it overlaps
    most, and each ship counts once.
    """
    boxes, truth, y = np.asarray(boxes).reshape(-1, 4), np.asarray(truth).reshape(-1, 4), np.asarray(y)
    iou = box_iou(boxes, truth)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = ((cx[:, None] >= truth[None, :, 0]) & (cx[:, None] < truth[None, :, 2])
              & (cy[:, None] >= truth[None, :, 1]) & (cy[:, None] < truth[None, :, 3]))
    match = (iou >= iou_threshold) | inside
    found = np.zeros(len(truth), dtype=bool)
    tp = dup = fp = elsewhere = 0
    for d in np.argsort(-np.asarray(scores), kind="stable"):
        if not match[d].any():
            elsewhere += 1
            continue
        t = int(np.argmax(np.where(match[d], iou[d] + 1.0, -1.0)))
        if y[t] == 0:
            fp += 1
        elif found[t]:
            dup += 1
        else:
            tp += 1
        found[t] = True
    n_ships = int((y == 1).sum())
    recall = tp / n_ships if n_ships else 0.0
    precision = tp / (tp + dup + fp) if tp + dup + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return DetectionReport(n_ships, int((y == 0).sum()), len(boxes), tp, n_ships - tp, fp + dup, dup,
                           int((found & (y == 0)).sum()), elsewhere, recall, precision, f1)


def evaluate_scene(image: np.ndarray, model, X: np.ndarray, y: np.ndarray, *, n_ships: int = 20,
                   n_no_ships: int = 20, random_state: int = 0, match_iou: float = 0.3, where: str = "scene",
                   **detect_params) -> tuple[DetectionReport, PastedScene, Detections]:
    """Paste chips of ``(X, y)`` into the scene, run :func:`detect_scene` on it and match the detections.

    ``X, y`` must be chips the model never saw in training (the locked test part).
    ``detect_params`` go to :func:`detect_scene` (stride, threshold, iou_threshold, batch_size, progress).
    """
    pasted = make_test_bed(image, X, y, n_ships=n_ships, n_no_ships=n_no_ships, random_state=random_state,
                           where=where)
    detections = detect_scene(pasted.image, model, **detect_params)
    report = evaluate_detections(detections.boxes, detections.scores, pasted.boxes, pasted.y,
                                 iou_threshold=match_iou)
    return report, pasted, detections
