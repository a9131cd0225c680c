"""Several server processes on one store: `ships serve --workers N`, on SQLite and on PostgreSQL.

Each test starts real servers (``python -m ships serve``) on 127.0.0.1 against one workspace
and sends concurrent requests to all of them: two single-process servers on two ports, so that
a test knows which process answers, and one ``--workers 2`` server whose kernel-shared socket
spreads the connections.  Quotas, finals and finalize are decided by the store in the writing
transaction; each process caches its pages per store revision, read at most every 0.5 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import pg
from competition.config import write_config
from leaderboard.store import Store
from ships.cli import app as cli
from workspaces import csv_bytes, light_workspace

QUOTA, REPO = 3, Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``ships serve`` in its own process group; stopped (SIGTERM to the group) by :meth:`stop`."""

    def __init__(self, ws_root: Path, log: Path, *args: str):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))}
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ships", "serve", "-w", str(ws_root), "--port", str(self.port), "--no-track", *args],
            cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 60.0) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/leaderboard.json", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server did not answer within {timeout} s:\n{self.log.read_text()}")

    def processes(self) -> list[int]:
        """The server's process and its descendants (uvicorn's workers)."""
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                children = (task / "children").read_text().split() if (task / "children").exists() else []
                todo.extend(int(c) for c in children)
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request, real_workspace_path, tmp_path):
    """(workspace, store, tokens, [server A, server B, server with --workers 2]) on one store."""
    config = {"daily_quota": QUOTA}
    if request.param == "postgresql":
        try:
            config["store_url"] = pg.get_server().new_database()
        except pg.PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL server unavailable: {exc}")
    ws = light_workspace(real_workspace_path, tmp_path / "ws", **config)
    write_config(ws.config, ws.root / "ships.toml")
    store = Store.open(ws.store_url, ws.rules)
    tokens = {name: store.add_team(name) for name in ("alpha", "beta", "gamma", "delta")}
    servers = [Server(ws.root, tmp_path / "a.log"), Server(ws.root, tmp_path / "b.log"),
               Server(ws.root, tmp_path / "w.log", "--workers", "2")]
    try:
        for server in servers:
            server.wait()
        yield ws, store, tokens, servers
    finally:
        for server in servers:
            server.stop()
        store.close()


