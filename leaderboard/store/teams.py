"""Teams: creation, tokens (stored hashed) and look-ups."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from competition.errors import AuthError, StoreError
from leaderboard.store.base import StoreBase
from leaderboard.store.checks import check_kind, check_name, hash_token, name_key, to_team, unknown_team
from leaderboard.store.schema import Team, submissions, teams


class TeamsPart(StoreBase):
    """Teams: creation, tokens (stored hashed) and look-ups."""

    def add_team(self, name: str, kind: str = "team") -> str:
        """Create a team and return its secret token (shown once; only its hash is kept).

        Raises
        ------
        ParameterError
            If the name is not 1 to 64 printable characters or the kind is unknown.
        StoreError
            If a team of that name (compared case-insensitively) exists.
        """
        token = secrets.token_urlsafe(32)
        self._insert_team(name, kind, hash_token(token))
        return token

    def ensure_team(self, name: str, kind: str = "team") -> Team:
        """Return the team, creating it without a token if new (organiser CLI, baselines).

        Raises
        ------
        StoreError
            If the team exists with another kind.
        """
        check_kind(kind)
        with self._read() as conn:
            row = conn.execute(select(teams).where(teams.c.name_key == name_key(name))).first()
        if row is None:
            self._insert_team(name, kind, None, exist_ok=True)
            return self.ensure_team(name, kind)
        if row.kind != kind:
            raise StoreError(f"team {row.name!r} is a {row.kind!r}, not a {kind!r}")
        return to_team(row)

    def reset_token(self, name: str) -> str:
        """Give a team a new token (the old one stops working) and return it, once."""
        token = secrets.token_urlsafe(32)
        with self._write() as conn:
            team_id = self._team_id(conn, name, lock=True)
            conn.execute(teams.update().where(teams.c.id == team_id).values(token_hash=hash_token(token)))
        return token

    def rename_team(self, name: str, new_name: str) -> Team:
        """Give a team another name (its token, submissions and finals stay with it).

        Raises
        ------
        StoreError
            If there is no such team, or the new name is taken by another team.
        ParameterError
            If the new name is not 1 to 64 printable characters.
        """
        new_name, key = check_name(new_name), name_key(new_name)
        try:
            with self._write() as conn:
                team_id = self._team_id(conn, name, lock=True)
                taken = conn.execute(select(teams.c.id, teams.c.name).where(teams.c.name_key == key)).first()
                if taken is not None and taken.id != team_id:
                    raise StoreError(f"team name {new_name!r} is taken (by {taken.name!r}); choose another name")
                conn.execute(teams.update().where(teams.c.id == team_id).values(name=new_name, name_key=key))
                self._bump_edits(conn)
        except IntegrityError as exc:  # taken meanwhile by another connection
            raise StoreError(f"team name {new_name!r} is taken; choose another name") from exc
        return self.team(new_name)

    def remove_team(self, name: str) -> None:
        """Remove a team that has no submission (a typo, a team that never started).

        Submissions are append-only: a team with submissions is kept, and the organiser
        invalidates what must not count.

        Raises
        ------
        StoreError
            If there is no such team, or it has submissions.
        """
        with self._write() as conn:
            team_id = self._team_id(conn, name, lock=True)
            n = conn.execute(select(func.count()).select_from(submissions)
                             .where(submissions.c.team_id == team_id)).scalar_one()
            if n:
                raise StoreError(f"team {self._name(conn, team_id)!r} has {n} submission{'s' * (n != 1)}, which are "
                                 "kept (submissions are append-only); invalidate them with "
                                 "'ships submission invalidate ID --reason TEXT' instead")
            conn.execute(teams.delete().where(teams.c.id == team_id))
            self._bump_edits(conn)

    def team(self, name: str) -> Team:
        """The team called ``name`` (case-insensitive).

        Raises
        ------
        StoreError
            If there is no such team.
        """
        with self._read() as conn:
            row = conn.execute(select(teams).where(teams.c.name_key == name_key(name))).first()
        if row is None:
            raise StoreError(unknown_team(name))
        return to_team(row)

    def list_teams(self) -> list[Team]:
        """Every team and baseline, in creation order."""
        with self._read() as conn:
            return [to_team(r) for r in conn.execute(select(teams).order_by(teams.c.id))]

    def team_for_token(self, token: str | None) -> str:
        """The name of the team holding ``token``.

        The token is hashed (SHA-256) and looked up by its hash; the stored hash is then
        compared in constant time.

        Raises
        ------
        AuthError
            If the token is missing or matches no team.
        """
        if not token or not isinstance(token, str):
            raise AuthError("missing team token; pass the token printed by 'ships team add'")
        digest = hash_token(token)
        with self._read() as conn:
            row = conn.execute(select(teams.c.name, teams.c.token_hash).where(teams.c.token_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise AuthError("invalid team token; ask the organiser for your team's token")
        return row.name

    def _insert_team(self, name: str, kind: str, token_hash: str | None, exist_ok: bool = False) -> None:
        """Insert a team; StoreError if the name is taken, unless ``exist_ok``."""
        name, key = check_name(name), name_key(name)
        values = dict(name=name, name_key=key, kind=check_kind(kind), token_hash=token_hash,
                      created_at=datetime.now(timezone.utc))
        try:
            with self._write() as conn:
                taken = conn.execute(select(teams.c.name).where(teams.c.name_key == key)).scalar()
                if taken is None:
                    conn.execute(teams.insert().values(**values))
        except IntegrityError:  # inserted meanwhile by another connection (PostgreSQL)
            taken = name
        if taken is not None and not exist_ok:
            raise StoreError(f"team name {name!r} is taken (by {taken!r}; names are compared "
                             "case-insensitively); choose another name")
