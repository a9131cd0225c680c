"""The ship finder: windows as views, batching, heat map, NMS, writers, scene reading, the test bed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from competition.detect import (
    CHIP_SIZE,
    box_iou,
    boxes_from_heatmap,
    detect_scene,
    make_windows,
    non_max_suppression,
    score_windows,
)
from competition.detect_output import draw_boxes, render_heatmap, save_png, write_detections_csv, write_detections_geojson
from competition.errors import DataError, ModelError, ParameterError, WorkspaceError
from competition.scenes import (
    evaluate_detections,
    evaluate_scene,
    find_water,
    load_test_part,
    make_test_bed,
    paste_chips,
    read_scene,
)

SCENE_CROP = Path(__file__).parent / "data" / "scene_crop.png"


class BrightModel:
    """P(ship) = the fraction of bright pixels of the chip; records every batch it is given."""

    def __init__(self):
        self.batches = []

    def predict_proba(self, X):
        self.batches.append((X.shape, X.dtype, X.flags["C_CONTIGUOUS"]))
        p = (X.mean(axis=3) > 127).mean(axis=(1, 2))
        return np.stack([1 - p, p], axis=1)


class MeanModel:
    """P(ship) = the mean pixel value / 255 (a value that is different for every window)."""

    def predict_proba(self, X):
        p = X.reshape(len(X), -1).mean(axis=1) / 255
        return np.stack([1 - p, p], axis=1)


def coded_scene(height: int, width: int) -> np.ndarray:
    """A scene whose pixels encode their own (y, x), so that any window tells where it was cut."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([y % 256, x % 256, (y // 256) * 16 + x // 256], axis=-1).astype(np.uint8)


def square_scene(corners, size=(300, 400)) -> np.ndarray:
    """A dark scene with one bright 80x80 square at each top-left corner (x, y)."""
    image = np.full((*size, 3), 20, dtype=np.uint8)
    for x, y in corners:
        image[y: y + CHIP_SIZE, x: x + CHIP_SIZE] = 230
    return image


# --- windows ------------------------------------------------------------------------------------

@pytest.mark.parametrize("height,width,stride", [(200, 300, 10), (80, 80, 1), (123, 97, 7), (400, 90, 80)])
def test_windows_are_views_at_the_right_places(height, width, stride):
    image = coded_scene(height, width)
    windows = make_windows(image, stride)
    n_rows, n_cols = (height - CHIP_SIZE) // stride + 1, (width - CHIP_SIZE) // stride + 1
    assert windows.shape == (n_rows, n_cols, CHIP_SIZE, CHIP_SIZE, 3)
    assert np.shares_memory(windows, image)
    assert not windows.flags["OWNDATA"] and not windows.flags["WRITEABLE"]
    for r in range(n_rows):
        for c in range(n_cols):
            np.testing.assert_array_equal(windows[r, c], image[r * stride: r * stride + 80, c * stride: c * stride + 80])