def upload(url: str, token: str, data: bytes) -> int:
    return httpx.post(f"{url}/api/submissions", files={"file": ("s.csv", data)},
                      headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code


def test_quotas_finals_finalize_and_pages_hold_across_processes(deployment):
    ws, store, tokens, servers = deployment
    urls = [s.url for s in servers]
    files = ws.submissions_dir

    # --workers 2 runs two server processes under uvicorn's supervisor.
    assert len(servers[2].processes()) >= 3, servers[2].log.read_text()

    # Quotas: 4 teams send 3 times their quota at once, spread over every process.
    jobs = [(urls[i % 3], tokens[team], csv_bytes(ws, 1000 * t + i))
            for t, team in enumerate(tokens) for i in range(3 * QUOTA)]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda job: upload(*job), jobs))
    assert sorted(set(statuses)) == [201, 429], statuses
    for team in tokens:
        assert len(store.submissions(team)) == QUOTA, team
    assert statuses.count(201) == QUOTA * len(tokens)
    assert len(list(files.glob("*.csv"))) == QUOTA * len(tokens)  # a refused upload leaves no file

    # Pages: every process shows every submission within its revision delay (0.5 s).
    for url in urls:
        board = _wait_for(lambda: httpx.get(f"{url}/leaderboard.json").json(),
                          lambda doc: sum(r["entries"] for r in doc["rows"]) == QUOTA * len(tokens))
        assert {r["team"] for r in board["rows"]} == set(tokens)

    # Finals: one team chooses different pairs on every process at once; the store keeps one of them.
    ids = [r.id for r in store.submissions("alpha")]
    choices = [[ids[0], ids[1]], [ids[1], ids[2]], [ids[0], ids[2]]] * 4
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda k: httpx.post(f"{urls[k % 3]}/api/finals", json={"ids": choices[k]},
                                                     headers={"Authorization": f"Bearer {tokens['alpha']}"}),
                                range(len(choices))))
    assert {a.status_code for a in answers} == {200}
    held = store.final_ids()["alpha"]
    assert len(held) == 2 and sorted(held) in [sorted(c) for c in choices]
    too_many = httpx.post(f"{urls[1]}/api/finals", json={"ids": ids},
                          headers={"Authorization": f"Bearer {tokens['alpha']}"})
    assert too_many.status_code in (409, 422) and store.final_ids()["alpha"] == held

    # Finalize (the organiser's CLI, another process) while uploads arrive on every process:
    # none is accepted after it, and every accepted one is recorded.
    store.close()  # a new day's quota for the late uploads: use fresh teams instead
    late = {name: Store.open(ws.store_url, ws.rules).add_team(name) for name in ("eta", "theta")}
    late_jobs = [(urls[i % 3], late[team], csv_bytes(ws, 5000 + 10 * t + i))
                 for t, team in enumerate(late) for i in range(QUOTA)]
    with ThreadPoolExecutor(8) as pool:
        pending = [pool.submit(upload, *job) for job in late_jobs]
        finalized = CliRunner().invoke(cli, ["finalize", "--yes", "-w", str(ws.root)])
        statuses = [f.result() for f in pending]
    assert finalized.exit_code == 0, finalized.output
    assert set(statuses) <= {201, 409}, statuses
    with Store.open(ws.store_url, ws.rules) as after:
        at = after.finalized_at()
        recorded = [r for team in late for r in after.submissions(team)]
        assert len(recorded) == statuses.count(201)
        assert all(r.submitted_at <= at for r in recorded)
    for url in urls:
        assert upload(url, tokens["beta"], csv_bytes(ws, 9999)) == 409
        board = _wait_for(lambda: httpx.get(f"{url}/leaderboard.json").json(), lambda doc: doc.get("finalized"))
        assert board["board"] == "private"


def _wait_for(read, done, timeout: float = 3.0):
    """``read()`` until ``done(value)``, at most ``timeout`` s (the page cache's delay is 0.5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            assert done(value), value
            return value
        time.sleep(0.1)


def test_workers_option_is_checked(real_workspace_path, tmp_path):
    ws = light_workspace(real_workspace_path, tmp_path / "ws")
    for bad in ("0", "65", "two"):
        result = CliRunner().invoke(cli, ["serve", "-w", str(ws.root), "--workers", bad])
        assert result.exit_code == 2 and "--workers" in result.output, result.output


def test_workers_share_one_socket_with_nagle_off(real_workspace_path, tmp_path, monkeypatch):
    """ships binds the workers' one socket and sets it TCP_NODELAY, which accepted connections inherit
    (asyncio sets it only on sockets whose proto is IPPROTO_TCP; without it every keep-alive request
    waited 40 ms for a delayed ACK). Each worker builds its app from SHIPS_SERVE."""
    import socket

    import uvicorn
    import uvicorn.supervisors
    from fastapi import FastAPI

    from ships import serve

    ws = light_workspace(real_workspace_path, tmp_path / "ws")
    started = []

    class FakeSupervisor:
        def __init__(self, config, sockets):
            started.append((config, [s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets]))

        def run(self):
            pass

    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", FakeSupervisor)
    # uvicorn.Config points uvicorn's log handlers at sys.stderr, here CliRunner's stream, closed after the call
    monkeypatch.setattr(uvicorn.Config, "configure_logging", lambda config: None)
    monkeypatch.setenv("SHIPS_SERVE", "")  # restored (removed) after the test; the command sets it
    result = CliRunner().invoke(cli, ["serve", "-w", str(ws.root), "--port", str(_free_port()), "--workers", "3",
                                      "--no-track"])
    assert result.exit_code == 0, result.output
    assert "with 3 server processes" in result.output
    [(config, nodelay)] = started
    assert config.workers == 3 and config.factory
    assert nodelay == [1]
    assert isinstance(serve.worker_app(), FastAPI)
