"""The web view's error handlers: every error as JSON or as a page, 5xx included, with the security headers.

JSON (``{"error", "problems"}``) on the API and ``.json`` routes, a page elsewhere
(``Site.error`` in :mod:`leaderboard.web.site` decides).  A library error that reaches no
route's own handling (a busy or unreachable store, a broken workspace) is shown as a team may
see it (:func:`leaderboard.web.upload.team_message`); any other exception is a bug: 500 with
no detail, its traceback in the server's log.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from competition.errors import ShipsError
from leaderboard.web.guard import SECURITY_HEADERS

__all__ = ["add_error_handlers"]


def add_error_handlers(app: FastAPI, site) -> None:
    """Register the handlers of ``app``; ``site`` renders the errors (``site.error``, ``site.refusal``)."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        path = request.url.path if len(request.url.path) <= 100 else request.url.path[:100] + "..."
        message = {404: f"no page at {path}; see the leaderboard at /"}.get(exc.status_code, exc.detail)
        return site.error(request, exc.status_code, str(message))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return site.error(request, 400, "invalid request parameters", problems)

    @app.exception_handler(ShipsError)
    async def server_fault(request: Request, exc: ShipsError):
        """A store that is busy or unreachable, a broken workspace: 503, the details in the server's log."""
        return site.refusal(request, exc)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception):
        """Any other exception: 500, no details, the security headers (sent outside the middleware)."""
        response = site.error(request, 500, "internal error; the organiser can find it in the server's log")
        response.headers.update({k.decode(): v.decode() for k, v in SECURITY_HEADERS})
        response.headers["connection"] = "close"
        return response
