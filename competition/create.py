"""``ships init``: turn chips into a locked competition workspace (DESIGN.md's layout).

The split is a pure function of the data's hash, the seed and the settings; the workspace is
written to a temporary folder and moved into place only when complete; ships.toml records the
settings and the SHA-256 locks that every scoring checks.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from competition.config import Config, parse_config, scoring_sha256, write_config
from competition.data import Chips, load_bundled, make_groups
from competition.errors import ConfigError, ParameterError, WorkspaceError
from competition.split import SPLIT_ALGORITHM, make_ids, make_split
from competition.workspace import Workspace, sha256_file

__all__ = ["init_workspace"]

_DERIVED = ("data_sha256", "test_sha256", "solution_sha256", "scoring_sha256", "split_hash")

_LICENCE = """\
# ShipsNet chips: attribution and licence

The images under train/ and test/ are the chips of ShipsNet ("Ships in Satellite Imagery") by
R. Hammell, renamed to opaque ids. Imagery (c) Planet Labs, from Planet's Open California
programme, openly licensed under CC BY-SA 4.0; the data set is distributed under the same
licence: https://creativecommons.org/licenses/by-sa/4.0/

ShareAlike applies: anything derived from these chips and redistributed must carry CC BY-SA 4.0.
"""


def init_workspace(root: Path, *, chips: Chips | None = None, seed: int = 0, force: bool = False,
                   **settings) -> Workspace:
    """Create a locked competition workspace from the chips (the bundled 4000 by default).

    Parameters
    ----------
    root : path
    chips : Chips, optional
    seed : int
        Seed of the split (``ships init`` draws one at random when none is given).
    force : bool
        Replace an existing workspace (its submissions and scores are lost).
    **settings
        Any setting of :class:`competition.config.Config` (``test_size``, ``public_fraction``,
        ``group_by``, ``n_splits``, ``metric``, ``daily_quota``, ``deadline``, ...).

    The workspace is written to a temporary folder beside ``root`` and moved into
    place only when complete, so a failure never leaves a half-written one.

    Raises
    ------
    WorkspaceError
        If ``root`` exists and ``force`` is False.
    ParameterError
        For an unknown or invalid setting.
    """
    root = Path(root)
    config = _check_settings(seed, settings)
    if root.exists() and not force:
        raise WorkspaceError(f"{root}: already exists; pass --force to replace it (its submissions and scores are lost)")
    chips = load_bundled() if chips is None else chips
    groups = make_groups(chips.scene_id, config.group_by)
    split = make_split(chips.y, groups, test_size=config.test_size, public_fraction=config.public_fraction,
                       n_splits=config.n_splits, random_state=config.seed)
    split_key = (f"{chips.data_hash()}:{config.seed}:{config.test_size}:{config.public_fraction}:"
                 f"{config.group_by}:{config.n_splits}:{SPLIT_ALGORITHM}")
    config = replace(config, data_sha256=chips.data_hash(),
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


def _check_settings(seed: int, settings: dict) -> Config:
    """The settings as a validated Config; a bad one is a ParameterError naming the argument."""
    derived = [k for k in settings if k in _DERIVED]
    if derived:
        raise ParameterError(f"{derived[0]} is written by init itself; do not pass it")
    try:
        return parse_config({**settings, "seed": seed}, "init")
    except ConfigError as exc:
        raise ParameterError(str(exc).removeprefix("init: ")) from None


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
    config = replace(config, solution_sha256=sha256_file(private / "solution.csv"),
                     test_sha256=sha256_file(public / "test.csv"))
    config = replace(config, scoring_sha256=scoring_sha256(config))
    write_config(config, tmp / "ships.toml")
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
