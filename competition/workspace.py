"""The competition workspace: ``ships init`` writes it, everything else opens it.

Layout (the contract of DESIGN.md)::

    WORKSPACE/ships.toml  public/{train,test,folds,sample_submission}.csv  public/{train,test}/ID.png
               private/solution.csv  submissions/  leaderboard.db  mlflow.db
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import tomllib
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from competition.data import Chips, decode_png, load_bundled, make_groups
from competition.errors import WorkspaceError
from competition.split import make_split, make_ids

__all__ = ["Config", "TrainData", "TestData", "Solution", "Workspace", "init_workspace", "sha256_file"]

_LICENCE = """\
# ShipsNet chips: attribution and licence

The images under train/ and test/ are the chips of ShipsNet ("Ships in Satellite Imagery") by
R. Hammell, renamed to opaque ids. Imagery (c) Planet Labs, from Planet's Open California
programme, openly licensed under CC BY-SA 4.0; the data set is distributed under the same
licence: https://creativecommons.org/licenses/by-sa/4.0/

ShareAlike applies: anything derived from these chips and redistributed must carry CC BY-SA 4.0.
"""


@dataclass(frozen=True)
class Config:
    """The settings of one competition, stored in ``ships.toml``."""

    seed: int = 0
    test_size: float = 0.2
    public_fraction: float = 0.3
    group_by: str = "date"
    n_splits: int = 5
    metric: str = "roc_auc"
    daily_quota: int = 5
    deadline: str = ""
    n_bootstrap: int = 1000
    max_upload_bytes: int = 5_000_000
    store_url: str = ""
    data_sha256: str = ""
    solution_sha256: str = ""
    split_hash: str = ""


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
        try:
            raw = tomllib.loads(toml.read_text())
            config = Config(**{f.name: raw[f.name] for f in fields(Config) if f.name in raw})
        except (tomllib.TOMLDecodeError, TypeError, UnicodeDecodeError) as exc:
            raise WorkspaceError(f"{toml}: unreadable ({exc}); restore it or re-run `ships init --force`") from exc
        ws = cls(root, config)
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

    def test_ids(self) -> np.ndarray:
        """The test ids, in test.csv order."""
        return self._read_csv(self.public_dir / "test.csv")["id"].to_numpy(dtype=object)

    @cached_property
    def _train_frame(self) -> pd.DataFrame:
        train = self._read_csv(self.public_dir / "train.csv")
        folds = self._read_csv(self.public_dir / "folds.csv")
        return train.merge(folds, on="id", how="left", validate="one_to_one")

    def load_train(self) -> TrainData:
        """Pixels, labels, groups and official folds of the training part (reads public/ only)."""
        df = self._train_frame
        X = self._read_images("train", df["id"])
        return TrainData(
            ids=df["id"].to_numpy(dtype=object),
            X=X,
            y=df["label"].to_numpy(dtype=np.int64),
            groups=df["group"].to_numpy(dtype=object),
            scene_id=df["scene_id"].to_numpy(dtype=object),
            fold=df["fold"].to_numpy(dtype=np.int64),
        )

    def load_test(self) -> TestData:
        """Pixels of the test part, no labels (reads public/ only)."""
        ids = self.test_ids()
        return TestData(ids=ids, X=self._read_images("test", ids))

    def load_solution(self) -> Solution:
        """The private answer key, after checking its SHA-256 against ships.toml.

        Raises
        ------
        WorkspaceError
            If private/solution.csv changed since ``ships init``.
        """
        data = self.solution_path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.config.solution_sha256:
            raise WorkspaceError(
                f"{self.solution_path}: changed since init (SHA-256 {digest[:12]}..., expected "
                f"{self.config.solution_sha256[:12]}...); scoring refused. Restore the original file "
                "or start a new competition with `ships init --force`"
            )
        df = pd.read_csv(io.BytesIO(data), dtype={"id": str, "scene_id": str, "group": str})
        order = pd.Series(np.arange(len(df)), index=df["id"])
        df = df.iloc[order.reindex(self.test_ids()).to_numpy()]
        return Solution(
            ids=df["id"].to_numpy(dtype=object),
            y_true=df["ship"].to_numpy(dtype=np.int64),
            usage=df["Usage"].to_numpy(dtype=object),
            groups=df["group"].to_numpy(dtype=object),
        )

    def _read_csv(self, path: Path) -> pd.DataFrame:
        try:
            return pd.read_csv(path, dtype={"id": str, "scene_id": str, "group": str})
        except FileNotFoundError as exc:
            raise WorkspaceError(f"{path}: missing; re-create the workspace with `ships init --force`") from exc

    def _read_images(self, part: str, ids) -> np.ndarray:
        folder = self.public_dir / part
        try:
            return np.stack([decode_png((folder / f"{i}.png").read_bytes(), str(folder / f"{i}.png")) for i in ids])
        except FileNotFoundError as exc:
            raise WorkspaceError(f"{exc.filename}: missing image; re-create the workspace with `ships init --force`") from exc


def init_workspace(
    root: Path,
    *,
    chips: Chips | None = None,
    seed: int = 0,
    test_size: float = 0.2,
    public_fraction: float = 0.3,
    group_by: str = "date",
    n_splits: int = 5,
    daily_quota: int = 5,
    force: bool = False,
) -> Workspace:
    """Create a locked competition workspace from the chips (the bundled 4000 by default).

    The workspace is written to a temporary folder beside ``root`` and moved into
    place only when complete, so a failure never leaves a half-written one.

    Raises
    ------
    WorkspaceError
        If ``root`` exists and ``force`` is False.
    ParameterError
        For an invalid test size, public fraction, grouping or number of folds.
    """
    root = Path(root)
    if root.exists() and not force:
        raise WorkspaceError(f"{root}: already exists; pass --force to replace it (its submissions and scores are lost)")
    chips = load_bundled() if chips is None else chips
    groups = make_groups(chips.scene_id, group_by)
    split = make_split(chips.y, groups, test_size=test_size, public_fraction=public_fraction,
                       n_splits=n_splits, random_state=seed)
    data_sha256 = chips.data_hash()
    split_key = f"{data_sha256}:{seed}:{test_size}:{public_fraction}:{group_by}:{n_splits}"
    config = Config(seed=seed, test_size=test_size, public_fraction=public_fraction, group_by=group_by,
                    n_splits=n_splits, daily_quota=daily_quota, data_sha256=data_sha256,
                    split_hash=hashlib.sha256(split_key.encode()).hexdigest()[:12])
    ids = make_ids(chips.X, salt=split_key)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.init-", dir=root.parent))
    try:
        config = _write_workspace(tmp, chips, groups, split, ids, config)
        _swap_into_place(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Workspace(root, config)


def _write_workspace(tmp: Path, chips: Chips, groups, split, ids, config: Config) -> Config:
    public, private = tmp / "public", tmp / "private"
    for d in (public / "train", public / "test", private, tmp / "submissions"):
        d.mkdir(parents=True)
    meta = pd.DataFrame({"id": ids, "label": chips.y, "scene_id": chips.scene_id, "group": groups,
                         "lon": chips.lon, "lat": chips.lat, "fold": split.fold})
    train = meta[~split.is_test].sort_values("id")
    test = meta[split.is_test].assign(
        ship=chips.y[split.is_test], Usage=np.where(split.is_public[split.is_test], "Public", "Private")
    ).sort_values("id")
    _csv(train[["id", "label", "scene_id", "group", "lon", "lat"]], public / "train.csv")
    _csv(test[["id"]], public / "test.csv")
    _csv(train[["id", "fold"]], public / "folds.csv")
    prior = round(float(train["label"].mean()), 6)
    _csv(test[["id"]].assign(ship=prior), public / "sample_submission.csv")
    _csv(test[["id", "ship", "Usage", "scene_id", "group"]], private / "solution.csv")
    for part, frame in (("train", train), ("test", test)):
        for i in frame.index:
            _write_png(chips.X[i], public / part / f"{ids[i]}.png")
    (public / "LICENSE-DATA.md").write_text(_LICENCE)
    config = Config(**{**asdict(config), "solution_sha256": sha256_file(private / "solution.csv")})
    (tmp / "ships.toml").write_text(_to_toml(config))
    return config


def _swap_into_place(tmp: Path, root: Path) -> None:
    """Move the finished workspace to ``root``, replacing an old one only once the new one is complete."""
    if not root.exists():
        tmp.rename(root)
        return
    old = root.with_name(f".{root.name}.old-{tmp.name.rsplit('-', 1)[-1]}")
    root.rename(old)
    tmp.rename(root)
    shutil.rmtree(old, ignore_errors=True)


def _csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n", float_format="%.10g")


def _write_png(pixels: np.ndarray, path: Path) -> None:
    """Re-encode the pixels (drops any metadata of the original file)."""
    from PIL import Image

    Image.fromarray(pixels).save(path, format="PNG", compress_level=6)


def _to_toml(config: Config) -> str:
    lines = ["# ships competition settings; the SHA-256 lines lock the data and the solution."]
    for key, value in asdict(config).items():
        if isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"
