"""The public data on a team's machine: a resumable, verified download and a safe, atomic unpack.

:func:`fetch_archive` streams ``GET /api/data`` into a ``.part`` file beside the target folder,
resuming a broken download with ``Range`` (and ``If-Range``, so that data changed on the server
starts over), and checks the size and SHA-256 that ``/api/data/info`` announced.
:func:`unpack_archive` extracts it into a temporary folder beside the target, refusing members
that would land outside it (absolute paths, ``..``, links) and sizes past :class:`UnpackLimits`,
checks the layout, then renames the folder into place: the target is complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

import httpx

from competition.errors import DataError
from competition.limits import format_bytes, read_member
from ships.remote import Client, RemoteError

__all__ = ["Archive", "UnpackLimits", "MARKER", "REQUIRED", "part_path", "read_marker", "fetch_archive",
           "unpack_archive"]

MARKER = ".ships-data.json"  # what was downloaded, from where, when: how 'ships download' knows a folder is current
REQUIRED = ("train.csv", "test.csv", "folds.csv", "sample_submission.csv")
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)


@dataclass(frozen=True)
class Archive:
    """The public data archive as ``GET /api/data/info`` describes it."""

    sha256: str
    size: int
    filename: str
    path: str = "/api/data"

    @classmethod
    def from_info(cls, info: dict, where: str) -> "Archive":
        """Read the server's answer, or RemoteError if a field is missing or malformed."""
        sha, size = info.get("sha256"), info.get("size")
        if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)) or not isinstance(size, int) or size < 0:
            raise RemoteError(f"{where}: expected sha256 (64 hex digits) and size (bytes), got "
                              f"{json.dumps({'sha256': sha, 'size': size})}; check that the server is up to date")
        path = info.get("url") or "/api/data"
        path = path if isinstance(path, str) and path.startswith("/") else "/api/data"
        return cls(sha, size, str(info.get("filename") or "shipsnet-data.zip"), path)


@dataclass(frozen=True)
class UnpackLimits:
    """Bounds of an archive a team will unpack (the real one: about 8000 files, 50 MB)."""

    max_members: int = 100_000
    max_member_bytes: int = 64 << 20
    max_total_bytes: int = 4 << 30


def part_path(out: Path) -> Path:
    """Where the download of ``out`` is kept while incomplete: ``OUT.zip.part`` beside it."""
    return out.with_name(out.name + ".zip.part")


def read_marker(out: Path) -> dict | None:
    """What ``out`` was unpacked from (sha256, url, size, downloaded_at), None if not a download."""
    try:
        data = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("sha256"), str) else None


def fetch_archive(client: Client, archive: Archive, part: Path, progress: Progress | None = None) -> Path:
    """Download the archive into ``part`` (resuming what it holds) and verify it; returns ``part``.

    Raises
    ------
    RemoteError
        If the server refuses or the connection breaks (``part`` is kept: run again to resume),
        or if the bytes do not match the announced size and SHA-256 (``part`` is removed).
    """
    progress = progress or (lambda done, total: None)
    with _disk(part):
        done = part.stat().st_size if part.exists() else 0
        if done > archive.size:
            part.unlink()
            done = 0
        digest = _hash_file(part) if done else hashlib.sha256()
        if done < archive.size:
            done, digest = _receive(client, archive, part, done, digest, progress)
    progress(done, archive.size)
    where = f"{client.url}{archive.path}"
    if done != archive.size or digest.hexdigest() != archive.sha256:
        part.unlink(missing_ok=True)
        found = f"{done:,} bytes" if done != archive.size else f"SHA-256 {digest.hexdigest()}"
        raise RemoteError(f"the download of {where} is corrupt: expected {archive.size:,} bytes with SHA-256 "
                          f"{archive.sha256}, got {found}; the partial file was removed, run 'ships download' "
                          "again (if it fails the same way, tell the organiser)")
    return part


def _receive(client: Client, archive: Archive, part: Path, done: int, digest, progress: Progress):
    """Stream the rest of the archive into ``part``; (bytes held, their running hash)."""
    headers = {"accept-encoding": "identity"}
    if done:
        headers.update({"range": f"bytes={done}-", "if-range": f'"{archive.sha256}"'})
    where = f"{client.url}{archive.path}"
    with client.stream(archive.path, headers=headers) as response:
        if response.status_code != 206 or not _resumes_at(response, done):
            done, digest = 0, hashlib.sha256()  # a full answer: the server's data changed, or no ranges
        progress(done, archive.size)
        with open(part, "ab" if done else "wb") as fh:
            try:
                for chunk in response.iter_raw():  # as they arrive: a cut loses nothing received
                    fh.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress(done, archive.size)
                    if done > archive.size:
                        break
            except httpx.HTTPError as exc:
                fh.flush()
                raise RemoteError(f"the download of {where} was interrupted after {format_bytes(done)} of "
                                  f"{format_bytes(archive.size)} ({type(exc).__name__}: {exc}); run "
                                  "'ships download' again to resume from there") from None
    return done, digest