def test_heatmap_has_one_score_per_window_and_batches_are_bounded():
    image = coded_scene(190, 260)
    model = BrightModel()
    heat = score_windows(make_windows(image, 10), model, batch_size=7)
    assert heat.shape == (12, 19) and heat.dtype == np.float32
    n = heat.size
    assert [s[0] for s, _, _ in model.batches] == [7] * (n // 7) + ([n % 7] if n % 7 else [])
    assert all(shape[1:] == (80, 80, 3) and dtype == np.uint8 and contiguous for shape, dtype, contiguous in model.batches)
    np.testing.assert_array_equal(heat, score_windows(make_windows(image, 10), BrightModel(), batch_size=1024))


def test_heatmap_values_belong_to_their_windows():
    image = coded_scene(150, 170)
    heat = score_windows(make_windows(image, 9), MeanModel(), batch_size=5)
    for r in range(heat.shape[0]):
        for c in range(heat.shape[1]):
            expected = image[r * 9: r * 9 + 80, c * 9: c * 9 + 80].mean() / 255
            assert heat[r, c] == pytest.approx(expected, abs=1e-6)


def test_progress_is_reported_after_every_batch():
    calls = []
    detect_scene(coded_scene(100, 120), MeanModel(), stride=5, batch_size=10, progress=lambda d, t: calls.append((d, t)))
    total = 5 * 9
    assert calls == [(min(k, total), total) for k in range(10, total + 10, 10)]


def test_memory_mapped_scene_is_read_lazily_and_windows_stay_views(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, coded_scene(300, 500))
    image = read_scene(path)
    assert isinstance(image, np.memmap)
    assert np.shares_memory(make_windows(image, 10), image)
    det = detect_scene(image, MeanModel(), stride=20, threshold=1.0)
    assert det.heatmap.shape == (12, 22)


def test_peak_memory_follows_the_batch_not_the_scene(tmp_path):
    import tracemalloc

    np.save(tmp_path / "scene.npy", coded_scene(600, 600))
    scene = read_scene(tmp_path / "scene.npy")
    tracemalloc.start()
    det = detect_scene(scene, MeanModel(), stride=4, batch_size=64)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    all_windows = det.n_windows * CHIP_SIZE * CHIP_SIZE * 3
    assert all_windows > 300e6 and peak < 20e6, (peak, all_windows)


# --- boxes and non-maximum suppression ------------------------------------------------------------

def test_detect_scene_finds_each_square_once_at_its_place():
    corners = [(50, 40), (250, 170)]
    det = detect_scene(square_scene(corners), BrightModel(), stride=10, threshold=0.9)
    assert sorted(map(tuple, det.boxes.tolist())) == [(50, 40, 130, 120), (250, 170, 330, 250)]
    assert np.allclose(det.scores, 1.0)
    assert det.image_shape == (300, 400) and det.n_windows == 23 * 33


def test_find_ships_writes_the_four_outputs_and_summarises(tmp_path):
    from competition.finder import find_ships

    corners = [(50, 40), (250, 170)]
    params = {"stride": 10, "threshold": 0.9, "iou_threshold": 0.3, "batch_size": 64}
    calls = []
    summary = find_ships(square_scene(corners), BrightModel(), scene=Path("sq.png"), out=tmp_path, stem="sq",
                         params=params, progress=lambda done, total: calls.append(done))
    assert summary["n_detections"] == 2 and summary["n_windows"] == 23 * 33 and "evaluation" not in summary
    assert (summary["width"], summary["height"], summary["stride"]) == (400, 300, 10)
    assert sorted(Path(p).name for p in summary["outputs"].values()) == \
        ["sq.boxes.png", "sq.csv", "sq.geojson", "sq.heatmap.png"]
    assert all(Path(p).is_file() for p in summary["outputs"].values())
    assert json.loads((tmp_path / "sq.geojson").read_text())["scene"] == "sq.png"
    assert calls and calls[-1] == 23 * 33


def test_boxes_from_heatmap_maps_cells_to_pixels():
    heat = np.zeros((4, 5), dtype=np.float32)
    heat[1, 3], heat[2, 0] = 0.95, 0.5
    boxes, scores = boxes_from_heatmap(heat, stride=12, threshold=0.5)
    assert boxes.tolist() == [[36, 12, 116, 92], [0, 24, 80, 104]]
    assert scores.tolist() == pytest.approx([0.95, 0.5])
    assert boxes_from_heatmap(heat, 12, 0.99)[0].shape == (0, 4)


def test_box_iou_against_hand_computed_values():
    a = np.array([[0, 0, 80, 80]])
    b = np.array([[0, 0, 80, 80], [40, 0, 120, 80], [80, 80, 160, 160], [10, 10, 90, 90]])
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 3200 / 9600, 0.0, 4900 / 7900])


def test_nms_merges_overlapping_boxes_and_keeps_separate_ones():
    boxes = np.array([[0, 0, 80, 80], [10, 0, 90, 80], [0, 10, 80, 90], [200, 200, 280, 280], [205, 195, 285, 275]])
    scores = np.array([0.91, 0.99, 0.95, 0.92, 0.97])
    keep = non_max_suppression(boxes, scores, iou_threshold=0.3)
    assert keep.tolist() == [1, 4]
    # boxes 40 px apart overlap with IoU 1/3: merged at 0.3, kept apart at 0.5
    two = np.array([[0, 0, 80, 80], [40, 0, 120, 80]])
    assert non_max_suppression(two, np.array([0.9, 0.8]), 0.3).tolist() == [0]
    assert non_max_suppression(two, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert non_max_suppression(np.zeros((0, 4)), np.zeros(0)).tolist() == []


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({"stride": 0}, "stride=0 is invalid; expected an int >= 1"),
    ({"stride": -5}, "stride=-5 is invalid; expected an int >= 1"),
    ({"stride": 2.5}, "stride=2.5 is invalid; expected an int >= 1"),
    ({"batch_size": 0}, "batch_size=0 is invalid; expected an int >= 1"),
    ({"threshold": 1.5}, "threshold=1.5 is invalid; expected a number in [0, 1]"),
    ({"iou_threshold": 0.0}, "iou_threshold=0.0 is invalid; expected a number in (0, 1]"),
])
def test_bad_parameters_name_the_argument_and_value(kwargs, message):
    with pytest.raises(ParameterError) as err:
        detect_scene(coded_scene(100, 100), MeanModel(), **kwargs)
    assert str(err.value) == message


