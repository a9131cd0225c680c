"""Soak test of the web server: valid, invalid and over-quota uploads mixed with page reads, then an audit.

Set-up: a light copy of a workspace of the bundled chips (``--workspace`` reuses an initialised
one, else one is created in a temporary folder), ``max_upload_bytes`` 200 kB and a daily quota
of ``--quota``; ``--teams`` teams that may submit and as many whose quota is already used
(records inserted directly).  The server is one uvicorn process on 127.0.0.1 (one worker, no
tracking), which exits by itself if this process goes away.  ``--clients`` asyncio clients
(keep-alive, reconnecting when the server closes) send their next request as soon as the last
answer is read, for ``--seconds``, each request drawn from this mix:

    page 50%  GET /, /leaderboard.json, /teams/NAME.json, /submissions/ID.json, /submit, or an id
              beyond 64 bits (404)
    valid 20%     a valid file from an open team: 201, or 429 once that team's quota is used
    over quota 10%  a valid file from a team whose quota is used: 429
    invalid 20%   wrong token 401, missing token 401, invalid CSV 422, escape sequence in the
              message 422, body above the limit 413, malformed form 400

Every upload's file is unique.  The audit, once the server has stopped: every 201 has its
record (same team, same SHA-256) and its file; every refusal has neither; no temporary or
orphan file is left.  Reported: requests/s, p50 and p99 latency per kind and overall, 5xx
count (goal 0), transport errors, records lost (goal 0) and the server's resident memory:
idle before, after the first 10 s (warm: imports, thread pool, caches), at the end, and its peak.

    .venv/bin/python benchmarks/bench_soak.py [--seconds 60] [--clients 16] [--teams 40] [--quota 20]
        [--workspace DIR] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

LIMIT = 200_000
SERVER = """
import logging, os, sys, threading, time, uvicorn
logging.getLogger("python_multipart").setLevel(logging.ERROR)  # one warning per malformed form otherwise
from competition.workspace import Workspace
from leaderboard.web import make_app
parent, stop_at = os.getppid(), time.monotonic() + float(sys.argv[3])
def watch():  # exit with the benchmark, or after the time limit
    while os.getppid() == parent and time.monotonic() < stop_at:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
