"""Peak memory and time of hostile inputs: zip bombs for `ships data import`, a PNG bomb for the scenes.

Every case runs in a process of its own; the figures are that process's peak resident memory
(``ru_maxrss`` from ``os.wait4``) and wall time, next to floor processes that only start the
CLI or import the same modules.  Cases (built small in a temporary folder by ``tests/hostile.py``):

- ``ships data import`` of a 1 MB zip whose shipsnet.json expands to 1 GiB (honest headers);
- the same zip with headers that declare 1000 bytes (a lying header);
- ``ships data import`` of a zip holding one "chip" of 13000x13000 1-bit pixels (20 kB);
- ``read_scene`` and ``ships detect`` (with a workspace, baseline logreg) on that PNG as a scene;
- with ``--real-json``: ``ships data import`` of the real 344 MB shipsnet.json, rebuilt from the
  bundled chips, for the memory an honest import takes.

Run::

    python benchmarks/bench_imports.py                       # this checkout
    python benchmarks/bench_imports.py --code /tmp/base      # another checkout (e.g. `git archive` of main)
    python benchmarks/bench_imports.py --real-json --timeout 120
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hostile import png_bomb, set_declared_size, write_zip_bomb  # noqa: E402  (tests/hostile.py)

CHIP_NAME = "1__20180708_180909_0f47__-122.3_37.7.png"


def measure(argv: list[str], code: Path, timeout: float) -> dict:
    """Run ``argv`` with ``code`` first on the path; its peak RSS (MB), wall time, exit code and last line.

    Linux carries a process's peak RSS across ``exec``, so a child reports at least this
    process's own peak: this process therefore imports nothing heavy (no numpy, no Pillow).
    """
    env = {**os.environ, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=code)
        deadline, killed = start + timeout, False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline and not killed:
                proc.kill()
                killed = True
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        lines = [line for line in log.read().decode(errors="replace").splitlines() if line.strip()]
    return {"peak_mb": usage.ru_maxrss / 1024, "seconds": time.perf_counter() - start,
            "exit": "killed at timeout" if killed else proc.returncode, "last_line": lines[-1][:160] if lines else ""}


def build_inputs(tmp: Path, real_json: bool, code: Path, timeout: float) -> dict[str, Path]:
    import zipfile

    bomb = write_zip_bomb(tmp / "bomb.zip", mib=1024)
    liar = write_zip_bomb(tmp / "liar.zip", mib=1024)
    set_declared_size(liar, 1000)
    png = tmp / "bomb.png"
    png.write_bytes(png_bomb(13000, 13000))
    with zipfile.ZipFile(tmp / "pngbomb.zip", "w") as zf:
        zf.writestr(f"shipsnet/{CHIP_NAME}", png.read_bytes())
    inputs = {"bomb.zip": bomb, "liar.zip": liar, "bomb.png": png, "pngbomb.zip": tmp / "pngbomb.zip"}
    script = ("import sys; from competition.create import init_workspace; init_workspace(sys.argv[1], seed=0)")
    subprocess.run([sys.executable, "-c", script, str(tmp / "ws")], check=True, cwd=code,
                   env={**os.environ, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}, timeout=timeout * 5)
    inputs["ws"] = tmp / "ws"
    if real_json:  # built in a process of its own: this one must stay small (see measure)
        script = ("import json, sys, numpy as np; from competition.data import load_bundled; c = load_bundled(); "
                  "doc = {'data': c.X.transpose(0, 3, 1, 2).reshape(len(c), -1).tolist(), 'labels': c.y.tolist(), "
                  "'locations': np.stack([c.lon, c.lat], axis=1).tolist(), 'scene_ids': list(c.scene_id)}; "
                  "open(sys.argv[1], 'w').write(json.dumps(doc))")
        subprocess.run([sys.executable, "-c", script, str(tmp / "shipsnet.json")], check=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=timeout * 5)
        inputs["shipsnet.json"] = tmp / "shipsnet.json"
    return inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=ROOT, help="Checkout whose code is measured (default: this one).")
    parser.add_argument("--timeout", type=float, default=90, help="Seconds before a case is killed.")
    parser.add_argument("--real-json", action="store_true", help="Also import the real 344 MB shipsnet.json.")
    args = parser.parse_args()
    py, code = sys.executable, args.code.resolve()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        inp = build_inputs(tmp, args.real_json, code, args.timeout)
        cases = {
            "floor: ships --help": [py, "-m", "ships", "--help"],
            "floor: import competition.scenes, PIL.Image": [py, "-c", "import competition.scenes, PIL.Image"],
            "ships data import bomb.zip (1 MB, 1 GiB inflated)": [py, "-m", "ships", "data", "import", str(inp["bomb.zip"]),
                                                                  "--out", str(tmp / "o1")],
            "ships data import liar.zip (declares 1000 bytes)": [py, "-m", "ships", "data", "import", str(inp["liar.zip"]),
                                                                 "--out", str(tmp / "o2")],
            "ships data import pngbomb.zip (13000x13000 chip)": [py, "-m", "ships", "data", "import",
                                                                 str(inp["pngbomb.zip"]), "--out", str(tmp / "o3")],
            "read_scene(bomb.png) (13000x13000, 20 kB)": [py, "-c", "import sys; from competition.scenes import read_scene; "
                                                          "print(read_scene(sys.argv[1]).shape)", str(inp["bomb.png"])],
            "ships detect bomb.png (workspace, logreg)": [py, "-m", "ships", "detect", str(inp["bomb.png"]),
                                                          "--workspace", str(inp["ws"]), "--out", str(tmp / "det")],
        }
        if "shipsnet.json" in inp:
            cases["ships data import shipsnet.json (real, 344 MB)"] = [py, "-m", "ships", "data", "import",
                                                                       str(inp["shipsnet.json"]), "--out", str(tmp / "o4")]
        print(f"code: {code}")
        print("| case | peak RSS | wall | exit | last line of output |\n|---|---|---|---|---|")
        for label, argv in cases.items():
            r = measure(argv, code, args.timeout)
            line = r["last_line"].replace(f"{tmp}/", "").replace("|", "/")
            print(f"| {label} | {r['peak_mb']:.0f} MB | {r['seconds']:.1f} s | {r['exit']} | {line} |", flush=True)


if __name__ == "__main__":
    main()
