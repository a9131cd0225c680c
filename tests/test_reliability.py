"""Reliability of the real submission path: concurrent processes, processes killed mid-way, hostile names.

Each test runs on the workspace's SQLite store and on a throwaway PostgreSQL server
(tests/pg.py; skipped, saying why, only where none can be started).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pg
from competition.errors import QuotaError
from competition.workspace import Workspace
from leaderboard.store import Store
from leaderboard.submit import submit_file

N_PROCESSES = 8
# Children start clean, with no engine or lock inherited: each is forked from a server process
# that has only imported this module (and so the library), which saves every child the two
# seconds of CPU a spawned interpreter spends on imports.
CHILDREN = multiprocessing.get_context("forkserver")
CHILDREN.set_forkserver_preload([__name__])


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ws(request, workspace):
    """The real workspace, its store on SQLite (its own file) or on PostgreSQL."""
    if request.param == "postgresql":
        try:
            url = pg.get_server().new_database()
        except pg.PostgresUnavailable as exc:
            pytest.skip(f"PostgreSQL server unavailable: {exc}")
        toml = workspace.root / "ships.toml"
        text = toml.read_text()
        assert 'store_url = ""' in text
        toml.write_text(text.replace('store_url = ""', f'store_url = "{url}"'))
        workspace = Workspace.open(workspace.root)
        assert workspace.store_url == url
    return workspace


def write_files(ws, folder: Path, n: int) -> list[Path]:
    """``n`` distinct valid submissions (different noise on a weak signal)."""
    sol = ws.load_solution()
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        ship = (0.5 * sol.y_true + rng.random(len(sol.ids))) / 1.5
        path = folder / f"sub{i}.csv"
        pd.DataFrame({"id": sol.ids, "ship": ship}).to_csv(path, index=False)
        paths.append(path)
    return paths


def _submit_many(root: str, jobs: list[tuple[str, str]], now: datetime, barrier, results) -> None:
    """Child: wait for the others, then submit every (team, path) through the real path."""
    ws = Workspace.open(Path(root))
    out = []
    barrier.wait()
    for team, path in jobs:
        try:
            r = submit_file(ws, Path(path), team=team, now=now)
            out.append(("ok", team, r.record.id, r.file_sha256))
        except QuotaError as exc:
            out.append(("quota", team, str(exc), None))
        except Exception as exc:  # noqa: BLE001 - any other failure is reported to the test
            out.append(("error", team, repr(exc), None))
    results.put(out)


def test_concurrent_processes_lose_nothing_and_respect_the_quota(ws, tmp_path):
    quota = ws.config.daily_quota
    per_process = 3
    paths = write_files(ws, tmp_path / "files", 2 * N_PROCESSES * per_process)
    now = datetime.now(timezone.utc)
    barrier, results = CHILDREN.Barrier(N_PROCESSES), CHILDREN.Queue()
    procs = []
    for p in range(N_PROCESSES):
        mine = paths[2 * per_process * p: 2 * per_process * (p + 1)]
        jobs = [("shared", str(mine[k])) for k in range(per_process)]
        jobs += [(f"team-{p}", str(mine[per_process + k])) for k in range(per_process)]
        jobs = [jobs[k // 2 + (k % 2) * per_process] for k in range(len(jobs))]  # alternate shared / own
        procs.append(CHILDREN.Process(target=_submit_many, args=(str(ws.root), jobs, now, barrier, results)))
    for proc in procs:
        proc.start()
    outcomes = [item for _ in procs for item in results.get(timeout=300)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    errors = [o for o in outcomes if o[0] == "error"]
    assert errors == []
    accepted = [o for o in outcomes if o[0] == "ok"]
    shared = [o for o in accepted if o[1] == "shared"]
    assert len(shared) == quota  # never more, and nothing lost: exactly the quota got through
    assert len([o for o in outcomes if o[0] == "quota"]) == N_PROCESSES * per_process - quota
    assert len(accepted) == quota + N_PROCESSES * per_process
    with Store.open(ws.store_url) as store:
        records = {r.id: r for r in store.submissions()}
        assert sorted(records) == sorted(o[2] for o in accepted)
        assert store.quota_status("shared", now).used == quota
        for p in range(N_PROCESSES):
            assert store.quota_status(f"team-{p}", now).used == per_process
        assert len(store.list_teams()) == N_PROCESSES + 1
    for _, _, sid, digest in accepted:
        assert records[sid].file_sha256 == digest
        assert (ws.submissions_dir / f"{digest}.csv").is_file()


def _hang_inside_transaction(root: str, path: str, marker: str) -> None:
    """Child: submit, but stop for good right after the INSERT, before the commit."""
    from sqlalchemy import event

    ws = Workspace.open(Path(root))
    store = Store.open(ws.store_url)

    def hang(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO SUBMISSIONS"):
            Path(marker).write_text("inside the transaction")
            time.sleep(600)

    event.listen(store._engine, "after_cursor_execute", hang)
    submit_file(ws, Path(path), team="victim", store=store)


def _hang_while_scoring(root: str, path: str, marker: str) -> None:
    """Child: submit, but stop for good while scoring, before the store is touched."""
    import leaderboard.submit as submit

    def hang(*args, **kwargs):
        Path(marker).write_text("scoring")
        time.sleep(600)

    submit.score_predictions = hang
    submit_file(Workspace.open(Path(root)), Path(path), team="victim")


def _kill_when_marked(target, ws, path: Path, marker: Path) -> None:
    proc = CHILDREN.Process(target=target, args=(str(ws.root), str(path), str(marker)))
    proc.start()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.is_alive(), f"child exited early with code {proc.exitcode}"
        assert time.monotonic() < deadline, "child never reached the point where it is killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL


@pytest.mark.parametrize("target", [_hang_inside_transaction, _hang_while_scoring])
def test_killed_submission_leaves_no_record(ws, tmp_path, target):
    first, second = write_files(ws, tmp_path / "files", 2)
    marker = tmp_path / "marker"
    _kill_when_marked(target, ws, first, marker)
    with Store.open(ws.store_url) as store:
        assert store.submissions() == []
        if target is _hang_while_scoring:
            assert list(ws.submissions_dir.iterdir()) == []
        # The lock the dead process held is gone: the team submits at once, its quota untouched.
        result = submit_file(ws, second, team="victim", store=store)
        assert [r.id for r in store.submissions()] == [result.record.id]
        assert store.quota_status("victim").used == 1


def test_team_names_with_html_are_stored_and_returned_verbatim(ws, tmp_path):
    name = '<script>alert("ships")</script><img src=x onerror=alert(1)>'
    [path] = write_files(ws, tmp_path / "files", 1)
    with Store.open(ws.store_url) as store:
        token = store.add_team(name)
        result = submit_file(ws, path, team=store.team_for_token(token), store=store)
        assert result.record.team == name
        assert store.submission(result.record.id).team == name
        assert store.leaderboard()[0].team == name
        assert [t.name for t in store.list_teams()] == [name]


class _OtherSubmitterFirst:
    """A store whose next add_submission lets another submitter of the same bytes record first."""

    def __init__(self, store, ws, path):
        self._store, self._ws, self._path = store, ws, path

    def __getattr__(self, name):
        return getattr(self._store, name)

    def add_submission(self, **kwargs):
        self.other = submit_file(self._ws, self._path, team="shared", store=self._store)  # takes the last slot
        return self._store.add_submission(**kwargs)


def test_refused_duplicate_bytes_keep_the_accepted_submissions_file(ws, tmp_path):
    paths = write_files(ws, tmp_path / "files", ws.config.daily_quota)
    for path in paths[:-1]:
        submit_file(ws, path, team="shared")
    with Store.open(ws.store_url) as store:
        racing = _OtherSubmitterFirst(store, ws, paths[-1])
        with pytest.raises(QuotaError):
            submit_file(ws, paths[-1], team="shared", store=racing)  # wrote the file; refused after the other
        accepted = store.submission(racing.other.record.id)
    assert (ws.submissions_dir / f"{accepted.file_sha256}.csv").is_file()
