"""CPU cost of reading and validating the worst submission files up to the size limit.

Goal: any file up to the size limit (``max_upload_bytes``, 5 000 000 bytes by default) is
refused or validated in under 1 s of CPU.  Each case below is a file of at most that size,
written to a temporary folder and put through the path of ``ships validate``
(``read_submission_file`` then ``validate_submission`` against 790 test ids, the size of
the real test set).  Each time is the CPU time (``time.process_time``, all threads of this
process) of the best of ``--repeat`` runs; the ratio is that time over the 1 s goal.  The
longest message of each case is printed with its length, to show that it stays bounded.

Run::

    .venv/bin/python benchmarks/bench_parse.py [--repeat 3] [--limit 5000000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from competition.errors import SubmissionError  # noqa: E402
from competition.submission import read_submission_file  # noqa: E402
from competition.validation import validate_submission  # noqa: E402

GOAL_S = 1.0
IDS = [hashlib.sha256(str(k).encode()).hexdigest()[:12] for k in range(790)]


def fill(head: bytes, unit: bytes, limit: int, tail: bytes = b"") -> bytes:
    """``head`` then ``unit`` repeated up to ``limit`` bytes in all, then ``tail``."""
    return head + unit * ((limit - len(head) - len(tail)) // len(unit)) + tail


def distinct_rows(template: str, limit: int) -> bytes:
    """Rows ``template % k`` for k = 0, 1, ... up to ``limit`` bytes."""
    rows, size, k = [b"id,ship\n"], 8, 0
    while True:
        row = (template % k).encode()
        if size + len(row) > limit:
            return b"".join(rows)
        rows.append(row)
        size += len(row)
        k += 1


def distinct_header(limit: int) -> bytes:
    """A header ``id,ship,0,1,2,...`` of ``limit`` bytes at most."""
    names, size, k = [b"id,ship"], 7, 0
    while size + len(str(k)) + 1 <= limit:
        names.append(str(k).encode())
        size += len(names[-1]) + 1
        k += 1
    return b",".join(names)


def valid_padded(limit: int) -> bytes:
    """A valid file grown to the limit: one row per test id, each probability written with many digits."""
    digits = (limit - 8) // len(IDS) - 17
    return b"id,ship\n" + b"".join(f"{i},0.{k % 10}{'3' * digits}\n".encode() for k, i in enumerate(IDS))


def cases(limit: int) -> list[tuple[str, Callable[[], bytes]]]:
    """(what, maker of the file's bytes), every file at most ``limit`` bytes."""
    first = IDS[0].encode()
    return [
        ("valid, 790 rows (a normal file)", lambda: ("id,ship\n" + "".join(f"{i},0.{k % 9973:04d}\n" for k, i in
                                                                            enumerate(IDS))).encode()),
        ("valid, padded to the limit (long numbers)", lambda: valid_padded(limit)),
        ("valid rows, spaces and blank lines to the limit", lambda: fill(b"id,ship\n" + b"".join(
            f"  {i} ,  0.5  \n".encode() for i in IDS), b"   \n", limit)),
        ("header of many columns (id,ship,x,x,...)", lambda: fill(b"id,ship", b",x", limit)),
        ("header of many distinct columns", lambda: distinct_header(limit)),
        ("one row of many fields", lambda: fill(b"id,ship\n", b",", limit)),
        ("rows of four fields", lambda: fill(b"id,ship\n", b",,,\n", limit)),
        ("newlines only (\\n)", lambda: fill(b"id,ship\n", b"\n", limit)),
        ("carriage returns only (\\r)", lambda: fill(b"id,ship\r", b"\r", limit)),
        ("CRLF only", lambda: fill(b"id,ship\r\n", b"\r\n", limit)),
        ("rows of one comma (blank id and value)", lambda: fill(b"id,ship\n", b",\n", limit)),
        ("rows of one field", lambda: fill(b"id,ship\n", b"a\n", limit)),
        ("one valid id repeated on every row", lambda: fill(b"id,ship\n", first + b",0.5\n", limit)),
        ("distinct unknown ids", lambda: distinct_rows("%x,0.5\n", limit)),
        ("distinct values that are not numbers", lambda: distinct_rows("a,x%d\n", limit)),
        ("huge numbers (1e999)", lambda: fill(b"id,ship\n", first + b",1e999\n", limit)),
        ("one id of 5 MB", lambda: fill(b"id,ship\n", b"x", limit, b",0.5\n")),
        ("one number of 5 MB", lambda: fill(b"id,ship\n" + first + b",0.", b"0", limit, b"1\n")),
        ("every field quoted", lambda: fill(b"id,ship\n", b'"","a"\n', limit)),
        ("one quoted field of doubled quotes", lambda: fill(b'id,ship\n"', b'""', limit, b'",0\n')),
        ("quotes only, one never closed", lambda: b"id,ship\n" + b'"' * ((limit - 8) // 2 * 2 - 1)),
        ("a stray quote on every row", lambda: fill(b"id,ship\n", b'a"b,0.5\n', limit)),
        ("control characters in every value", lambda: fill(b"id,ship\n", first + b",\x1b[31m\n", limit)),
    ]


def run(path: Path, limit: int) -> str:
    """Read and validate ``path`` as ``ships validate`` does; the outcome in words."""
    try:
        validate_submission(read_submission_file(path, max_bytes=limit), IDS)
    except SubmissionError as exc:
        return str(exc)
    return "valid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best CPU time is kept")
    parser.add_argument("--limit", type=int, default=5_000_000, help="the size limit in bytes")
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"limit {args.limit:,} bytes, {len(IDS)} test ids, best of {args.repeat} runs, CPU time\n")
    print("| case | bytes | CPU s | / 1 s goal | outcome | message chars |\n|---|---|---|---|---|---|")
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for what, make in cases(args.limit):
            path = Path(folder) / "submission.csv"
            data = make()
            assert len(data) <= args.limit, what
            path.write_bytes(data)
            best = float("inf")
            for _ in range(args.repeat):
                start = time.process_time()
                outcome = run(path, args.limit)
                best = min(best, time.process_time() - start)
            worst = max(worst, best)
            first = outcome.split("\n")[0].split(": ", 1)[-1]
            shown = "valid" if outcome == "valid" else "refused: " + first[:60].replace("|", "/") + "..."
            print(f"| {what} | {len(data):,} | {best:.3f} | {best / GOAL_S:.2f}x | {shown} | {len(outcome):,} |")
    print(f"\nworst case: {worst:.3f} s of CPU = {worst / GOAL_S:.2f}x the 1 s goal "
          f"({'met' if worst < GOAL_S else 'NOT met'})")


if __name__ == "__main__":
    main()
