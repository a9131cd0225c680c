"""Requests per second and p50/p99 latency of the web view under concurrent clients on 127.0.0.1.

Set-up: a workspace of the bundled chips whose store holds 1000 teams (and 3 baselines) and
20000 submissions with synthetic metric dicts, inserted through ``Store.add_team`` and
``Store.add_submission`` (into a copy of the store on /dev/shm when there is one, for speed,
then copied into the workspace).  The server is a separate process: uvicorn (one worker,
access log off) on ``make_app(workspace)``.  The load generator is a bounded asyncio HTTP/1.1
client in this process: ``--clients`` keep-alive connections, each sending its next request
as soon as the last answer is read, for ``--seconds`` per endpoint after a one-second warm-up,
with a hard time limit; any status other than the expected one is counted and reported.

Endpoints: ``GET /`` (the leaderboard page), ``GET /leaderboard.json`` (its JSON twin) and
``POST /api/submissions`` (valid files of random predictions, each from a random team whose
quota is large enough never to refuse).

Goals (2 cores): leaderboard page and JSON, p99 under 50 ms and over 500 requests/s; uploads
with two server processes (``--workers 1,2`` runs ``ships serve --workers N`` for each N), over
30 a second with p99 under 2 s.  The ratios printed are measured/goal for requests/s (above 1
meets it) and p99/goal (below 1 meets it).

    .venv/bin/python benchmarks/bench_web.py [--teams 1000] [--submissions 20000] [--clients 32]
        [--seconds 10] [--upload-seconds 20] [--revision-ttl 0.5] [--no-gzip] [--wrk] [--workspace DIR]
        [--workers 1,2]

``--wrk`` repeats the GET loads with wrk (``apt-get install wrk``), whose C client leaves
more of the two cores to the server than the Python one does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

GOAL_RPS, GOAL_P99_MS = 500.0, 50.0
GOAL_UPLOAD_RPS, GOAL_UPLOAD_P99_MS = 30.0, 2000.0  # with 2 server processes
SERVER = ("import sys, uvicorn; from competition.workspace import Workspace; from leaderboard.web import make_app; "
          "app = make_app(Workspace.open(sys.argv[1]), revision_ttl=float(sys.argv[3])); "
          "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[2]), log_level='warning', access_log=False)")
METRICS = ("roc_auc", "log_loss", "average_precision", "brier_loss", "accuracy", "precision", "recall", "f1")


def synthetic_metrics(rng: np.random.Generator, skill: float) -> dict:
    """A flat metric dict as scoring would produce it (values, intervals and a confusion matrix)."""
    out = {}
    for name in METRICS:
        v = float(np.clip(skill + rng.normal(0, 0.03), 0.01, 0.99))
        half = float(rng.uniform(0.03, 0.08))
        out.update({name: v, f"{name}_low": max(v - half, 0.0), f"{name}_high": min(v + half, 1.0)})
    out.update(tn=150, fp=28, fn=20, tp=39, n=237, n_positive=59, n_groups=30)
    return out


def populate(url: str, n_teams: int, n_submissions: int, split_hash: str) -> dict[str, str]:
    """Teams, baselines and submissions with synthetic scores; returns each team's token."""
    from competition.rules import Rules
    from leaderboard.store import Store

    rng = np.random.default_rng(0)
    start = datetime.now(timezone.utc) - timedelta(days=60)
    with Store.open(url, Rules(daily_quota=n_submissions)) as store:
        tokens = {f"team-{i:04d}": store.add_team(f"team-{i:04d}") for i in range(n_teams)}
        for name in ("dummy", "logistic regression", "xgboost"):
            store.ensure_team(name, kind="baseline")
        names, skill = list(tokens), rng.uniform(0.55, 0.9, n_teams)
        for k in range(n_submissions):
            i = k % n_teams if k < n_teams else int(rng.integers(n_teams))
            store.add_submission(
                team=names[i], file_sha256=secrets.token_hex(32), filename=f"sub{k}.csv", message=f"run {k}",
                public=synthetic_metrics(rng, skill[i]), private=synthetic_metrics(rng, skill[i]),
                split_hash=split_hash,
                submitted_at=start + timedelta(seconds=int(k * 60 * 24 * 3600 / n_submissions)))
        for j, name in enumerate(("dummy", "logistic regression", "xgboost")):
            store.add_submission(team=name, file_sha256=secrets.token_hex(32), filename="baseline.csv", message="",
                                 public=synthetic_metrics(rng, 0.5 + 0.15 * j), private=synthetic_metrics(rng, 0.5),
                                 split_hash=split_hash, submitted_at=start)
    return tokens


