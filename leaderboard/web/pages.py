"""The competition's own pages: an overview (description, timeline, evaluation, rules) and the data.

Both are made from the rules of ships.toml and an optional ``overview.md`` that the organiser
writes in the workspace, rendered as CommonMark with raw HTML disabled (markdown-it-py), so a
description can hold no script; links keep to http(s) and mailto.  Each page has a JSON twin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from competition.public_archive import build_public_archive

__all__ = ["router", "overview_view", "render_markdown"]

router = APIRouter()
_MAX_OVERVIEW_BYTES = 200_000
_DEFAULT_DESCRIPTION = (
    "Find the ships in 80×80 PlanetScope chips of San Francisco Bay and San Pedro Bay. Train on the "
    "labelled chips, predict the probability of a ship for every test chip, and submit a CSV file.")


def render_markdown(text: str) -> Markup:
    """CommonMark to HTML with raw HTML disabled and only http(s)/mailto links: safe to embed."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    md.validateLink = lambda url: url.lower().startswith(("http://", "https://", "mailto:", "#", "/"))
    return Markup(md.render(text))


def _description(ws) -> str:
    path = ws.root / "overview.md"
    if not path.is_file():
        return _DEFAULT_DESCRIPTION
    data = path.read_bytes()[:_MAX_OVERVIEW_BYTES]
    return data.decode("utf-8", errors="replace")


def overview_view(ws, finalized: bool) -> dict:
    """What the overview says: the description, the timeline, the evaluation and the rules."""
    rules, config = ws.rules, ws.config
    return {
        "description_markdown": _description(ws),
        "finalized": finalized,
        "deadline": None if rules.deadline is None else rules.deadline.isoformat(),
        "evaluation": {
            "metric": rules.metric, "greater_is_better": rules.greater_is_better,
            "interval": "95% bootstrap interval resampling whole acquisition groups "
                        f"({config.n_bootstrap} resamples)",
            "ties": "two adjacent teams are marked tied when their 95% intervals overlap",
            "public_fraction": config.public_fraction,
            "shown_before_finalize": (f"the {rules.metric} and its interval, rounded to {rules.public_precision} "
                                      "decimals" + (" and moving only on a significant improvement (the Ladder)"
                                                    if rules.feedback == "ladder" else "")),
        },
        "rules": {"daily_quota": rules.daily_quota, "n_finals": rules.n_finals,
                  "max_upload_bytes": config.max_upload_bytes, "group_by": config.group_by,
                  "n_splits": config.n_splits},
    }


def _finalized(site) -> bool:
    return site.store.is_finalized()


@router.get("/overview.json")
async def overview_json(request: Request):
    site = request.app.state.site
    return overview_view(site.ws, await run_in_threadpool(_finalized, site))


@router.get("/overview")
async def overview_html(request: Request):
    site = request.app.state.site
    view = overview_view(site.ws, await run_in_threadpool(_finalized, site))
    terms = view.pop("rules")  # the template's `rules` is the competition's Rules object
    return site.render("overview.html", json_url="/overview.json", description=render_markdown(
        view["description_markdown"]), terms=terms, **view)


@router.get("/data.json")
async def data_json(request: Request):
    archive = await run_in_threadpool(build_public_archive, request.app.state.site.ws)
    return {**archive.to_dict(), "url": "/api/data", "sample_submission": "/data/sample_submission.csv"}


@router.get("/data")
async def data_html(request: Request):
    site = request.app.state.site
    archive = await run_in_threadpool(build_public_archive, site.ws)
    return site.render("data.html", json_url="/data.json", archive=archive, config=site.ws.config)


@router.get("/data/sample_submission.csv")
async def sample_submission(request: Request):
    from fastapi.responses import FileResponse

    path = request.app.state.site.ws.public_dir / "sample_submission.csv"
    return FileResponse(path, media_type="text/csv", filename="sample_submission.csv")
