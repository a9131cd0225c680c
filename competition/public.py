"""The public files of a competition, read from a folder: a workspace's ``public/`` or a team's copy of it.

What every team gets is a copy of the workspace's ``public/`` folder::

    DIR/train.csv    id, label, scene_id, group, lon, lat
    DIR/folds.csv    id, fold   (the official grouped CV folds of train)
    DIR/test.csv     id
    DIR/train/ID.png DIR/test/ID.png

:class:`PublicData` reads it into arrays; :class:`competition.workspace.Workspace` reads its own
``public/`` through the same class, so a team's folder and the organiser's workspace give the
same train and test arrays.  The folder holds no ships.toml: the grouping of the official folds
is read from train.csv (its ``group`` column is the acquisition day or the scene id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from competition.chip_files import decode_png
from competition.data import make_groups
from competition.errors import DataError

__all__ = ["TrainData", "TestData", "PublicData", "REQUIRED_FILES", "TEAM_FOLDER_FIX"]

REQUIRED_FILES = ("train.csv", "folds.csv", "test.csv")
TEAM_FOLDER_FIX = ("pass the folder your team downloaded with `ships download` (./shipsnet-data by default; a copy "
                   "of the workspace's public/: train.csv, folds.csv, test.csv, train/ and test/), or --workspace DIR "
                   "on the organiser's machine")


@dataclass(frozen=True)
class TrainData:
    """The public training part: ids, pixels, labels, groups, scene ids and official folds."""

    ids: np.ndarray
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    scene_id: np.ndarray
    fold: np.ndarray


@dataclass(frozen=True)
class TestData:
    """The public test part: ids and pixels, no labels."""

    ids: np.ndarray
    X: np.ndarray


class PublicData:
    """A folder of public competition files (use :meth:`open` for a team's folder).

    Parameters
    ----------
    root : path
        The folder holding train.csv, folds.csv, test.csv, train/ and test/.
    fix : str
        What to do when a file is missing, ending every such message.
    error : type, default=DataError
        The error raised for a missing file (a workspace raises ``WorkspaceError``).
    """

    def __init__(self, root: Path, *, fix: str = TEAM_FOLDER_FIX, error: type[Exception] = DataError):
        self.root = Path(root)
        self.fix = fix
        self.error = error

    @classmethod
    def open(cls, folder: Path) -> "PublicData":
        """A team's folder, checked for its three CSV files.

        Raises
        ------
        DataError
            If the folder or one of train.csv, folds.csv, test.csv is missing.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; {TEAM_FOLDER_FIX}")
        missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
        if missing:
            raise DataError(f"{folder}: not a competition data folder, missing {', '.join(missing)}; {TEAM_FOLDER_FIX}")
        return cls(folder)

    @property
    def public_dir(self) -> Path:
        """The folder itself (a workspace's public/ or a team's copy of it)."""
        return self.root

    @property
    def tracking_uri(self) -> str:
        """Default MLflow tracking URI of a team's folder: ``DIR/mlflow.db``."""
        return f"sqlite:///{(self.root / 'mlflow.db').resolve()}"

    @cached_property
    def split_hash(self) -> str:
        """Identity of the split seen from this folder: SHA-256 of train.csv, folds.csv and test.csv (12 hex)."""
        digest = hashlib.sha256()
        for name in REQUIRED_FILES:
            digest.update(self._read_bytes(self.root / name))
        return digest.hexdigest()[:12]

    @cached_property
    def group_by(self) -> str:
        """The grouping of the official folds, read from train.csv: ``date`` or ``scene``.

        Raises
        ------
        DataError
            If the ``group`` column is neither the acquisition day nor the scene id of each chip.
        """
        df = self._train_frame
        groups, scene_id = df["group"].to_numpy(dtype=object), df["scene_id"].to_numpy(dtype=object)
        for group_by in ("date", "scene"):
            if np.array_equal(groups, make_groups(scene_id, group_by)):
                return group_by
        raise DataError(f"{self.root / 'train.csv'}: the 'group' column is neither the acquisition day (the first 8 "
                        f"characters of scene_id) nor the scene id; {self.fix}")

    @cached_property
    def _train_frame(self) -> pd.DataFrame:
        train = self._read_csv(self.root / "train.csv")
        folds = self._read_csv(self.root / "folds.csv")
        return train.merge(folds, on="id", how="left", validate="one_to_one")

    def load_train(self) -> TrainData:
        """Pixels, labels, groups and official folds of the training part."""
        df = self._train_frame
        return TrainData(
            ids=df["id"].to_numpy(dtype=object),
            X=self._read_images("train", df["id"]),
            y=df["label"].to_numpy(dtype=np.int64),
            groups=df["group"].to_numpy(dtype=object),
            scene_id=df["scene_id"].to_numpy(dtype=object),
            fold=df["fold"].to_numpy(dtype=np.int64),
        )

    def test_ids(self) -> np.ndarray:
        """The test ids, in test.csv order."""
        return self._read_csv(self.root / "test.csv")["id"].to_numpy(dtype=object)

    def load_test(self) -> TestData:
        """Pixels of the test part, no labels."""
        ids = self.test_ids()
        return TestData(ids=ids, X=self._read_images("test", ids))

    def _read_bytes(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise self.error(f"{path}: missing; {self.fix}") from exc

    def _read_csv(self, path: Path) -> pd.DataFrame:
        try:
            return pd.read_csv(path, dtype={"id": str, "scene_id": str, "group": str})
        except FileNotFoundError as exc:
            raise self.error(f"{path}: missing; {self.fix}") from exc

    def _read_images(self, part: str, ids) -> np.ndarray:
        folder = self.root / part
        if len(ids) == 0:
            return np.empty((0, 80, 80, 3), dtype=np.uint8)
        try:
            return np.stack([decode_png((folder / f"{i}.png").read_bytes(), str(folder / f"{i}.png")) for i in ids])
        except FileNotFoundError as exc:
            raise self.error(f"{exc.filename}: missing image; {self.fix}") from exc
