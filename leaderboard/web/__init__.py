"""The web view: read-only pages, each with a JSON twin, and the team's own actions."""

from leaderboard.web.app import make_app

__all__ = ["make_app"]