uvicorn.run(make_app(Workspace.open(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
            access_log=False)
"""
MIX = (("page", 0.50), ("valid", 0.20), ("over quota", 0.10), ("invalid", 0.20))
INVALID = ("wrong token", "no token", "invalid csv", "escape in message", "too large", "malformed")


@dataclass
class Sent:
    kind: str
    status: int
    latency: float
    sha: str | None = None  # of the uploaded file
    team: str | None = None
    entry: dict | None = None


@dataclass
class Tally:
    sent: list[Sent] = field(default_factory=list)
    transport_errors: int = 0


def make_workspace(source: Path | None, root: Path, quota: int):
    """A light copy of ``source`` (or of a new workspace) with the soak's quota and size limit written to ships.toml."""
    from competition.config import write_config
    from competition.create import init_workspace
    from competition.workspace import Workspace

    if source is None:
        source = root.parent / "full"
        init_workspace(source, seed=0)
    for folder in ("public", "private", "submissions"):
        (root / folder).mkdir(parents=True)
    shutil.copy(source / "ships.toml", root)
    for path in (source / "public").glob("*.csv"):
        shutil.copy(path, root / "public")
    shutil.copy(source / "private" / "solution.csv", root / "private")
    ws = Workspace.open(root)
    write_config(replace(ws.config, daily_quota=quota, max_upload_bytes=LIMIT), root / "ships.toml")
    return Workspace.open(root)


def add_teams(ws, n_teams: int, quota: int) -> tuple[dict, dict]:
    """Open teams and teams whose quota of today is used (synthetic records); their tokens."""
    from leaderboard.store import Store

    metrics = {"roc_auc": 0.6, "roc_auc_low": 0.55, "roc_auc_high": 0.65}
    with Store.open(ws.store_url, ws.rules) as store:
        open_teams = {f"team-{i:03d}": store.add_team(f"team-{i:03d}") for i in range(n_teams)}
        spent = {f"spent-{i:03d}": store.add_team(f"spent-{i:03d}") for i in range(n_teams)}
        for name in spent:
            for _ in range(quota):
                store.add_submission(team=name, file_sha256=secrets.token_hex(32), filename="old.csv", message="",
                                     public=metrics, private=metrics, split_hash=ws.split_hash)
    return open_teams, spent


def multipart(parts: list[tuple[str, bytes, str | None]]) -> tuple[bytes, str]:
    boundary, body = secrets.token_hex(8), b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{filename}"')
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), boundary


class Requests:
    """Draws the next request of the mix: (kind, raw bytes, file SHA-256 or None, team or None)."""

    def __init__(self, ws, open_teams: dict, spent: dict, seed: int):
        self.ids, self.rng = ws.test_ids(), random.Random(seed)
        self.open_teams, self.spent = open_teams, spent
        self.np_rng = np.random.default_rng(seed)
        self.known_ids = [1]

    def csv(self) -> bytes:
        proba = self.np_rng.random(len(self.ids))
        return ("id,ship\n" + "".join(f"{i},{p:.5f}\n" for i, p in zip(self.ids, proba))).encode()

    def upload(self, kind: str, token: str | None, data: bytes, message: bytes = b"soak", team=None, raw=None):
        body, boundary = raw or multipart([("file", data, "sub.csv"), ("message", message, None)])
        auth = "" if token is None else f"Authorization: Bearer {token}\r\n"
        head = (f"POST /api/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: multipart/form-data; "
                f"boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        return kind, head + body, hashlib.sha256(data).hexdigest(), team

    def next(self):
        kind = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if kind == "page":
            path = self.rng.choice(["/", "/leaderboard.json", f"/teams/{self.rng.choice(list(self.open_teams))}.json",
                                    f"/submissions/{self.rng.choice(self.known_ids)}.json", "/submit",
                                    "/submissions/9223372036854775808.json"])
            return "page", f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n".encode(), None, None
        if kind in ("valid", "over quota"):
            team = self.rng.choice(list(self.open_teams if kind == "valid" else self.spent))
            return self.upload(kind, {**self.open_teams, **self.spent}[team], self.csv(), team=team)
        which, team = self.rng.choice(INVALID), self.rng.choice(list(self.open_teams))
        token, data = self.open_teams[team], self.csv()
        if which == "invalid csv":
            data = data.replace(b"\n", b"\nzz,1.7\n", 1)
        elif which == "too large":
            data = data * (LIMIT // len(data) + 6)
        elif which == "malformed":
            body = b"--x\r\nnot a header\r\n\r\n" + data
            return self.upload(f"invalid: {which}", token, data, team=team, raw=(body, "y"))
        message = b"\x1b[2Jowned" if which == "escape in message" else b"soak"
        token = {"wrong token": "not-a-token", "no token": None}.get(which, token)
        return self.upload(f"invalid: {which}", token, data, message, team=team if token else None)


async def read_response(reader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split(" ", 2)[1]), body, headers.get("connection", "").lower() != "close"


async def client(port: int, requests, stop_at: float, tally: Tally) -> None:
    """Send ``requests.next()`` until ``stop_at`` (or until it returns None), one at a time."""
    reader = writer = None
    while time.perf_counter() < stop_at:
        drawn = requests.next()
        if drawn is None:
            break
        kind, data, sha, team = drawn
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            t = time.perf_counter()
            writer.write(data)
            await writer.drain()
            status, body, keep = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError):
            tally.transport_errors += 1
            writer = None
            continue
        entry = json.loads(body) if status == 201 else None
        if entry and hasattr(requests, "known_ids"):
            requests.known_ids.append(entry["id"])
        tally.sent.append(Sent(kind, status, time.perf_counter() - t, sha, team, entry))
        if not keep:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


class Probe:
    """The cost of a refusal on the idle server, each kind in turn; a valid upload for comparison."""

    def __init__(self, requests: Requests, repeat: int):
        team, spent = next(iter(requests.open_teams)), next(iter(requests.spent))
        big = requests.csv()
        big += b"#" * max(LIMIT - 1_000 - len(big), 0)  # never parsed: refused from the headers or the token
        self.queue = [requests.upload("probe: wrong token (file near the limit)", "not-a-token",
                                      big + secrets.token_bytes(8))
                      for _ in range(repeat)]
        self.queue += [requests.upload("probe: over quota (valid file)", requests.spent[spent], requests.csv(),
                                       team=spent) for _ in range(repeat)]
        self.queue += [requests.upload("probe: too large", requests.open_teams[team], big * 2) for _ in range(repeat)]
        self.queue += [requests.upload("probe: valid", requests.open_teams[team], requests.csv(), team=team)
                       for _ in range(3)]

    def next(self):
        return self.queue.pop(0) if self.queue else None


def rss(pid: int) -> tuple[int, int]:
    """Resident and peak resident memory of a process, in bytes."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) * 1024, int(status["VmHWM"].split()[0]) * 1024


def audit(ws, tally: Tally, records_before: int) -> dict:
    """Records lost: a 201 without its record or file, a refusal with either; temporary and orphan files."""
    from leaderboard.store import Store

    with Store.open(ws.store_url, ws.rules) as store:
        records = store.submissions()
    by_id, shas = {r.id: r for r in records}, {r.file_sha256 for r in records}
    files = {p.name for p in ws.submissions_dir.iterdir()}
    accepted = [s for s in tally.sent if s.status == 201]
    refused = [s for s in tally.sent if s.sha is not None and s.status != 201]
    missing = [s for s in accepted if (r := by_id.get(s.entry["id"])) is None or r.file_sha256 != s.sha
               or (s.team is not None and r.team != s.team) or f"{s.sha}.csv" not in files]
    stored = [s for s in refused if s.sha in shas or f"{s.sha}.csv" in files]
    orphans = {f for f in files if f.startswith(".") or f.removesuffix(".csv") not in shas}
    unexplained = orphans - {f"{s.sha}.csv" for s in stored}  # not already counted as a refusal's file
    return {"accepted": len(accepted), "refused uploads": len(refused), "new records": len(records) - records_before,
            "201 without record or file": len(missing), "refusal with record or file": len(stored),
            "temporary or orphan files": len(orphans),
            "lost": len(missing) + len(stored) + len(unexplained) + abs(len(records) - records_before - len(accepted))}


def summarise(tally: Tally, seconds: float) -> list[tuple]:
    rows = []
    kinds = sorted({s.kind for s in tally.sent}, key=lambda k: (k.startswith("invalid"), k))
    for kind in [*kinds, "all"]:
        sent = [s for s in tally.sent if kind == "all" or s.kind == kind]
        lat = np.array([s.latency for s in sent]) * 1000
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(Counter(s.status for s in sent).items()))
        rows.append((kind, len(sent), len(sent) / seconds, np.percentile(lat, 50), np.percentile(lat, 99), statuses))
    return rows


def start_server(ws, lifetime: float) -> tuple[subprocess.Popen, int]:
    """The uvicorn server on a free port of 127.0.0.1, once it accepts connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(ws.root), str(port), str(lifetime)], env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit("the server did not start") from None
            time.sleep(0.2)


def soak(server, port: int, requests: list[Requests], seconds: float) -> tuple[Tally, float, int]:
    """The clients for ``seconds``; their tally, the time taken and the server's RSS after the first 10 s."""
    tally, start, samples = Tally(), time.perf_counter(), []

    async def sample():
        while time.perf_counter() < start + seconds:
            samples.append((time.perf_counter() - start, rss(server.pid)[0]))
            await asyncio.sleep(1.0)

    async def run():
        clients = (client(port, r, start + seconds, tally) for r in requests)
        await asyncio.wait_for(asyncio.gather(sample(), *clients), timeout=seconds + 120)

    asyncio.run(run())
    warm = next((b for t, b in samples if t >= min(10.0, seconds / 2)), samples[-1][1])
    return tally, time.perf_counter() - start, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--teams", type=int, default=40, help="open teams (and as many with their quota used)")
    parser.add_argument("--quota", type=int, default=20, help="daily quota (the spent teams have used it)")
    parser.add_argument("--workspace", type=Path, help="an initialised workspace to copy (default: create one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    tmp = Path(tempfile.mkdtemp(prefix="ships-soak-"))
    server = None
    try:
        ws = make_workspace(args.workspace, tmp / "ws", args.quota)
        open_teams, spent = add_teams(ws, args.teams, args.quota)
        server, port = start_server(ws, lifetime=args.seconds + 600)
        rss_before, _ = rss(server.pid)
        requests = [Requests(ws, open_teams, spent, args.seed * 1000 + c) for c in range(args.clients)]
        probed = Tally()
        asyncio.run(client(port, Probe(requests[0], repeat=20), time.perf_counter() + 120, probed))
        tally, elapsed, warm = soak(server, port, requests, args.seconds)
        time.sleep(1.0)
        rss_after, peak = rss(server.pid)
        server.terminate()
        server.wait(timeout=30)
        everything = Tally(probed.sent + tally.sent, probed.transport_errors + tally.transport_errors)
        checked = audit(ws, everything, records_before=len(spent) * args.quota)
        report(args, probed, tally, elapsed, checked, (rss_before, warm, rss_after, peak))
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def report(args, probed: Tally, tally: Tally, elapsed: float, checked: dict, memory: tuple[int, int, int, int]) -> None:
    mb, (rss_before, warm, rss_after, peak) = 2**20, memory
    print("\nCost on the idle server, one request at a time:\n")
    print("| kind | requests | median ms | max ms | statuses |\n|---|---|---|---|---|")
    for kind in dict.fromkeys(s.kind for s in probed.sent):
        sent = [s for s in probed.sent if s.kind == kind]
        lat = np.array([s.latency for s in sent]) * 1000
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(Counter(s.status for s in sent).items()))
        print(f"| {kind} | {len(sent)} | {np.median(lat):.1f} | {lat.max():.1f} | {statuses} |")
    print(f"\n{args.clients} clients for {elapsed:.1f} s, {args.teams} open teams and {args.teams} spent, "
          f"daily quota {args.quota}, upload limit {LIMIT:,} bytes\n")
    print("| kind | requests | requests/s | p50 ms | p99 ms | statuses |\n|---|---|---|---|---|---|")
    for kind, n, rate, p50, p99, statuses in summarise(tally, elapsed):
        print(f"| {kind} | {n} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {statuses} |")
    fives = sum(s.status >= 500 for s in tally.sent)
    print(f"\n5xx: {fives} (goal 0); transport errors: {tally.transport_errors}")
    print("audit: " + ", ".join(f"{k} {v}" for k, v in checked.items()) + " (goal: lost 0)")
    print(f"server memory: {rss_before / mb:.0f} MiB idle before, {warm / mb:.0f} MiB after the first "
          f"{min(10.0, args.seconds / 2):g} s, {rss_after / mb:.0f} MiB after ({(rss_after - warm) / mb:+.0f} MiB "
          f"since then, {(rss_after - rss_before) / mb:+.0f} MiB in all), peak {peak / mb:.0f} MiB")


if __name__ == "__main__":
    main()