def make_workspace(root: Path, n_teams: int, n_submissions: int) -> tuple[object, dict[str, str]]:
    """The benchmark's workspace (created, or reused with its tokens), and the teams' tokens."""
    from competition.create import init_workspace
    from competition.workspace import Workspace

    tokens_file = root / "bench_tokens.txt"
    if tokens_file.is_file():
        ws = Workspace.open(root)
        return ws, dict(line.split("\t") for line in tokens_file.read_text().splitlines())
    t = time.perf_counter()
    ws = init_workspace(root, daily_quota=10_000)
    print(f"workspace created in {time.perf_counter() - t:.0f} s")
    t = time.perf_counter()
    fast = Path("/dev/shm") if Path("/dev/shm").is_dir() else root
    db = Path(tempfile.mkdtemp(dir=fast)) / "leaderboard.db"
    tokens = populate(f"sqlite:///{db}", n_teams, n_submissions, ws.split_hash)
    shutil.copy(db, root / "leaderboard.db")
    shutil.rmtree(db.parent)
    tokens_file.write_text("".join(f"{k}\t{v}\n" for k, v in tokens.items()))
    print(f"{n_teams} teams and {n_submissions} submissions inserted in {time.perf_counter() - t:.0f} s")
    return ws, tokens


# -- the load generator ---------------------------------------------------------------------------

async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Read one HTTP/1.1 response; (status, body bytes, connection kept open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
    length = int(headers.get("content-length", "0"))
    await reader.readexactly(length)
    return status, length, headers.get("connection", "").lower() != "close"


async def _client(port: int, requests, stop_at: float, expect: int, out: dict) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            data = next(requests)
            t = time.perf_counter()
            writer.write(data)
            await writer.drain()
            status, size, keep = await _read_response(reader)
            out["latency"].append(time.perf_counter() - t)
            out["bytes"] += size
            if status != expect:
                out["unexpected"][status] = out["unexpected"].get(status, 0) + 1
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def _load(port: int, make_requests, clients: int, seconds: float, expect: int) -> dict:
    out = {"latency": [], "bytes": 0, "unexpected": {}}
    start = time.perf_counter()
    tasks = [_client(port, make_requests(c), start + seconds, expect, out) for c in range(clients)]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    out["elapsed"] = time.perf_counter() - start
    return out


def run_load(port: int, make_requests, clients: int, seconds: float, expect: int) -> dict:
    """Warm up for a second, then measure for ``seconds``; requests/s, p50, p99 and errors."""
    asyncio.run(_load(port, make_requests, clients, 1.0, expect))
    out = asyncio.run(_load(port, make_requests, clients, seconds, expect))
    lat = np.array(out["latency"]) * 1000
    return {"requests": len(lat), "rps": len(lat) / out["elapsed"], "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)), "kb": out["bytes"] / max(len(lat), 1) / 1024,
            "unexpected": out["unexpected"]}


def get_requests(path: str, gzip: bool):
    encoding = "Accept-Encoding: gzip, deflate\r\n" if gzip else ""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{encoding}\r\n".encode()

    def make(_client_index: int):
        while True:
            yield request

    return make


def upload_requests(ws, tokens: dict[str, str], n_files: int = 64):
    """POST /api/submissions requests: valid files of random predictions, random teams."""
    ids, rng = ws.test_ids(), np.random.default_rng(1)
    files = [("id,ship\n" + "".join(f"{i},{p:.4f}\n" for i, p in zip(ids, rng.random(len(ids))))).encode()
             for _ in range(n_files)]
    names = list(tokens)

    def make(client_index: int):
        pick = random.Random(client_index)
        k = 0
        while True:
            k += 1
            boundary = secrets.token_hex(8)
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"sub.csv\"\r\n"
                    f"Content-Type: text/csv\r\n\r\n").encode() + files[(client_index + k) % n_files] + \
                (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\n\r\nbench {k}\r\n"
                 f"--{boundary}--\r\n").encode()
            head = (f"POST /api/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {tokens[pick.choice(names)]}\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n")
            yield head.encode() + body

    return make