def test_model_without_predict_proba_is_a_model_error_naming_its_type():
    from sklearn.svm import LinearSVC

    with pytest.raises(ModelError, match=r"model of type LinearSVC has no predict_proba; expected a fitted classifier"):
        detect_scene(coded_scene(100, 100), LinearSVC())


def test_unfitted_model_and_wrong_output_shape_are_model_errors():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ModelError, match="model of type LogisticRegression is not fitted"):
        detect_scene(coded_scene(100, 100), LogisticRegression())

    class OneColumn:
        def predict_proba(self, X):
            return np.zeros((len(X), 1))

    with pytest.raises(ModelError, match=r"OneColumn.predict_proba returned shape \(9, 1\) for 9 chips; expected \(9, 2\)"):
        detect_scene(coded_scene(100, 100), OneColumn(), stride=10)


@pytest.mark.parametrize("image,message", [
    (np.zeros((79, 300, 3), np.uint8), "scene: scene is 300x79 pixels, smaller than one 80x80 chip"),
    (np.zeros((100, 100), np.uint8), r"scene: expected an \(H, W, 3\) uint8 RGB array, got ndarray \(100, 100\) uint8"),
    (np.zeros((100, 100, 3), np.float32), "got ndarray .* float32"),
])
def test_bad_images(image, message):
    with pytest.raises((DataError, ParameterError), match=message):
        detect_scene(image, MeanModel())


# --- reading scenes by content ------------------------------------------------------------------

def test_jpeg_bytes_with_a_png_name_read_by_content(tmp_path):
    image = read_scene(SCENE_CROP)
    assert SCENE_CROP.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, despite the name
    assert image.shape == (700, 1000, 3) and image.dtype == np.uint8
    path = tmp_path / "made.png"
    Image.fromarray(coded_scene(90, 120)).save(path, format="JPEG", quality=95)
    assert read_scene(path).shape == (90, 120, 3)


def test_bundled_demo_scene_is_jpeg_under_a_png_name():
    from competition.data import bundled_data_dir

    path = bundled_data_dir().parent / "scenes" / "scene_2.png"
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    assert read_scene(path).shape == (1749, 2001, 3)


def test_rgba_scene_drops_alpha_and_grey_scene_becomes_rgb(tmp_path):
    rgb = coded_scene(100, 130)
    alpha = np.full((100, 130, 1), 7, np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_scene(tmp_path / "rgba.png"), rgb)
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "grey.tif")
    np.testing.assert_array_equal(read_scene(tmp_path / "grey.tif"), np.repeat(rgb[:, :, :1], 3, axis=2))


def test_bad_scene_files_name_the_file(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    with pytest.raises(DataError, match=r"notes.png: not a readable image \(.*\); expected a scene"):
        read_scene(text)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((60, 50, 3), np.uint8)).save(small)
    with pytest.raises(DataError, match=r"small.png: scene is 50x60 pixels, smaller than one 80x80 chip"):
        read_scene(small)
    with pytest.raises(DataError, match=r"missing.png: no such file"):
        read_scene(tmp_path / "missing.png")
    np.save(tmp_path / "flat.npy", np.zeros((100, 100), np.float64))
    with pytest.raises(DataError, match=r"flat.npy: expected an \(H, W, 3\) uint8 RGB array"):
        read_scene(tmp_path / "flat.npy")
    np.save(tmp_path / "objects.npy", np.array([[["a"] * 3] * 90] * 90, dtype=object))
    with pytest.raises(DataError, match=r"objects.npy: not a readable .npy array"):
        read_scene(tmp_path / "objects.npy")


# --- writers ------------------------------------------------------------------------------------

