"""The public data as one archive for teams: a zip of ``public/`` and a README, built once per workspace.

The archive is deterministic (sorted members, fixed timestamps, no extra fields), so its
SHA-256 is the same every time it is built from the same workspace: the server can hand it out
with that hash as its ETag, and a team verifies what it downloaded against it.  It is built into
``WORKSPACE/cache/`` atomically and reused while the workspace's split and test ids stay the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PublicArchive", "build_public_archive", "TEAM_README"]

_EPOCH = (2000, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20

TEAM_README = """\
# ShipsNet challenge: your data

Find the ships in 80x80 satellite chips. This folder is everything a team gets; the labels of
the test chips stay with the organiser.

| file | what it holds |
|---|---|
| `train.csv` | one row per training chip: `id`, `label` (1 ship, 0 no ship), `scene_id`, `group` (the acquisition day, or the scene, that CV must keep whole), `lon`, `lat` |
| `train/ID.png` | the training chips, 80x80 RGB, named by their id |
| `folds.csv` | `id`, `fold`: the official cross-validation folds of the training chips, grouped by `group` and stratified by label |
| `test.csv` | `id`: the chips to predict |
| `test/ID.png` | the test chips |
| `sample_submission.csv` | a valid submission (`id,ship`, the prior probability for every chip) |
| `LICENSE-DATA.md` | the licence of the chips (CC BY-SA 4.0) and their attribution |

## Why cross-validation must keep acquisition days whole

The same ship appears in neighbouring chips of one scene (shifted by a pixel) and in
consecutive scenes of one satellite pass, and a third of the no-ship chips are shifted crops of
ship chips. A random split puts near-copies of a chip on both sides and overstates every score.
The test set is made of whole acquisition days that appear nowhere in `train.csv`, so only a
cross-validation that keeps each `group` whole tells you what the leaderboard will say: use the
official folds (`folds.csv`), or scikit-learn's `GroupKFold` / `StratifiedGroupKFold` with
`groups=train["group"]`. `ships cv your_model.py --data .` does it for you.

## Submitting

A CSV file, UTF-8, header `id,ship`, one row per test id in any order, `ship` the probability
that the chip holds a ship, in [0, 1]:

```
id,ship
005f0cdd78c6,0.93
00aee1490e37,0.02
```

`ships validate submission.csv` checks a file here, without the server and without spending a
submission; `ships submit submission.csv -m "what changed"` sends it. Before the competition is
finalized you see your Public score (part of the test set) rounded, with its 95% interval; the
final ranking uses the Private part, on the submissions you select with `ships select`.
"""


@dataclass(frozen=True)
class PublicArchive:
    """A built archive: its path, SHA-256, size in bytes and the file name to offer."""

    path: Path
    sha256: str
    size: int
    filename: str

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "size": self.size, "filename": self.filename}


def build_public_archive(ws) -> PublicArchive:
    """The public data of ``ws`` as a zip (built on first use, then reused).

    The cache key is the workspace's split hash and the SHA-256 of its test ids, so a new
    workspace in the same folder gets a new archive.
    """
    key = f"{ws.split_hash}-{ws.config.test_sha256[:12]}"
    folder = ws.root / "cache"
    path = folder / f"public-{key}.zip"
    meta = folder / f"public-{key}.json"
    filename = f"shipsnet-public-{ws.split_hash}.zip"
    if path.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        if info.get("size") == path.stat().st_size:
            return PublicArchive(path, info["sha256"], info["size"], filename)
    folder.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".public-", suffix=".zip")
    os.close(fd)
    try:
        _write_zip(ws.public_dir, Path(tmp))
        digest = _sha256(Path(tmp))
        size = Path(tmp).stat().st_size
        os.replace(tmp, path)
        meta.write_text(json.dumps({"sha256": digest, "size": size}))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return PublicArchive(path, digest, size, filename)


def _write_zip(public: Path, target: Path) -> None:
    """Every file of ``public/`` (sorted) and the team README, with fixed timestamps."""
    files = sorted(p for p in public.rglob("*") if p.is_file())
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        _add(zf, "README.md", TEAM_README.encode(), zipfile.ZIP_DEFLATED)
        for p in files:
            name = p.relative_to(public).as_posix()
            # PNGs are compressed already: storing them is as small and far faster.
            _add(zf, name, p.read_bytes(), zipfile.ZIP_STORED if p.suffix == ".png" else zipfile.ZIP_DEFLATED)


def _add(zf: zipfile.ZipFile, name: str, data: bytes, method: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = method
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