def run_wrk(port: int, path: str, clients: int, seconds: float, gzip: bool) -> dict:
    """The same GET load from wrk (Debian's ``wrk`` package), 2 threads; parsed from ``--latency``."""
    header = ["-H", "Accept-Encoding: gzip, deflate"] if gzip else []
    cmd = ["wrk", "-t2", f"-c{clients}", f"-d{seconds:g}s", "--latency", *header, f"http://127.0.0.1:{port}{path}"]
    subprocess.run([*cmd[:3], "-d1s", *cmd[4:]], check=True, capture_output=True, timeout=60)  # warm-up
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
    unit = {"us": 1e-3, "ms": 1.0, "s": 1000.0}

    def latency(pct: str) -> float:
        value = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(value.group(1)) * unit[value.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    scale = {"B": 1 / 1024, "KB": 1, "MB": 1024, "GB": 1024 ** 2}[transfer.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    unexpected = {**({"non-2xx": int(bad.group(1))} if bad else {}), **({"socket": errors.group(1)} if errors else {})}
    return {"requests": requests, "rps": rps, "p50": latency("50"), "p99": latency("99"),
            "kb": float(transfer.group(1)) * scale / rps, "unexpected": unexpected}


# -- the server ---------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, revision_ttl: float, workers: int | None = None) -> tuple[subprocess.Popen, int]:
    """uvicorn on the workspace's app in a separate process; returns once it answers.

    With ``workers``, the server is ``ships serve --workers N`` (access log off, no MLflow runs).
    """
    port = _free_port()
    if workers is None:
        cmd = [sys.executable, "-c", SERVER, str(root), str(port), str(revision_ttl)]
    else:
        cmd = [sys.executable, "-m", "ships", "serve", "-w", str(root), "--port", str(port), "--workers", str(workers),
               "--no-track", "--no-access-log"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /leaderboard.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1.1 200"):
                    return proc, port
        except OSError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
    proc.kill()
    raise RuntimeError("the server did not answer within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server and its worker processes (its process group)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def report(name: str, r: dict, goal: bool | str) -> None:
    """One line; ``goal`` True: the pages' goal, "upload": the uploads' goal, False: none."""
    errors = f"  unexpected statuses {r['unexpected']}" if r["unexpected"] else ""
    if goal:
        rps, p99 = (GOAL_UPLOAD_RPS, GOAL_UPLOAD_P99_MS) if goal == "upload" else (GOAL_RPS, GOAL_P99_MS)
        ratios = (f"  rps/goal {r['rps'] / rps:5.2f}  p99/goal {r['p99'] / p99:5.2f}"
                  f"  {'meets' if r['rps'] >= rps and r['p99'] < p99 else 'MISSES'} the goal")
    else:
        ratios = "  (no goal)"
    print(f"{name:34s} {r['requests']:7d} req  {r['rps']:8.1f} req/s  p50 {r['p50']:7.1f} ms  "
          f"p99 {r['p99']:7.1f} ms  {r['kb']:6.1f} KiB/resp{ratios}{errors}")


def _loadavg() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--submissions", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--upload-seconds", type=float, default=20.0)
    parser.add_argument("--revision-ttl", type=float, default=0.5,
                        help="make_app's revision_ttl: seconds a reading of Store.revision() is reused (0: every request)")
    parser.add_argument("--no-gzip", action="store_true", help="clients do not send Accept-Encoding: gzip")
    parser.add_argument("--wrk", action="store_true", help="also load the GET endpoints with wrk, if installed")
    parser.add_argument("--workspace", type=Path, help="reuse (or create) the benchmark workspace here")
    parser.add_argument("--workers", type=lambda text: [int(n) for n in text.split(",")],
                        help="serve with `ships serve --workers N` for each N of a comma list, e.g. 1,2 "
                             "(default: one uvicorn process with --revision-ttl)")
    args = parser.parse_args()
    tmp = None if args.workspace else tempfile.mkdtemp(prefix="bench-web-")
    root = args.workspace or Path(tmp) / "ws"
    try:
        ws, tokens = make_workspace(root, args.teams, args.submissions)
        print(f"machine: {os.cpu_count()} CPUs, load average {_loadavg()} before the run")
        for workers in args.workers or [None]:
            proc, port = start_server(root, args.revision_ttl, workers)
            tag = "" if workers is None else f" [{workers} proc]"
            try:
                print(f"server pid {proc.pid} on 127.0.0.1:{port} (revision_ttl {args.revision_ttl:g} s"
                      f"{'' if workers is None else f', ships serve --workers {workers}'}); "
                      f"{args.clients} clients, {args.seconds:g} s each, gzip {'off' if args.no_gzip else 'accepted'}")
                for name, path in (("GET /", "/"), ("GET /leaderboard.json", "/leaderboard.json")):
                    r = run_load(port, get_requests(path, not args.no_gzip), args.clients, args.seconds, 200)
                    report(name + tag, r, goal=True)
                    if args.wrk and shutil.which("wrk"):
                        report(f"{name} (wrk){tag}", run_wrk(port, path, args.clients, args.seconds,
                                                             not args.no_gzip), goal=True)
                r = run_load(port, upload_requests(ws, tokens), args.clients, args.upload_seconds, 201)
                report("POST /api/submissions" + tag, r, goal="upload" if workers and workers >= 2 else False)
            finally:
                stop_server(proc)
        print(f"load average {_loadavg()} after the run (other processes share the CPUs with server and client)")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