def test_writers_produce_csv_geojson_and_pngs(tmp_path):
    det = detect_scene(square_scene([(50, 40), (250, 170)]), BrightModel(), stride=10, threshold=0.9)
    rows = list(csv.DictReader(write_detections_csv(det, tmp_path / "d.csv").open()))
    assert list(rows[0]) == ["id", "x0", "y0", "x1", "y1", "x_center", "y_center", "score"]
    assert {(r["x0"], r["y0"], r["x1"], r["y1"]) for r in rows} == {("50", "40", "130", "120"), ("250", "170", "330", "250")}
    doc = json.loads(write_detections_geojson(det, tmp_path / "d.geojson", scene="s.png").read_text())
    assert doc["type"] == "FeatureCollection" and (doc["width"], doc["height"]) == (400, 300)
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    assert doc["features"][0]["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 5
    assert doc["features"][0]["properties"]["score"] == pytest.approx(1.0)
    heat = render_heatmap(det)
    assert heat.shape == (300, 400, 3)
    assert heat[80, 90].tolist() == [255, 255, 255] and heat[5, 5].tolist() == [0, 0, 0]  # square centre / corner
    save_png(heat, tmp_path / "h.png")
    save_png(draw_boxes(square_scene([]), [(det.boxes, (255, 0, 0), ["a", "b"])]), tmp_path / "b.png")
    drawn = np.asarray(Image.open(tmp_path / "b.png"))
    assert drawn.shape == (300, 400, 3) and drawn[40, 90].tolist() == [255, 0, 0]  # top edge of the first box


# --- the paste-in test bed ----------------------------------------------------------------------

def test_find_water_picks_flat_dark_spots_apart():
    rng = np.random.default_rng(0)
    image = rng.integers(100, 255, size=(600, 800, 3), dtype=np.uint8)  # busy "land"
    image[:, :400] = 40 + rng.integers(0, 3, size=(600, 400, 3), dtype=np.uint8)  # flat dark "water"
    corners = find_water(image, 6, random_state=1)
    assert corners.shape == (6, 2)
    assert (corners[:, 0] + CHIP_SIZE <= 400 - 40).all()
    for i in range(6):
        for j in range(i):
            assert (np.abs(corners[i] - corners[j]) >= CHIP_SIZE + 40).any()
    with pytest.raises(DataError, match=r"scene: found room for only \d+ chips in open water, asked for 40"):
        find_water(image, 40)


def test_paste_chips_puts_pixels_at_known_boxes():
    image = np.zeros((300, 300, 3), np.uint8)
    chips = np.stack([np.full((80, 80, 3), 9, np.uint8), np.full((80, 80, 3), 200, np.uint8)])
    pasted = paste_chips(image, chips, np.array([[10, 20], [150, 160]]), np.array([1, 0]))
    assert pasted.boxes.tolist() == [[10, 20, 90, 100], [150, 160, 230, 240]]
    assert (pasted.image[20:100, 10:90] == 9).all() and (pasted.image[160:240, 150:230] == 200).all()
    assert (image == 0).all()  # the scene itself is untouched


def test_evaluate_detections_counts_hits_duplicates_decoys_and_elsewhere():
    truth = np.array([[0, 0, 80, 80], [200, 0, 280, 80], [400, 0, 480, 80]])
    y = np.array([1, 1, 0])
    boxes = np.array([
        [10, 10, 90, 90],     # ship 0 (IoU 0.62)
        [30, 0, 110, 80],     # ship 0 again, centre inside: a duplicate
        [420, 30, 500, 110],  # centre inside the no-ship chip: a false positive
        [600, 600, 680, 680],  # elsewhere
    ])
    report = evaluate_detections(boxes, np.array([0.99, 0.95, 0.9, 0.9]), truth, y)
    assert (report.true_positives, report.false_negatives, report.duplicates, report.false_positives) == (1, 1, 1, 2)
    assert (report.no_ships_fired, report.elsewhere, report.n_detections) == (1, 1, 4)
    assert report.recall == pytest.approx(0.5) and report.precision == pytest.approx(1 / 3)
    empty = evaluate_detections(np.zeros((0, 4)), np.zeros(0), truth, y)
    assert (empty.recall, empty.precision, empty.f1) == (0.0, 0.0, 0.0)


@pytest.fixture(scope="module")
def parts(real_workspace_path):
    """A workspace's train part and its locked test part with labels, both read from the workspace."""
    from competition.workspace import Workspace

    ws = Workspace.open(real_workspace_path)
    return ws.load_train(), load_test_part(ws)


def test_the_test_part_is_the_workspace_test_set_with_the_organiser_labels(real_workspace_path, parts):
    import pandas as pd

    from competition.workspace import Workspace

    ws = Workspace.open(real_workspace_path)
    train, test = parts
    np.testing.assert_array_equal(test.ids, ws.test_ids())
    np.testing.assert_array_equal(test.X, ws.load_test().X)
    solution = pd.read_csv(ws.solution_path, dtype={"id": str}).set_index("id")
    np.testing.assert_array_equal(test.y, solution.loc[test.ids, "ship"].to_numpy())
    assert 0 < test.y.sum() < len(test.y) and not set(test.ids) & set(train.ids)
    assert not set(solution["group"]) & set(train.groups)  # whole days held out


def test_the_test_part_is_read_never_recomputed(workspace, monkeypatch):
    """A changed splitter cannot move training chips into the test bed: the split is not recomputed."""
    import competition.split
    import competition.create

    def no_split(*args, **kwargs):
        raise AssertionError("the test bed recomputed the split")

    monkeypatch.setattr(competition.split, "make_split", no_split)
    monkeypatch.setattr(competition.create, "make_split", no_split)
    before = load_test_part(workspace)
    # the workspace itself is the truth: relabel one test chip in a rewritten workspace and it follows
    solution = workspace.solution_path
    lines = solution.read_text().splitlines()
    first_id, label = lines[1].split(",")[:2]
    lines[1] = ",".join([first_id, str(1 - int(label)), *lines[1].split(",")[2:]])
    solution.write_text("\n".join(lines) + "\n")
    from dataclasses import replace

    from competition.workspace import Workspace, sha256_file

    edited = Workspace(workspace.root, replace(workspace.config, solution_sha256=sha256_file(solution)))
    after = load_test_part(edited)
    k = list(after.ids).index(first_id)
    assert after.y[k] == 1 - before.y[k] and (np.delete(after.y, k) == np.delete(before.y, k)).all()


def test_a_changed_solution_is_refused(workspace):
    path = workspace.solution_path
    path.write_text(path.read_text().replace(",0,Public", ",1,Public", 1))
    with pytest.raises(WorkspaceError, match="changed since `ships init`; scoring refused"):
        load_test_part(workspace)


def _pooled(X):
    return np.asarray(X, np.float32).reshape(len(X), 10, 8, 10, 8, 3).mean(axis=(2, 4)).reshape(len(X), -1) / 255


def test_detects_pasted_test_part_ships_in_a_real_scene(parts):
    """A quickly trained k-NN on the train part finds real ships it never saw, pasted into real water."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    train, test = parts
    model = make_pipeline(FunctionTransformer(_pooled), StandardScaler(), KNeighborsClassifier(5))
    model.fit(train.X, train.y)
    scene = read_scene(SCENE_CROP)
    report, pasted, det = evaluate_scene(scene, model, test.X, test.y, n_ships=8, n_no_ships=8, random_state=0)
    assert pasted.y.tolist() == [1] * 8 + [0] * 8
    assert report.n_ships == 8 and report.recall >= 0.6, report
    assert report.precision >= 0.4, report
    # the same model on the scene without pasted chips finds fewer boxes
    assert len(detect_scene(scene, model)) < len(det)


def test_make_test_bed_is_reproducible(parts):
    _, test = parts
    scene = read_scene(SCENE_CROP)
    a = make_test_bed(scene, test.X, test.y, n_ships=3, n_no_ships=2, random_state=4)
    b = make_test_bed(scene, test.X, test.y, n_ships=3, n_no_ships=2, random_state=4)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.image, b.image)
    with pytest.raises(ParameterError, match="only 1 are available"):
        make_test_bed(scene, test.X[:2], np.array([1, 0]), n_ships=2, n_no_ships=0)


def test_check_scene_file_reads_the_header_only(tmp_path):
    from competition.scenes import check_scene_file

    assert check_scene_file(SCENE_CROP) == (1000, 700)
    np.save(tmp_path / "s.npy", coded_scene(90, 110))
    assert check_scene_file(tmp_path / "s.npy") == (110, 90)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(SCENE_CROP.read_bytes()[:5000])
    assert check_scene_file(truncated) == (1000, 700)  # the header is intact ...
    with pytest.raises(DataError, match=r"cut.png: not a readable image"):
        read_scene(truncated)  # ... the body is not
