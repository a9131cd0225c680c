"""Test helper: hostile files built small at test time (zip bombs, PNG bombs, lying headers).

Every builder streams what it writes, so that a member that expands to a gigabyte or an
image of 169 megapixels costs the test a few hundred kilobytes of memory and disk.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

MiB = 1 << 20


def write_zip_bomb(path: Path, member: str = "shipsnet.json", mib: int = 600) -> Path:
    """A zip whose one deflated member expands to ``mib`` MiB of zeros, with honest headers.

    Built from one compressed, fully flushed MiB of zeros repeated ``mib`` times (about 1 kB
    each), so building it decompresses nothing and holds one MiB at a time.
    """
    zeros = b"\0" * MiB
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    end = comp.flush()
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    size, packed = mib * MiB, len(block) * mib + len(end)
    name = member.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, packed, size, len(name), 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, packed, size, len(name),
                          0, 0, 0, 0, 0, 0) + name
    with open(path, "wb") as fh:
        fh.write(local)
        for _ in range(mib):
            fh.write(block)
        fh.write(end)
        offset = fh.tell()
        fh.write(central)
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), offset, 0))
    return path


def set_declared_size(path: Path, size: int) -> None:
    """Rewrite the uncompressed size that the headers of a one-member zip declare (a lying header)."""
    data = bytearray(Path(path).read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, size)
    struct.pack_into("<I", data, central + 24, size)
    Path(path).write_bytes(bytes(data))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int, *, body: bool = True) -> bytes:
    """A 1-bit grey PNG of ``width`` x ``height`` zeros (13000x13000 is about 20 kB).

    With ``body=False`` the image data stops after the first row: the header still claims the
    full size, which is all a header check reads.
    """
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the packed bits
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(height if body else 1)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
