"""``ships serve``: the leaderboard web view and the upload endpoint, under uvicorn.

With ``--workers N`` uvicorn runs N server processes on one socket; each builds its own app
(:func:`worker_app`, told the workspace and the options through ``SHIPS_SERVE``) and opens its
own connections to the store.  Everything that must hold across processes is the store's:
quotas, finals and finalize are checked in the transaction that writes, and each process's
page cache is keyed by the store's revision (see :mod:`leaderboard.web.board`).  One process
at a time holds the workspace's tracking writer lock; the others wait to take over.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Annotated

import typer

from competition.errors import ParameterError
from ships._common import TrackingOpt, WorkspaceOpt, open_workspace

__all__ = ["app", "worker_app"]

app = typer.Typer()
_ENV = "SHIPS_SERVE"  # the workers' settings, JSON: {"workspace", "tracking_uri", "body_timeout"}


@app.command()
def serve(
    workspace: WorkspaceOpt,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server processes; one per core is a good "
                                         "start (uploads are scored on the CPU).")] = 1,
    tracking_uri: TrackingOpt = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log every accepted upload as an MLflow run.")] = True,
    body_timeout: Annotated[float, typer.Option("--body-timeout", min=1.0, help="Seconds within which an upload's "
                                                "body must arrive; a slower one gets 408.")] = 60.0,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log one line per request "
                                             "(uvicorn's access log, on stderr).")] = True,
) -> None:
    """Serve the leaderboard web pages, their JSON twins and submission upload over HTTP."""
    import uvicorn

    from leaderboard.store.checks import hide_password

    ws = open_workspace(workspace)
    settings = {"workspace": str(ws.root.resolve()), "tracking_uri": (tracking_uri or ws.tracking_uri) if track else None,
                "body_timeout": body_timeout}
    if workers == 1:
        web_app = _make(settings, ws)
    else:
        from leaderboard.store import Store

        Store.open(ws.store_url, ws.rules).close()  # reachable, and migrated once before the workers start
    sock = _listen(host, port)  # a port in use is an Error: line here, before anything is said to be served
    processes = "" if workers == 1 else f" with {workers} server processes"
    typer.echo(f"Serving the leaderboard of {ws.root} (store {hide_password(ws.store_url)}) "
               f"at http://{host}:{port}/{processes} (Ctrl+C to stop)")
    options = {"host": host, "port": port, "log_level": "info", "access_log": access_log, "proxy_headers": False}
    try:
        if workers == 1:
            uvicorn.Server(uvicorn.Config(web_app, **options)).run(sockets=[sock])
        else:
            from uvicorn.supervisors import Multiprocess

            os.environ[_ENV] = json.dumps(settings)  # read by each worker process (spawned: it inherits the environment)
            Multiprocess(uvicorn.Config(f"{__name__}:worker_app", factory=True, workers=workers, **options),
                         sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound here (uvicorn would log a busy port and exit with code 3).

    TCP_NODELAY is set on it and inherited by every connection it accepts: asyncio sets the option
    only on sockets whose ``proto`` is IPPROTO_TCP, which a socket bound as uvicorn binds them is
    not, and without it every keep-alive request after the first waits 40 ms for a delayed ACK.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ParameterError(f"--host {host!r} is not an address to listen on ({exc}); expected e.g. 127.0.0.1 "
                             "or 0.0.0.0") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ParameterError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; stop what uses that port "
                             "or pass another --port") from None
    sock.set_inheritable(True)
    return sock


def worker_app():
    """The app of one server process of ``ships serve --workers N`` (a uvicorn factory)."""
    return _make(json.loads(os.environ[_ENV]))


def _make(settings: dict, ws=None):
    from competition.workspace import Workspace
    from leaderboard.web import make_app

    ws = ws or Workspace.open(settings["workspace"])
    return make_app(ws, tracking_uri=settings["tracking_uri"], body_timeout=settings["body_timeout"])