def _resumes_at(response: httpx.Response, offset: int) -> bool:
    match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    return match is not None and int(match.group(1)) == offset


def _hash_file(path: Path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest


def unpack_archive(archive: Path, out: Path, *, marker: dict, replace: bool = False,
                   limits: UnpackLimits = UnpackLimits()) -> int:
    """Extract ``archive`` into the folder ``out`` atomically; returns the number of files.

    Parameters
    ----------
    marker : dict
        Written as ``out/.ships-data.json`` (sha256, url...), with the time of the download.
    replace : bool
        Replace an existing ``out``; without it an existing ``out`` is an error.

    Raises
    ------
    DataError
        If the archive is not a zip, holds a member that would land outside ``out`` (absolute
        path, ``..``, a link), exceeds ``limits``, or lacks the files of :data:`REQUIRED`.
        Nothing is left behind: ``out`` is untouched.
    """
    if out.exists() and not replace:
        raise DataError(f"{out} already exists; pass --force to replace it, or --out another folder")
    with _disk(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
        try:
            n_files = _extract(archive, tmp, limits, where=str(marker.get("url", archive)))
            (tmp / MARKER).write_text(json.dumps({**marker, "downloaded_at": datetime.now(timezone.utc).isoformat()},
                                                 indent=2), encoding="utf-8")
            _move_into_place(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return n_files


@contextmanager
def _disk(path: Path):
    """A file system error (no space, no permission) as a DataError naming the path."""
    try:
        yield
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc}); check the folder's permissions and the free "
                        "space, or pass --out another folder") from None


def _extract(archive: Path, dest: Path, limits: UnpackLimits, where: str) -> int:
    """Check every member, then write them under ``dest``; the number of files."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{where}: the downloaded archive is not a readable zip ({exc}); run 'ships download' "
                        "again, and tell the organiser if it happens again") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        _check_members(members, limits, where)
        total = 0
        for member in members:
            data = read_member(zf, member, limits.max_member_bytes, f"{where}: {member.filename}")
            total += len(data)
            if total > limits.max_total_bytes:
                raise DataError(f"{where}: the archive expands past {format_bytes(limits.max_total_bytes)}; "
                                "expected the ShipsNet public data (about 50 MB); tell the organiser")
            target = dest.joinpath(*PurePosixPath(member.filename).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as fh:
                fh.write(data)
    missing = [name for name in REQUIRED if not (dest / name).is_file()]
    if missing:
        raise DataError(f"{where}: the archive lacks {', '.join(missing)} at its root; expected the public data "
                        f"of a ships competition ({', '.join(REQUIRED)}, train/, test/); tell the organiser")
    return len(members)


def _check_members(members: list, limits: UnpackLimits, where: str) -> None:
    """Refuse the whole archive before writing anything if one member is unsafe."""
    if len(members) > limits.max_members:
        raise DataError(f"{where}: the archive holds {len(members):,} files; at most {limits.max_members:,} "
                        "expected; tell the organiser")
    seen: set[str] = set()
    for member in members:
        name = member.filename
        problem = _unsafe(name, member)
        if problem is None and name.lower() in seen:
            problem = "appears twice"
        if problem:
            raise DataError(f"{where}: archive member {name!r} {problem}; expected relative paths such as "
                            "'train/ID.png'; nothing was unpacked; tell the organiser")
        seen.add(name.lower())
        if member.file_size > limits.max_member_bytes:
            raise DataError(f"{where}: archive member {name!r} declares {format_bytes(member.file_size)}; at most "
                            f"{format_bytes(limits.max_member_bytes)} expected; nothing was unpacked")


def _unsafe(name: str, member: zipfile.ZipInfo) -> str | None:
    """Why a member's name or kind could write outside the target folder, or None."""
    if name.startswith("/") or _DRIVE.match(name):
        return "has an absolute path"
    if "\\" in name or "\x00" in name:
        return "has a backslash or NUL in its name"
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' path component"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "is a symbolic link"
    return None


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the complete folder ``tmp`` to ``out``, setting an older ``out`` aside first."""
    if not out.exists():
        os.rename(tmp, out)
        return
    old = out.with_name(f".{out.name}-old-{secrets.token_hex(4)}")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
