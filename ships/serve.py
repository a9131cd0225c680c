"""``ships serve``: the leaderboard web view and the upload endpoint, under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from ships._common import TrackingOpt, WorkspaceOpt, open_workspace

__all__ = ["app"]

app = typer.Typer()


@app.command()
def serve(
    workspace: WorkspaceOpt,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")] = 8000,
    tracking_uri: TrackingOpt = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log every accepted upload as an MLflow run.")] = True,
    body_timeout: Annotated[float, typer.Option("--body-timeout", min=1.0, help="Seconds within which an upload's "
                                                "body must arrive; a slower one gets 408.")] = 60.0,
) -> None:
    """Serve the leaderboard web pages, their JSON twins and submission upload over HTTP."""
    import uvicorn

    from leaderboard.store.checks import hide_password
    from leaderboard.web import make_app

    ws = open_workspace(workspace)
    web_app = make_app(ws, tracking_uri=(tracking_uri or ws.tracking_uri) if track else None,
                       body_timeout=body_timeout)
    typer.echo(f"Serving the leaderboard of {ws.root} (store {hide_password(ws.store_url)}) "
               f"at http://{host}:{port}/ (Ctrl+C to stop)")
    uvicorn.run(web_app, host=host, port=port, log_level="info", proxy_headers=False)
