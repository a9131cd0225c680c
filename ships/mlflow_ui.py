"""``ships ui mlflow``: the MLflow UI on 127.0.0.1 over the workspace's tracking store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Annotated, Optional

import typer

from ships._common import WorkspaceOpt, open_workspace

__all__ = ["app", "mlflow_ui_command"]

app = typer.Typer(no_args_is_help=True, help="Local web interfaces over the workspace (the MLflow UI).")


def mlflow_ui_command(tracking_uri: str, artifacts: str | None, port: int, host: str = "127.0.0.1") -> list[str]:
    """The ``mlflow server`` command line that serves ``tracking_uri`` on ``host:port``."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
           "--host", host, "--port", str(port), "--workers", "1"]
    if artifacts:
        cmd += ["--default-artifact-root", artifacts]
    return cmd


def _check_port(host: str, port: int) -> None:
    from competition.errors import ParameterError

    if not 1 <= port <= 65535:
        raise ParameterError(f"--port {port} is invalid; expected a TCP port in 1..65535")
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ParameterError(f"--port {port} is in use on {host} ({exc.strerror}); pass another --port") from exc


@app.command("mlflow")
def mlflow_command(
    workspace: WorkspaceOpt,
    port: Annotated[int, typer.Option("--port", help="Port of the UI on 127.0.0.1.")] = 5000,
    tracking_uri: Annotated[Optional[str], typer.Option(
        "--tracking-uri", help="Serve this tracking store instead of the workspace's mlflow.db (a database URI).")] = None,
) -> None:
    """Start the MLflow UI on 127.0.0.1 against the workspace's tracking store (Ctrl-C stops it)."""
    from competition.tracking import Tracker

    ws = open_workspace(workspace)
    uri = tracking_uri or ws.tracking_uri
    tracker = Tracker(uri).check()  # creates the experiment if new, so the runs view exists
    _check_port("127.0.0.1", port)
    typer.echo(f"MLflow UI for {uri}: the runs at http://127.0.0.1:{port}/#/experiments/{tracker.experiment_id}"
               "  (Ctrl-C to stop)")
    raise typer.Exit(run_until_stopped(mlflow_ui_command(uri, tracker.artifact_location, port)))


def run_until_stopped(cmd: list[str]) -> int:
    """Run ``cmd`` in its own process group until it ends, or until Ctrl-C or SIGTERM stop it and
    every process it started (the server and its workers), so the port is free afterwards."""
    proc = subprocess.Popen(cmd, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop_group(proc)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL what is left after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            os.killpg(proc.pid, 0)  # a worker may outlive the leader
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
