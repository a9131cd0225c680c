"""A team's client against a live server: `ships download` and `ships submit`, each beside its baseline.

Set-up: a workspace of the bundled chips (``ships init``, seed 0, or ``--workspace DIR``) with a
team and a quota large enough never to refuse, served by ``ships serve --no-track`` in a separate
process on 127.0.0.1 (so that the server does not share this process's GIL).  The archive is built
once before timing (its first ``/api/data/info``).  Every command runs in this process through
typer's CliRunner, as a team would run it minus the interpreter's start-up, ``--repeat`` times,
the variants taking turns (so that a change of the machine's load hits them alike); the medians
are printed.

1. Download, the 43 MB archive of the public data (4006 files):
   - plain fetch: ``httpx.stream("GET", URL/api/data)`` written to a file (what curl would do);
   - ``fetch_archive``: the fetch of ``ships download`` alone (stream, SHA-256, progress callback);
   - plain fetch + ``zipfile.ZipFile.extractall`` (curl then unzip: no check of any kind);
   - ``ships download --out DIR``, the whole command: info, fetch with the progress bar,
     SHA-256, every member checked, unpacked into a temporary folder renamed into place.
   Goal: at most 1.2x, the fetch against the plain fetch and the whole command against fetch +
   extractall (the same work without resume, hash, checks or atomicity).  The folder a timed run
   replaces is removed before the clock starts.
2. Submit, one valid file: ``ships submit FILE`` (``/api/me``, then the upload, scored and recorded
   by the server) against ``ships score FILE --workspace W --no-track`` on the same file.

    .venv/bin/python benchmarks/bench_client.py [--repeat 5] [--workspace DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_DOWNLOAD = 1.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(ws: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "ships", "serve", "--workspace", str(ws), "--port", str(port),
                             "--no-track"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/data/info", timeout=120).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def _medians_s(fns: dict, repeat: int, setup=None) -> dict:
    """Median seconds of each function, run in turn (round-robin) so that a change of load hits all alike."""
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            if setup is not None:
                setup()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _invoke(*args, env=None) -> str:
    from typer.testing import CliRunner

    from ships.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    if result.exit_code != 0:
        raise SystemExit(f"ships {' '.join(map(str, args))} failed: {result.output}")
    return result.output


def bench_download(url: str, tmp: Path, repeat: int) -> dict:
    import httpx

    from ships.fetch import Archive, fetch_archive
    from ships.remote import Client

    def plain():
        with httpx.stream("GET", f"{url}/api/data", timeout=60) as r, open(tmp / "plain.zip", "wb") as fh:
            for chunk in r.iter_raw():
                fh.write(chunk)

    def fetch_only():
        with Client(url) as client:
            fetch_archive(client, Archive.from_info(client.data_info(), url), tmp / "fetch.zip.part",
                          lambda done, total: None)

    def plain_and_unzip():
        plain()
        with zipfile.ZipFile(tmp / "plain.zip") as zf:
            zf.extractall(tmp / "unzipped")

    def command():
        _invoke("download", "--url", url, "--out", tmp / "data")

    def clean():
        for folder in ("data", "unzipped"):
            shutil.rmtree(tmp / folder, ignore_errors=True)
        (tmp / "fetch.zip.part").unlink(missing_ok=True)

    clean(), plain(), command()  # warm the page cache and the imports
    size = (tmp / "plain.zip").stat().st_size
    fns = {"plain": plain, "fetch": fetch_only, "unzip": plain_and_unzip, "command": command}
    return {"size": size, **_medians_s(fns, repeat, clean)}


def bench_submit(url: str, token: str, ws: Path, file: Path, repeat: int) -> dict:
    env = {"SHIPS_URL": url, "SHIPS_TOKEN": token, "SHIPS_WORKSPACE": None}
    _invoke("submit", file, env=env)  # warm
    fns = {"remote": lambda: _invoke("submit", file, "-m", "bench", env=env),
           "local": lambda: _invoke("score", file, "--workspace", ws, "--team", "bench-local", "--create", "--no-track")}
    return {**_medians_s(fns, repeat), "bytes": file.stat().st_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each measure (median)")
    parser.add_argument("--workspace", type=Path, help="an existing workspace to copy (default: ships init, seed 0)")
    args = parser.parse_args()
    for name in ("SHIPS_URL", "SHIPS_TOKEN", "SHIPS_WORKSPACE"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")  # no stored login of the machine's user
        ws = tmp / "ws"
        if args.workspace:
            shutil.copytree(args.workspace, ws)
        else:
            from competition.create import init_workspace

            init_workspace(ws, seed=0)
        _invoke("config", "set", "daily_quota", "10000", "--workspace", ws)
        token = _invoke("team", "add", "bench", "--workspace", ws, "--json").split('"token": "')[1].split('"')[0]
        file = ws / "public" / "sample_submission.csv"
        port = _free_port()
        server = _serve(ws, port)
        try:
            url = f"http://127.0.0.1:{port}"
            d = bench_download(url, tmp, args.repeat)
            s = bench_submit(url, token, ws, file, args.repeat)
        finally:
            server.terminate()
            server.wait(timeout=30)
    mb = d["size"] / 1e6
    print(f"download of {mb:.1f} MB, median of {args.repeat}:")
    print(f"  plain fetch (httpx to a file)    {d['plain']:.3f} s ({mb / d['plain']:.0f} MB/s)")
    print(f"  fetch_archive (hash, progress)   {d['fetch']:.3f} s ({d['fetch'] / d['plain']:.2f}x plain fetch; "
          f"goal {GOAL_DOWNLOAD}x)")
    print(f"  plain fetch + extractall         {d['unzip']:.3f} s")
    print(f"  ships download (whole command)   {d['command']:.3f} s ({d['command'] / d['unzip']:.2f}x fetch + "
          f"extractall; goal {GOAL_DOWNLOAD}x; {d['command'] / d['plain']:.2f}x plain fetch)")
    print(f"submit of sample_submission.csv ({s['bytes']:,} bytes), median of {args.repeat}:")
    print(f"  ships submit (server)            {s['remote']:.3f} s ({s['remote'] / s['local']:.2f}x local)")
    print(f"  ships score --workspace          {s['local']:.3f} s")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
