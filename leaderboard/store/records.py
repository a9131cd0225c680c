"""The leaderboard store: the only writer of teams, submissions, finals and scores.

SQLAlchemy Core over any URL: SQLite by default (WAL and a busy timeout, so that several
processes may write at once), PostgreSQL for a shared deployment.  Every write is one
transaction that holds the write lock from its first read (SQLite ``BEGIN IMMEDIATE``;
PostgreSQL row locks on the team and the competition state), so checks and inserts cannot
interleave.

API
---
- ``Store.open(url, rules)``: create or migrate the schema; the competition's
  :class:`~competition.rules.Rules` decide the primary metric, its direction, the quota and the
  number of finals; ``close()``; usable as a context manager.
- Teams: ``add_team(name) -> token`` (shown once, stored as a SHA-256 hash),
  ``ensure_team(name, kind)``, ``reset_token(name)``, ``team(name)``, ``list_teams()``,
  ``team_for_token(token) -> name`` (AuthError if wrong).
- Submissions: ``add_submission(...)`` (quota checked in the same transaction),
  ``submissions(team=None)``, ``submission(id)``, ``quota_status(team)``,
  ``add_rescore(id, ...)``.
- Finals: ``select_finals(team, ids)``, ``final_ids()``, ``finalize()``, ``is_finalized()``,
  ``finalized_at()``.
- Display: ``leaderboard(private=False)`` (cached per ``revision()``).

Records are frozen dataclasses from :mod:`leaderboard.store.schema` (``Team``,
``SubmissionRecord``, ``QuotaStatus``, ``Finalization``) and :mod:`leaderboard.ranking`
(``LeaderboardRow``); each has ``to_dict()`` for JSON.  Team names are returned verbatim:
escaping them is the job of whatever displays them.

Submissions are append-only: there is no update or delete, and triggers refuse them.
A rescore adds a score row; the latest one is the submission's current score.

Private scores never leave the store before :meth:`Store.finalize`: every query used for
display returns ``private=None`` until then, and ``leaderboard(private=True)`` refuses.

Example
-------
>>> store = Store.open("sqlite://")
>>> token = store.add_team("Harbour Watch")
>>> store.team_for_token(token)
'Harbour Watch'
"""

from __future__ import annotations

from leaderboard.store.checks import TEAM_KINDS
from leaderboard.store.finals import FinalsPart
from leaderboard.store.invalidations import InvalidationsPart
from leaderboard.store.schema import Finalization, QuotaStatus, SubmissionRecord, Team
from leaderboard.store.submissions import SubmissionsPart
from leaderboard.store.teams import TeamsPart

__all__ = ["TEAM_KINDS", "Team", "SubmissionRecord", "QuotaStatus", "Finalization", "Store"]


class Store(TeamsPart, SubmissionsPart, FinalsPart, InvalidationsPart):
    """The leaderboard store over one database; open it with :meth:`Store.open`."""
