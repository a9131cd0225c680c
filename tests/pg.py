"""A throwaway PostgreSQL server for the tests, from Debian's ``postgresql`` package.

`get_server()` starts one server per test process (``initdb`` in a temporary folder,
listening on 127.0.0.1 and a free port, ``fsync`` off) and stops it, and removes its files,
when the process exits.  When no server can be started it raises
:class:`PostgresUnavailable` saying why, and the tests skip with that reason.

Run as root, ``initdb`` and ``postgres`` refuse to start, so both run as the ``postgres``
user (``runuser -u postgres --``) on a folder it owns.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "get_server", "find_bindir"]

_SERVER: "PostgresServer | None" = None
_FAILURE: str | None = None


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl`` (newest Debian version first, then $PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0, reverse=True)
    found = candidates[0] if candidates else shutil.which("initdb")
    if not found:
        raise PostgresUnavailable("no initdb found (install Debian's 'postgresql' package: apt-get install postgresql)")
    return Path(found).resolve().parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running server; :meth:`new_database` hands out a fresh database per test."""

    def __init__(self, bindir: Path, root: Path, port: int, user: str | None):
        self.bindir, self.root, self.port, self.user = bindir, root, port, user
        self._n = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def start(self) -> None:
        """initdb and start the server; raises PostgresUnavailable with the tools' output on failure."""
        steps = [
            (self.bindir / "initdb", "-D", self.data_dir, "-U", "ships", "--auth=trust", "-E", "UTF8",
             "--no-sync", "--locale=C"),
            (self.bindir / "pg_ctl", "-D", self.data_dir, "-l", self.root / "server.log", "-w", "-t", "60",
             "-o", f"-h 127.0.0.1 -p {self.port} -k {self.root} -F -c max_connections=200", "start"),
        ]
        for step in steps:
            try:
                done = self._run(*step)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise PostgresUnavailable(f"{Path(str(step[0])).name} failed: {exc}") from exc
            if done.returncode != 0:
                log = (self.root / "server.log")
                tail = log.read_text()[-800:] if log.exists() else ""
                raise PostgresUnavailable(f"{Path(str(step[0])).name} exited {done.returncode}: "
                                          f"{(done.stderr or done.stdout).strip()[-800:]} {tail}")

    def stop(self) -> None:
        """Stop the server at once and remove its files."""
        if self.data_dir.exists():
            try:
                self._run(self.bindir / "pg_ctl", "-D", self.data_dir, "-m", "immediate", "-w", "stop")
            except (OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://ships@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """An empty place for one test: a new schema, first on the search path of the returned URL.

        (A schema takes milliseconds to create; a database takes most of a second.)
        """
        import psycopg

        self._n += 1
        name = f"t{os.getpid()}_{self._n}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=ships dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url()}?options=-csearch_path%3D{name}"


def get_server() -> PostgresServer:
    """The process's PostgreSQL server, started on first use.

    Raises
    ------
    PostgresUnavailable
        If no server can be started (the message says why); remembered, so later calls
        fail at once.
    """
    global _SERVER, _FAILURE
    if _SERVER is not None:
        return _SERVER
    if _FAILURE is not None:
        raise PostgresUnavailable(_FAILURE)
    try:
        _SERVER = _start()
    except PostgresUnavailable as exc:
        _FAILURE = str(exc)
        raise
    atexit.register(_SERVER.stop)
    return _SERVER


def _start() -> PostgresServer:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable(f"psycopg is not installed ({exc}); pip install 'psycopg[binary]'") from exc
    bindir = find_bindir()
    user = None
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root and no 'runuser' to start PostgreSQL as another user")
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise PostgresUnavailable("running as root and there is no 'postgres' user to run the server") from exc
        user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="ships-pg-"))
    if user:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    server = PostgresServer(bindir, root, _free_port(), user)
    try:
        server.start()
    except PostgresUnavailable:
        server.stop()
        raise
    return server
