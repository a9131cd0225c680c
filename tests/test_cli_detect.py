"""`ships detect` end to end: outputs written, JSON, the test bed, and every bad input as `Error: ...`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from ships.cli import app as root
from competition.detect import box_iou
from competition.workspace import Workspace

SCENE_CROP = Path(__file__).parent / "data" / "scene_crop.png"
OUTPUTS = ("csv", "geojson", "heatmap.png", "boxes.png")

runner = CliRunner()


def _pooled(X):
    return np.asarray(X, np.float32).reshape(len(X), 10, 8, 10, 8, 3).mean(axis=(2, 4)).reshape(len(X), -1) / 255


@pytest.fixture(scope="module")
def model_path(real_workspace_path, tmp_path_factory) -> Path:
    """A k-NN fitted on the workspace's train part, saved as `ships baseline run --save` saves models."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from baselines.persist import save_model
    from competition.workspace import Workspace

    train = Workspace.open(real_workspace_path).load_train()
    model = make_pipeline(FunctionTransformer(_pooled), StandardScaler(), KNeighborsClassifier(5))
    model.fit(train.X, train.y)
    path = tmp_path_factory.mktemp("model") / "knn.joblib"
    save_model(model, path)
    return path


def test_detect_writes_table_geojson_heatmap_and_boxes(model_path, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(root, ["detect", str(SCENE_CROP), "--model", str(model_path), "--out", str(out),
                                  "--stride", "20", "-w", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    assert "scene_crop.png" in result.output and "1000x700" in result.output
    for suffix in OUTPUTS:
        assert (out / f"scene_crop.{suffix}").is_file(), suffix
    rows = list(csv.DictReader((out / "scene_crop.csv").open()))
    doc = json.loads((out / "scene_crop.geojson").read_text())
    assert len(rows) == len(doc["features"]) and doc["type"] == "FeatureCollection"
    assert Image.open(out / "scene_crop.boxes.png").size == (1000, 700)
    assert Image.open(out / "scene_crop.heatmap.png").size == (1000, 700)


def test_detect_json_lists_each_scene_and_its_boxes(model_path, tmp_path):
    scene2 = tmp_path / "other.jpg"
    Image.open(SCENE_CROP).crop((0, 0, 300, 200)).save(scene2)
    result = runner.invoke(root, ["detect", str(SCENE_CROP), str(scene2), "-m", str(model_path), "--json",
                                  "--stride", "20", "--threshold", "0", "--iou", "0.2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [Path(d["scene"]).name for d in doc] == ["scene_crop.png", "other.jpg"]
    first = doc[0]
    assert first["n_windows"] == ((700 - 80) // 20 + 1) * ((1000 - 80) // 20 + 1)
    assert first["n_detections"] == len(first["detections"]) > 0
    assert set(first["detections"][0]) == {"id", "x0", "y0", "x1", "y1", "x_center", "y_center", "score"}
    boxes = np.array([[d[k] for k in ("x0", "y0", "x1", "y1")] for d in first["detections"]])
    iou = box_iou(boxes, boxes)
    assert (iou[~np.eye(len(boxes), dtype=bool)] <= 0.2).all()  # every window kept apart by NMS at --iou 0.2
    assert "evaluation" not in first


def test_evaluate_pastes_test_part_chips_and_reports_recall(model_path, real_workspace_path, tmp_path):
    result = runner.invoke(root, ["detect", str(SCENE_CROP), "-m", str(model_path), "--evaluate", "--n-ships", "6",
                                  "--n-no-ships", "6", "--json", "--out", str(tmp_path / "o"),
                                  "-w", str(real_workspace_path)])
    assert result.exit_code == 0, result.output
    [doc] = json.loads(result.stdout)
    ev = doc["evaluation"]
    assert (ev["n_ships"], ev["n_no_ships"]) == (6, 6)
    assert ev["recall"] >= 0.5, ev
    assert (tmp_path / "o" / "scene_crop.pasted.boxes.png").is_file()
    table = runner.invoke(root, ["detect", str(SCENE_CROP), "-m", str(model_path), "--evaluate", "--n-ships", "2",
                                 "--n-no-ships", "2", "--stride", "20", "--out", str(tmp_path / "o"),
                                 "-w", str(real_workspace_path)], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "recall" in table.output and "elsewhere" in table.output and "scene_crop.png" in table.output
    n_test = len(Workspace.open(real_workspace_path).test_ids())
    assert f"the locked test part of {real_workspace_path} ({n_test} chips)" in " ".join(table.output.split())


def test_evaluate_pastes_the_chips_of_the_workspace_test_part(model_path, workspace, tmp_path, monkeypatch):
    """The pasted chips are the workspace's test chips, whatever the splitter would draw today."""
    import competition.scenes
    import competition.split

    def no_split(*args, **kwargs):
        raise AssertionError("ships detect --evaluate recomputed the split")

    monkeypatch.setattr(competition.split, "make_split", no_split)
    pasted = []
    real = competition.scenes.make_test_bed

    def spy(image, X, y, **kwargs):
        pasted.append((X, y))
        return real(image, X, y, **kwargs)

    monkeypatch.setattr(competition.scenes, "make_test_bed", spy)
    result = runner.invoke(root, ["detect", str(SCENE_CROP), "-m", str(model_path), "--evaluate", "--n-ships", "2",
                                  "--n-no-ships", "2", "--stride", "40", "--json", "--out", str(tmp_path / "o"),
                                  "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    [(X, y)] = pasted
    np.testing.assert_array_equal(X, workspace.load_test().X)
    np.testing.assert_array_equal(y, workspace.load_solution().y_true)


def test_evaluate_needs_a_workspace(model_path, tmp_path):
    """The test bed is the workspace's test part: no workspace, no test bed (and no made-up split)."""
    result = runner.invoke(root, ["detect", str(SCENE_CROP), "-m", str(model_path), "--evaluate",
                                  "--out", str(tmp_path / "o"), "-w", str(tmp_path / "none")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Error: " in result.output and "none: no such workspace; create one with `ships init" in result.output
    assert not (tmp_path / "o").exists()


def test_baseline_name_is_fitted_on_the_workspace_train_data(real_workspace_path, tmp_path):
    result = runner.invoke(root, ["detect", str(SCENE_CROP), "-m", "dummy", "-w", str(real_workspace_path),
                                  "--threshold", "0", "--stride", "40", "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [doc] = json.loads(result.stdout)
    assert doc["model"] == "dummy" and doc["n_detections"] > 0


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "notes.png").write_text("hello")
    Image.fromarray(np.zeros((50, 70, 3), np.uint8)).save(tmp_path / "small.png")
    return {"notes": tmp_path / "notes.png", "small": tmp_path / "small.png"}


@pytest.mark.parametrize("args,message", [
    (["{notes}"], "notes.png: not a readable image"),
    (["{small}"], "small.png: scene is 70x50 pixels, smaller than one 80x80 chip"),
    (["{scene}", "--stride", "0"], "stride=0 is invalid; expected an int >= 1"),
    (["{scene}", "--threshold", "2"], "threshold=2.0 is invalid; expected a number in [0, 1]"),
    (["{scene}", "--batch-size", "0"], "batch_size=0 is invalid; expected an int >= 1"),
    (["{scene}", "{notes}", "--stride", "5"], "notes.png: not a readable image"),
    (["{scene}"], "none: no such workspace; create one with `ships init"),  # the baseline needs one
    (["{scene}", "--model", "nosuch"], "--model 'nosuch' is neither a baseline name"),
])
def test_bad_input_is_an_error_message_and_exit_1(args, message, tmp_path):
    """Reported before any model is fitted: the workspace the model would need does not exist."""
    paths = {**_bad_inputs(tmp_path), "scene": SCENE_CROP}
    argv = ["detect", *(a.format(**paths) for a in args), "--out", str(tmp_path / "o"), "-w", str(tmp_path / "none")]
    if "--model" not in argv:
        argv += ["--model", "dummy"]
    result = runner.invoke(root, argv)
    assert result.exit_code == 1, result.output
    assert "Error: " in result.output and message in result.output, result.output


def test_model_without_predict_proba_is_refused(tmp_path):
    from sklearn.svm import LinearSVC

    from baselines.persist import save_model

    y = np.arange(40) % 2
    X = np.broadcast_to((y * 200 + 20).astype(np.uint8)[:, None, None, None], (40, 80, 80, 3))
    svc = LinearSVC(dual=False).fit(_pooled(X), y)  # dark chips 0, bright chips 1
    save_model(svc, tmp_path / "svc.joblib")
    result = runner.invoke(root, ["detect", str(SCENE_CROP), "-m", str(tmp_path / "svc.joblib"), "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "Error: model of type LinearSVC has no predict_proba" in result.output


def test_every_option_has_help():
    result = runner.invoke(root, ["detect", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    command = typer.main.get_command(root).commands["detect"]
    for param in command.params:
        assert param.help, param.name
    for flag in ("--model", "--stride", "--threshold", "--batch-size", "--out", "--json", "--evaluate", "--workspace"):
        assert flag in result.output


def test_model_from_an_mlflow_run(model_path, tmp_path):
    from baselines.persist import load_model
    from competition.tracking import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = Tracker(uri).log_baseline("knn", estimator=load_model(model_path))
    result = runner.invoke(root, ["detect", str(SCENE_CROP), "-m", f"runs:/{run_id}/model", "--tracking-uri", uri,
                                  "--stride", "40", "--json", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["n_windows"] == 16 * 24
    missing = runner.invoke(root, ["detect", str(SCENE_CROP), "-m", "runs:/0123456789abcdef/model",
                                   "--tracking-uri", uri, "--out", str(tmp_path / "o")])
    assert missing.exit_code == 1, missing.output
    assert "Error: runs:/0123456789abcdef/model: cannot load the MLflow model" in missing.output
