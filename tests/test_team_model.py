"""A team's own model: ``ships cv path/to/model.py`` on a team's downloaded folder or a workspace.

The model files are written under ``tmp_path``; the example is ``submissions/example_model.py``.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ships.cli import app as root

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "submissions" / "example_model.py"


@pytest.fixture(scope="module")
def small_workspace(chips, tmp_path_factory) -> Path:
    """A workspace of 600 real chips with 3 official folds, so that a CV takes seconds."""
    from competition.create import init_workspace
    from competition.data import Chips

    subset = np.arange(0, 4000, 6)[:600]
    small = Chips(*(getattr(chips, f)[subset] for f in ("X", "y", "scene_id", "lon", "lat", "name")))
    return init_workspace(tmp_path_factory.mktemp("small") / "ws", chips=small, seed=0, n_splits=3).root


@pytest.fixture
def team_folder(small_workspace, tmp_path) -> Path:
    """What a team downloads: a copy of the workspace's public/ folder, and nothing else."""
    folder = tmp_path / "download"
    shutil.copytree(small_workspace / "public", folder)
    return folder


def _model(tmp_path: Path, source: str, name: str = "model.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def _cv(*args: str) -> dict:
    result = runner.invoke(root, ["cv", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_example_model_on_a_team_folder(team_folder):
    """Official folds, every metric, intervals of whole groups, and MLflow runs in DIR/mlflow.db."""
    from mlflow import MlflowClient

    out = _cv(str(EXAMPLE), "--data", str(team_folder))
    (res,) = out["results"]
    n_train = len((team_folder / "train.csv").read_text().splitlines()) - 1
    assert out["model"] == "example_model.py" and out["n_chips"] == n_train
    assert res["official_folds"] is True and res["n_splits"] == 3
    assert res["splitter"] == "PredefinedSplit (official folds by acquisition day)"
    oof = res["out_of_fold"]
    assert oof["n"] == n_train and oof["n_groups"] > 20
    assert oof["roc_auc_low"] < oof["roc_auc"] < oof["roc_auc_high"] and oof["roc_auc"] > 0.85
    assert out["tracking_uri"] == f"sqlite:///{(team_folder / 'mlflow.db').resolve()}"
    parent = MlflowClient(out["tracking_uri"]).get_run(res["mlflow_run_id"])
    assert parent.data.tags["ships.model"] == "example_model.py" and parent.data.tags["ships.kind"] == "cv"
    assert parent.data.metrics["cv_oof_roc_auc"] == pytest.approx(oof["roc_auc"])
    assert parent.data.metrics["cv_oof_roc_auc_low"] == pytest.approx(oof["roc_auc_low"])
    assert parent.data.metrics["cv_roc_auc"] == pytest.approx(res["mean"]["roc_auc"])


def test_out_of_fold_figures_are_those_of_the_pooled_predictions(small_workspace):
    from baselines.resolve import resolve_factory
    from baselines.workflow import cross_validate_estimator
    from competition.scoring import score_predictions
    from competition.workspace import Workspace

    ws = Workspace.open(small_workspace)
    name, make = resolve_factory(str(EXAMPLE))
    result = cross_validate_estimator(ws, name, make).result
    train = ws.load_train()
    expected = score_predictions(train.y, result.y_proba, groups=train.groups, random_state=ws.config.seed)
    assert result.out_of_fold.to_dict() == expected.to_dict()


def test_a_team_folder_and_the_workspace_give_the_same_numbers(small_workspace, team_folder, tmp_path):
    on_folder = _cv(str(EXAMPLE), "--data", str(team_folder))["results"][0]
    on_workspace = _cv(str(EXAMPLE), "-w", str(small_workspace), "--tracking-uri",
                       f"sqlite:///{tmp_path / 'mlflow.db'}")["results"][0]
    assert on_folder["out_of_fold"] == on_workspace["out_of_fold"]
    for a, b in zip(on_folder["folds"], on_workspace["folds"], strict=True):
        assert {k: v for k, v in a.items() if not k.endswith("_time")} == \
            {k: v for k, v in b.items() if not k.endswith("_time")}


def test_parallel_folds_run_the_teams_code_without_its_file(team_folder):
    """Worker processes get the team's functions by value (the file is not importable by name)."""
    one = _cv(str(EXAMPLE), "--data", str(team_folder))["results"][0]
    two = _cv(str(EXAMPLE), "--data", str(team_folder), "--n-jobs", "2")["results"][0]
    assert one["out_of_fold"] == two["out_of_fold"]


def test_predict_test_writes_a_valid_submission(small_workspace, team_folder, tmp_path):
    out_file = tmp_path / "my_submission.csv"
    result = runner.invoke(root, ["cv", str(EXAMPLE), "--data", str(team_folder), "--predict-test", str(out_file)],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert f"Test predictions written to {out_file}" in result.output
    n_train = len((team_folder / "train.csv").read_text().splitlines()) - 1
    assert f"Out of fold, all {n_train} chips pooled: roc_auc" in result.output
    assert "resamples of whole groups" in result.output
    lines = out_file.read_text().splitlines()
    assert lines[0] == "id,ship"
    test_ids = (team_folder / "test.csv").read_text().split()[1:]
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(test_ids)
    checked = runner.invoke(root, ["validate", str(out_file), "-w", str(small_workspace)])
    assert checked.exit_code == 0, checked.output
    assert "valid" in checked.output


def test_parameters_reach_make_estimator(team_folder, tmp_path):
    from mlflow import MlflowClient

    model = _model(tmp_path, """
        from sklearn.dummy import DummyClassifier

        def make_estimator(random_state=0, strategy="prior"):
            return DummyClassifier(strategy=strategy, random_state=random_state)
        """)
    out = _cv(str(model), "--data", str(team_folder), "-p", "strategy=uniform")
    assert out["results"][0]["mean"]["log_loss"] == pytest.approx(np.log(2))
    run = MlflowClient(out["tracking_uri"]).get_run(out["results"][0]["mlflow_run_id"])
    assert run.data.params["estimator__strategy"] == "uniform" and run.data.params["source"] == str(model)
    result = runner.invoke(root, ["cv", str(model), "--data", str(team_folder), "-p", "bogus=1"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "make_estimator takes no parameter bogus; expected some of: strategy" in result.output


_DUMMY = "from sklearn.dummy import DummyClassifier\nimport numpy as np\n\n\n"

BAD_MODELS = [
    # (source of the model file, or None for no file; what the message says)
    (None, ["no such file; expected a Python file that defines a function make_estimator(random_state)"]),
    ("x = 1\n", ["model.py: defines no make_estimator; expected a function make_estimator(random_state)"]),
    ("def make_estimator(seed):\n    pass\n", ["make_estimator(seed) takes no random_state"]),
    ("import numpy\nnumpy.load('no_such_weights.npy')\n",
     ["your model raised FileNotFoundError while the file was run", 'model.py", line 2, in <module>',
      "no_such_weights.npy"]),
    ("def make_estimator(random_state=0)\n    return 1\n",
     ["your model raised SyntaxError while the file was run", "SyntaxError: expected ':'"]),
    ("def make_estimator(random_state=0):\n    return _helper()\n\n\ndef _helper():\n    raise ValueError('no GPU')\n",
     ["your model raised ValueError in make_estimator(random_state=0)", 'model.py", line 2, in make_estimator',
      'model.py", line 6, in _helper', "ValueError: no GPU"]),
    ("from sklearn.svm import SVC\n\n\ndef make_estimator(random_state=0):\n    return SVC\n",
     ["make_estimator(random_state=0) returned the class SVC, not an estimator; return an instance, e.g. SVC(...)"]),
    ("from sklearn.svm import LinearSVC\n\n\ndef make_estimator(random_state=0):\n    return LinearSVC()\n",
     ["make_estimator(random_state=0) returned LinearSVC, which has no predict_proba", "CalibratedClassifierCV"]),
    (_DUMMY + "class M(DummyClassifier):\n    def fit(self, X, y):\n        return self.fit_pixels(X)\n\n"
     "    def fit_pixels(self, X):\n        return np.log(X['red'])\n\n\ndef make_estimator(random_state=0):\n"
     "    return M()\n",
     ["your model raised IndexError in fit", 'model.py", line 7, in fit', 'model.py", line 10, in fit_pixels']),
    (_DUMMY + "class M(DummyClassifier):\n    def predict_proba(self, X):\n        raise MemoryError('too big')\n\n\n"
     "def make_estimator(random_state=0):\n    return M()\n",
     ["your model raised MemoryError in predict_proba", 'model.py", line 7, in predict_proba']),
    (_DUMMY + "class M(DummyClassifier):\n    def predict_proba(self, X):\n"
     "        return super().predict_proba(X)[:, 1]\n\n\n"
     "def make_estimator(random_state=0):\n    return M()\n",
     ["your model's predict_proba returned shape (", ",) for ", "chips; expected (", ", 2): column 0 the probability"]),
    (_DUMMY + "class M(DummyClassifier):\n    def predict_proba(self, X):\n        p = super().predict_proba(X)\n"
     "        p[2] = np.nan\n        return p\n\n\ndef make_estimator(random_state=0):\n    return M()\n",
     ["your model's predict_proba returned NaN or infinite values in 1 of", "(first: row 2, [nan, nan])"]),
    (_DUMMY + "class M(DummyClassifier):\n    def predict_proba(self, X):\n"
     "        return super().predict_proba(X) * 3\n\n\n"
     "def make_estimator(random_state=0):\n    return M()\n",
     ["your model's predict_proba returned values outside [0, 1] in", "expected probabilities"]),
]


@pytest.mark.parametrize("source, messages", BAD_MODELS)
def test_a_bad_model_file_exits_1_with_the_reason(team_folder, tmp_path, source, messages):
    path = tmp_path / "model.py"
    if source is not None:
        path.write_text(source)
    result = runner.invoke(root, ["cv", str(path), "--data", str(team_folder)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"Error: {path}" in result.output or f"Error: MODEL '{path}'" in result.output
    text = " ".join(result.output.split())
    for message in messages:
        assert " ".join(message.split()) in text, result.output
    assert "team_model.py" not in result.output and "competition/cv.py" not in result.output  # only the team's frames


@pytest.mark.parametrize("args, message", [
    (["cv", "mymodel"], "Error: unknown model 'mymodel'; expected one of: dummy, logreg, knn, xgboost, cnn, vgg16; "
                        "or the path of your own model file, a .py that defines make_estimator(random_state)"),
    (["cv", str(EXAMPLE), "--data", "{folder}", "-w", "{folder}"], "Error: --data and --workspace both given"),
    (["cv", str(EXAMPLE), "--data", "{folder}/nowhere"],
     "nowhere: no such folder; pass the folder your team downloaded with `ships download`"),
    (["cv", str(EXAMPLE), "--data", "{empty}"],
     "not a competition data folder, missing train.csv, folds.csv, test.csv"),
])
def test_bad_arguments_exit_1_with_the_reason(team_folder, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.format(folder=team_folder, empty=tmp_path / "empty") for a in args]
    result = runner.invoke(root, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert message in " ".join(result.output.split())


def test_the_grouping_of_a_team_folder_is_read_from_train_csv(team_folder):
    from competition.errors import DataError
    from competition.public import PublicData

    assert PublicData.open(team_folder).group_by == "date"
    train_csv = team_folder / "train.csv"
    lines = train_csv.read_text().splitlines()
    header = lines[0].split(",")
    scene, group = header.index("scene_id"), header.index("group")
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        row[group] = row[scene]
    train_csv.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    assert PublicData.open(team_folder).group_by == "scene"
    rows[0][group] = "elsewhere"
    train_csv.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    with pytest.raises(DataError, match="the 'group' column is neither the acquisition day"):
        PublicData.open(team_folder).group_by


def test_check_proba_accepts_probabilities_only():
    from baselines.team_model import check_proba
    from competition.errors import ModelError

    ok = check_proba([[0.25, 0.75], [1.0, 0.0]], 2, "m.py")
    assert ok.dtype == np.float64 and ok.tolist() == [[0.25, 0.75], [1.0, 0.0]]
    for bad, message in [([[0.5, 0.5]], "shape (1, 2) for 2 chips"), ([["a", "b"], ["c", "d"]], "not numbers"),
                         ([[0.5, np.inf], [0.5, 0.5]], "NaN or infinite"),
                         ([[-0.1, 1.1], [0.5, 0.5]], "outside [0, 1]")]:
        with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            check_proba(bad, 2, "m.py")


def test_ships_detect_takes_a_team_model_file(small_workspace):
    from baselines.resolve import resolve_model
    from baselines.team_model import TeamEstimator

    estimator, where = resolve_model(str(EXAMPLE), workspace=small_workspace)
    assert isinstance(estimator, TeamEstimator) and "fitted on the train chips" in where
    proba = estimator.predict_proba(np.zeros((4, 80, 80, 3), dtype=np.uint8))
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1)
