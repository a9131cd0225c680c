"""The competition workspace, opened for reading: ``ships init`` (:mod:`competition.create`) writes it.

Layout (the contract of DESIGN.md)::

    WORKSPACE/ships.toml  public/{train,test,folds,sample_submission}.csv  public/{train,test}/ID.png
               private/solution.csv  submissions/  leaderboard.db  mlflow.db

Before any score, :meth:`Workspace.load_solution` checks the locks written at init: the
SHA-256 of private/solution.csv, of public/test.csv and of the scoring settings.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from competition.config import Config, read_config, scoring_sha256
from competition.errors import WorkspaceError
from competition.public import PublicData, TestData, TrainData
from competition.rules import Rules

__all__ = ["TrainData", "TestData", "Solution", "Workspace", "LockError", "sha256_file"]


class LockError(WorkspaceError):
    """A file or setting that scoring depends on changed since ``ships init``: scoring is refused.

    The message is for the organiser (it names the file); a team is told only that scoring is
    unavailable.
    """


@dataclass(frozen=True)
class Solution:
    """The private answer key, in test.csv order."""

    ids: np.ndarray
    y_true: np.ndarray
    usage: np.ndarray
    groups: np.ndarray


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Workspace:
    """An initialised competition workspace (use :meth:`open` or :func:`init_workspace`)."""

    def __init__(self, root: Path, config: Config):
        self.root = Path(root)
        self.config = config
        self._solution: Solution | None = None  # parsed once, returned while the locks hold

    @classmethod
    def open(cls, root: Path) -> "Workspace":
        """Open a workspace written by ``ships init``.

        Raises
        ------
        WorkspaceError
            If the folder or one of its files is missing, or ships.toml is unreadable.
        """
        root = Path(root)
        toml = root / "ships.toml"
        if not root.is_dir():
            raise WorkspaceError(f"{root}: no such workspace; create one with `ships init --workspace {root}`")
        if not toml.is_file():
            raise WorkspaceError(f"{root}: not a workspace (no ships.toml); create one with `ships init --workspace {root}`")
        ws = cls(root, read_config(toml))
        missing = [p for p in ws._required_files() if not p.exists()]
        if missing:
            raise WorkspaceError(
                f"{root}: incomplete workspace, missing {', '.join(str(p.relative_to(root)) for p in missing)}; "
                f"re-create it with `ships init --workspace {root} --force`"
            )
        return ws

    def _required_files(self) -> list[Path]:
        p = self.public_dir
        return [p / "train.csv", p / "test.csv", p / "folds.csv", p / "sample_submission.csv", self.solution_path]

    @property
    def public_dir(self) -> Path:
        return self.root / "public"

    @property
    def private_dir(self) -> Path:
        return self.root / "private"

    @property
    def solution_path(self) -> Path:
        return self.private_dir / "solution.csv"

    @property
    def submissions_dir(self) -> Path:
        return self.root / "submissions"

    @property
    def store_url(self) -> str:
        """SQLAlchemy URL of the leaderboard store (the workspace's SQLite file by default)."""
        return self.config.store_url or f"sqlite:///{(self.root / 'leaderboard.db').resolve()}"

    @property
    def tracking_uri(self) -> str:
        """Default MLflow tracking URI: the workspace's own SQLite store."""
        return f"sqlite:///{(self.root / 'mlflow.db').resolve()}"

    @property
    def split_hash(self) -> str:
        return self.config.split_hash

    @cached_property
    def rules(self) -> Rules:
        """The competition's rules, from ships.toml."""
        return Rules.from_config(self.config)

    def test_ids(self) -> np.ndarray:
        """The test ids, in test.csv order."""
        return _read_ids(self._read_bytes(self.public_dir / "test.csv"))

    def check_locks(self, test_csv: bytes | None = None, solution_csv: bytes | None = None) -> None:
        """Refuse to score if the solution, the test ids or the scoring settings changed since init.

        Raises
        ------
        LockError
            Naming what changed and the fix (for the organiser).
        """
        test_csv = self._read_bytes(self.public_dir / "test.csv") if test_csv is None else test_csv
        solution_csv = self._read_bytes(self.solution_path) if solution_csv is None else solution_csv
        checks = ((self.solution_path, solution_csv, self.config.solution_sha256),
                  (self.public_dir / "test.csv", test_csv, self.config.test_sha256))
        for path, data, expected in checks:
            if hashlib.sha256(data).hexdigest() != expected:
                raise LockError(f"{path}: changed since `ships init`; scoring refused. Restore the original "
                                "file, or start a new competition with `ships init --force`")
        if scoring_sha256(self.config) != self.config.scoring_sha256:
            raise LockError(f"{self.root / 'ships.toml'}: the scoring settings (metric, n_bootstrap, seed) were "
                            "edited by hand; scoring refused. Restore them, then change them with "
                            "`ships config set KEY VALUE` (which re-locks them)")

    @cached_property
    def _public(self) -> PublicData:
        """The reader of public/, shared with a team's copy of it (:mod:`competition.public`)."""
        return PublicData(self.public_dir, fix="re-create the workspace with `ships init --force`", error=WorkspaceError)

    def load_train(self) -> TrainData:
        """Pixels, labels, groups and official folds of the training part (reads public/ only)."""
        return self._public.load_train()

    def load_test(self) -> TestData:
        """Pixels of the test part, no labels (reads public/ only)."""
        return self._public.load_test()

    def load_solution(self) -> Solution:
        """The private answer key, after :meth:`check_locks`.

        Raises
        ------
        LockError
            If the solution, public/test.csv or the scoring settings changed since ``ships init``.
        """
        test_csv, data = self._read_bytes(self.public_dir / "test.csv"), self._read_bytes(self.solution_path)
        self.check_locks(test_csv, data)
        # Both files are now the locked ones: what they parse to was parsed before (a server scores often).
        if self._solution is None:
            df = pd.read_csv(io.BytesIO(data), dtype={"id": str, "scene_id": str, "group": str})
            order = pd.Series(np.arange(len(df)), index=df["id"])
            df = df.iloc[order.reindex(_read_ids(test_csv)).to_numpy()]
            columns = {"ids": ("id", object), "y_true": ("ship", np.int64), "usage": ("Usage", object),
                       "groups": ("group", object)}
            arrays = {name: df[column].to_numpy(dtype=dtype) for name, (column, dtype) in columns.items()}
            for array in arrays.values():
                array.setflags(write=False)
            self._solution = Solution(**arrays)
        return self._solution

    def _read_bytes(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise WorkspaceError(f"{path}: missing; re-create the workspace with `ships init --force`") from exc


def _read_ids(test_csv: bytes) -> np.ndarray:
    """The ``id`` column of test.csv's bytes."""
    return pd.read_csv(io.BytesIO(test_csv), dtype={"id": str})["id"].to_numpy(dtype=object)
