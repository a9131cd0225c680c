"""Bounded reading of files that come from outside: byte sizes, chip counts and image pixels.

The readers of chip data and scenes check every size before they read (a file's size on
disk, a zip member's declared size, an image's width and height from its header) and never
read past a limit even when a stated size lies, so that a zip bomb, a decompression bomb or
an endless file is refused with a :class:`~competition.errors.DataError` instead of taking
all the memory.
"""

from __future__ import annotations

import stat
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from competition.errors import DataError, ParameterError

__all__ = [
    "ReadLimits",
    "DEFAULT_LIMITS",
    "MAX_SCENE_PIXELS",
    "IMAGE_FORMATS",
    "format_bytes",
    "read_file",
    "read_member",
    "open_image",
    "check_scene_pixels",
]

MiB = 1 << 20
MAX_SCENE_PIXELS = 100_000_000
"""Largest scene image decoded (about 8 bytes of memory per pixel while decoding)."""

IMAGE_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP", "PPM")
"""Image formats the readers open (Pillow's names); others, such as EPS, which Pillow hands to
Ghostscript, are refused."""

_CHUNK = MiB


@dataclass(frozen=True)
class ReadLimits:
    """How much one read of chip data may take in.

    Attributes
    ----------
    max_bytes : int
        Bytes read from one source in all: ``shipsnet.json``, or every chip file of a folder
        or zip together.  Default 512 MiB; Kaggle's ``shipsnet.json`` is about 344 MB, its
        4000 PNG chips about 60 MB.
    max_file_bytes : int
        Bytes of one chip image file.  Default 1 MiB; a ShipsNet PNG chip is about 15 kB.
    max_chips : int
        Chips in one source.  Default 50,000 (ShipsNet has 4000), that is at most 0.96 GB of
        decoded pixels.
    """

    max_bytes: int = 512 * MiB
    max_file_bytes: int = MiB
    max_chips: int = 50_000

    def __post_init__(self):
        for name in ("max_bytes", "max_file_bytes", "max_chips"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name}={value!r} is invalid; expected an int >= 1")


DEFAULT_LIMITS = ReadLimits()


def format_bytes(n: int) -> str:
    """``n`` bytes as a short human figure (``'1.0 GB'``)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _too_big(where: str, found: str, limit: int, what: str) -> DataError:
    return DataError(f"{where}: {found}, more than the limit of {format_bytes(limit)} for {what}; "
                     "check that this is the file you meant (a zip bomb or a damaged file is refused)")


def read_file(path: Path, limit: int, where: str, what: str = "one file") -> bytes:
    """The bytes of the regular file ``path``, refused if it holds more than ``limit`` bytes.

    The size is checked before reading and the read stops at ``limit + 1`` bytes, so a file
    that grows while it is read is refused too.

    Raises
    ------
    DataError
        If ``path`` is not a regular file (a device, a pipe), cannot be read or is too big.
    """
    try:
        info = Path(path).stat()
        if not stat.S_ISREG(info.st_mode):
            raise DataError(f"{where}: not a regular file; expected a file of chip data, not a device, pipe or folder")
        if info.st_size > limit:
            raise _too_big(where, f"{format_bytes(info.st_size)} on disk", limit, what)
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise DataError(f"{where}: cannot be read ({exc.strerror or exc}); check the path and its permissions") from exc
    if len(data) > limit:
        raise _too_big(where, "it grew while it was read", limit, what)
    return data


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str, what: str = "one file") -> bytes:
    """The uncompressed bytes of one zip member, refused past ``limit`` bytes.

    The declared size is checked before anything is decompressed, and the member is
    decompressed in chunks that stop at ``limit + 1`` bytes whatever the header says.

    Raises
    ------
    DataError
        If the member is encrypted, declares or expands to more than ``limit`` bytes, or is
        damaged (bad CRC, truncated data, unknown compression).
    """
    if info.flag_bits & 0x1:
        raise DataError(f"{where}: the member is encrypted; expected a zip without a password (unzip it yourself first)")
    if info.file_size > limit:
        raise _too_big(where, f"the zip declares {format_bytes(info.file_size)} uncompressed "
                              f"({format_bytes(info.compress_size)} compressed)", limit, what)
    chunks, total = [], 0
    try:
        with zf.open(info) as fh:
            while total <= limit and (chunk := fh.read(min(_CHUNK, limit + 1 - total))):
                chunks.append(chunk)
                total += len(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, RuntimeError) as exc:
        raise DataError(f"{where}: damaged zip member ({exc}); download the zip again") from exc
    if total > limit:
        raise _too_big(where, f"it expands past the {format_bytes(info.file_size)} its header declares", limit, what)
    return b"".join(chunks)


def open_image(source, where: str, expected: str):
    """Open an image by its content (header only, nothing decoded yet), from a path or a file object.

    Pillow's decompression-bomb warning is silenced: callers check the size themselves, from
    the header, before they decode.  Pillow's decompression-bomb error (an image of more than
    twice ``Image.MAX_IMAGE_PIXELS``) becomes a :class:`DataError`.

    Raises
    ------
    DataError
        If the content is not an image in one of :data:`IMAGE_FORMATS`, or claims a size
        Pillow refuses; ``expected`` says what the file should have been.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(source, formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise DataError(f"{where}: the image header claims too many pixels ({exc}); expected {expected}") from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{where}: not a readable image ({exc}); expected {expected} "
                        f"in one of the formats {', '.join(IMAGE_FORMATS)}") from exc


def check_scene_pixels(width: int, height: int, max_pixels: int = MAX_SCENE_PIXELS, where: str = "scene") -> None:
    """Raise :class:`DataError` if a ``width`` x ``height`` scene image is more than ``max_pixels`` to decode.

    Raises
    ------
    ParameterError
        If ``max_pixels`` is not an int >= 1.
    DataError
        Naming the size, the limit and the ways round it.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ParameterError(f"max_pixels={max_pixels!r} is invalid; expected an int >= 1")
    if width * height > max_pixels:
        raise DataError(
            f"{where}: scene is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), more than the limit "
            f"of {max_pixels / 1e6:g} megapixels (decoding takes about 8 bytes per pixel); crop or downscale it, "
            "or save it as an (H, W, 3) uint8 .npy array, which is memory-mapped and not limited"
        )
