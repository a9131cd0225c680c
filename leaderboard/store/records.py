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

import hashlib
import hmac
import math
import numbers
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from competition.errors import AuthError, ClosedError, ParameterError, QuotaError, StoreError
from competition.rules import Rules, day_bounds
from leaderboard import ranking
from leaderboard.store.schema import (
    Finalization,
    QuotaStatus,
    SubmissionRecord,
    Team,
    competition_state,
    finals,
    make_engine,
    read_version,
    rescores,
    select_entries,
    select_records,
    submissions,
    teams,
    to_entry,
    to_record,
    upgrade,
    write_transaction,
)

__all__ = ["TEAM_KINDS", "Team", "SubmissionRecord", "QuotaStatus", "Finalization", "Store"]

TEAM_KINDS = ("team", "baseline")
_MAX_NAME = 64
_MAX_MESSAGE = 10_000


class Store:
    """The leaderboard store over one database; open it with :meth:`Store.open`."""

    def __init__(self, engine: Engine, rules: Rules | None = None):
        self._engine = engine
        self.rules = rules or Rules()
        self._boards: dict[bool, tuple[str, tuple]] = {}  # private -> (revision, rows)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, rules: Rules | None = None) -> "Store":
        """Open the store at a SQLAlchemy URL, creating or migrating its schema.

        Parameters
        ----------
        url : str
            e.g. ``sqlite:///ws/leaderboard.db`` or ``postgresql+psycopg://user@host/db``.
        rules : Rules, optional
            The competition's rules (default: ``Rules()``, ROC AUC and two finals).

        Raises
        ------
        StoreError
            If the URL is invalid, the database cannot be reached, or its schema is newer
            than this version of ships.
        """
        engine = make_engine(url)
        try:
            upgrade(engine)
        except OperationalError as exc:
            engine.dispose()
            raise StoreError(f"cannot open the store at {engine.url!r}: {exc.orig}") from exc
        except StoreError:
            engine.dispose()
            raise
        return cls(engine, rules)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The store's URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def schema_version(self) -> int:
        """The schema version recorded in the database."""
        with self._read() as conn:
            return read_version(conn)

    # -- teams ---------------------------------------------------------------------------

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
        self._insert_team(name, kind, _hash_token(token))
        return token

    def ensure_team(self, name: str, kind: str = "team") -> Team:
        """Return the team, creating it without a token if new (organiser CLI, baselines).

        Raises
        ------
        StoreError
            If the team exists with another kind.
        """
        _check_kind(kind)
        with self._read() as conn:
            row = conn.execute(select(teams).where(teams.c.name_key == _name_key(name))).first()
        if row is None:
            self._insert_team(name, kind, None, exist_ok=True)
            return self.ensure_team(name, kind)
        if row.kind != kind:
            raise StoreError(f"team {row.name!r} is a {row.kind!r}, not a {kind!r}")
        return _to_team(row)

    def reset_token(self, name: str) -> str:
        """Give a team a new token (the old one stops working) and return it, once."""
        token = secrets.token_urlsafe(32)
        with self._write() as conn:
            team_id = self._team_id(conn, name, lock=True)
            conn.execute(teams.update().where(teams.c.id == team_id).values(token_hash=_hash_token(token)))
        return token

    def team(self, name: str) -> Team:
        """The team called ``name`` (case-insensitive).

        Raises
        ------
        StoreError
            If there is no such team.
        """
        with self._read() as conn:
            row = conn.execute(select(teams).where(teams.c.name_key == _name_key(name))).first()
        if row is None:
            raise StoreError(_unknown_team(name))
        return _to_team(row)

    def list_teams(self) -> list[Team]:
        """Every team and baseline, in creation order."""
        with self._read() as conn:
            return [_to_team(r) for r in conn.execute(select(teams).order_by(teams.c.id))]

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
        digest = _hash_token(token)
        with self._read() as conn:
            row = conn.execute(select(teams.c.name, teams.c.token_hash).where(teams.c.token_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise AuthError("invalid team token; ask the organiser for your team's token")
        return row.name

    # -- submissions ---------------------------------------------------------------------

    def add_submission(
        self,
        *,
        team: str,
        file_sha256: str,
        filename: str,
        message: str,
        public: Mapping,
        private: Mapping,
        split_hash: str,
        submitted_at: datetime | None = None,
    ) -> SubmissionRecord:
        """Record a scored submission, in one transaction with the quota check.

        Parameters
        ----------
        team : str
            An existing team.
        file_sha256, filename, message : str
            The stored file's SHA-256, the name it was submitted under, the team's note.
        public, private : mapping
            Flat metric dicts (``roc_auc``, ``roc_auc_low``, ``roc_auc_high``, ...).
        split_hash : str
            The split the scores were computed on.
        submitted_at : datetime, optional
            Timezone-aware; default now.

        Returns
        -------
        SubmissionRecord
            With ``private`` hidden.

        Raises
        ------
        StoreError
            If the competition is finalized or the team is unknown.
        QuotaError
            If the team has used its quota (``rules.quota_for(kind)``) for the UTC day of
            ``submitted_at``.
        ParameterError
            For a malformed argument.
        """
        at = _utc(submitted_at, "submitted_at")
        values = dict(
            file_sha256=_check_sha256(file_sha256), filename=_check_text("filename", filename, 255),
            message=_check_text("message", message, _MAX_MESSAGE), submitted_at=at,
            split_hash=_check_text("split_hash", split_hash, 64),
            **self._score_values("public", public), **self._score_values("private", private),
        )
        with self._write() as conn:
            self._check_open(conn)
            team_id = self._team_id(conn, team, lock=True)
            kind = conn.execute(select(teams.c.kind).where(teams.c.id == team_id)).scalar_one()
            daily_quota = self.rules.quota_for(kind)
            if daily_quota is not None:
                used = self._count_day(conn, team_id, at)
                if used >= daily_quota:
                    start, end = day_bounds(at)
                    raise QuotaError(
                        f"team {self._name(conn, team_id)!r} has used its {daily_quota} submissions for "
                        f"{start:%Y-%m-%d} (UTC); the quota resets at {end:%Y-%m-%d %H:%M} UTC")
            new_id = conn.execute(submissions.insert().values(team_id=team_id, **values)).inserted_primary_key[0]
            return self._records(conn, reveal=False, submission_id=new_id)[0]

    def add_rescore(self, submission_id: int, *, public: Mapping, private: Mapping, split_hash: str,
                    rescored_at: datetime | None = None) -> bool:
        """Store recomputed scores for a submission if they differ from its current ones.

        The submission's original row is never changed: a rescore row is added, and the
        latest one becomes the submission's current score.

        Returns
        -------
        bool
            True if a rescore row was added, False if the scores were unchanged (nothing stored).

        Raises
        ------
        StoreError
            If there is no such submission.
        """
        values = dict(submission_id=submission_id, rescored_at=_utc(rescored_at, "rescored_at"),
                      split_hash=_check_text("split_hash", split_hash, 64),
                      **self._score_values("public", public), **self._score_values("private", private))
        with self._write() as conn:
            old = self._records(conn, reveal=True, submission_id=submission_id)[0]
            if (old.public, old.private, old.split_hash, old.public_score, old.private_score) == (
                    values["public_metrics"], values["private_metrics"], values["split_hash"],
                    values["public_score"], values["private_score"]):
                return False
            conn.execute(rescores.insert().values(**values))
            return True

    def submissions(self, team: str | None = None) -> list[SubmissionRecord]:
        """Every submission (of one team if given), oldest first; Private hidden until finalize."""
        with self._read() as conn:
            reveal = self._finalized_at(conn) is not None
            team_id = None if team is None else self._team_id(conn, team)
            return self._records(conn, reveal=reveal, team_id=team_id)

    def submission(self, submission_id: int) -> SubmissionRecord:
        """One submission; Private hidden until finalize.

        Raises
        ------
        StoreError
            If there is no such submission.
        """
        with self._read() as conn:
            return self._records(conn, reveal=self._finalized_at(conn) is not None, submission_id=submission_id)[0]

    def quota_status(self, team: str, now: datetime | None = None) -> QuotaStatus:
        """How many valid submissions ``team`` made on the UTC day of ``now``, and when that resets.

        Kinds without a quota (baselines) have ``limit`` and ``left`` None.
        """
        at = _utc(now, "now")
        with self._read() as conn:
            team_id = self._team_id(conn, team)
            row = conn.execute(select(teams.c.name, teams.c.kind).where(teams.c.id == team_id)).one()
            used = self._count_day(conn, team_id, at)
        start, end = day_bounds(at)
        limit = self.rules.quota_for(row.kind)
        left = None if limit is None else max(limit - used, 0)
        return QuotaStatus(team=row.name, day=start.date(), used=used, limit=limit, left=left, resets_at=end)

    # -- finals, finalize, leaderboards ----------------------------------------------------

    def select_finals(self, team: str, ids: Iterable[int], now: datetime | None = None) -> list[SubmissionRecord]:
        """Choose a team's final submissions (at most ``rules.n_finals``, its own), replacing any earlier choice.

        An empty ``ids`` clears the choice (finalize then picks its best Public ones).

        Raises
        ------
        StoreError
            If finalized, the team is unknown, or an id is not one of the team's submissions.
        ParameterError
            If more ids are given than ``rules.n_finals``.
        """
        ids = list(dict.fromkeys(_check_id(i) for i in ids))
        at = _utc(now, "now")
        self.rules.check_finals(ids)
        with self._write() as conn:
            self._check_open(conn)
            team_id = self._team_id(conn, team, lock=True)
            name = self._name(conn, team_id)
            for sid in ids:
                owner = conn.execute(select(submissions.c.team_id).where(submissions.c.id == sid)).scalar()
                if owner is None:
                    raise StoreError(f"no submission {sid}; see 'ships submissions --team {name}'")
                if owner != team_id:
                    raise StoreError(f"submission {sid} belongs to team {self._name(conn, owner)!r}, "
                                     f"not {name!r}; a team may select only its own submissions")
            conn.execute(finals.delete().where(finals.c.team_id == team_id))
            for sid in ids:
                conn.execute(finals.insert().values(team_id=team_id, submission_id=sid, selected_at=at, auto=False))
            return [r for r in self._records(conn, reveal=False, team_id=team_id) if r.id in ids]

    def final_ids(self) -> dict[str, list[int]]:
        """Each team's final submission ids (selected, or picked at finalize)."""
        with self._read() as conn:
            return self._final_ids(conn)

    def finalize(self, now: datetime | None = None) -> Finalization:
        """Close submissions, pick finals for teams that chose none, and reveal the Private leaderboard.

        Teams that selected no final get their ``rules.n_finals`` best Public submissions
        (ties to the earlier).  The result carries every final submission with its Private metrics.

        Raises
        ------
        StoreError
            If the competition is already finalized.
        """
        at = _utc(now, "now")
        with self._write() as conn:
            self._check_open(conn, lock=True)
            records = self._records(conn, reveal=True)
            chosen = self._final_ids(conn)
            auto = []
            for team, rs in _by_team(records).items():
                if team not in chosen:
                    picks = sorted((r for r in rs if r.public_score is not None),
                                   key=lambda r: ranking.best_key(r, "public", self.rules))[:self.rules.n_finals]
                    team_id = self._team_id(conn, team)
                    for r in picks:
                        conn.execute(finals.insert().values(team_id=team_id, submission_id=r.id, selected_at=at,
                                                            auto=True))
                        auto.append(r.id)
            conn.execute(competition_state.update().where(competition_state.c.id == 1).values(finalized_at=at))
            records = self._records(conn, reveal=True)
            board = ranking.rank_private(records, self._final_ids(conn), self.rules)
            return Finalization(finalized_at=at, leaderboard=board, finals=[r for r in records if r.final],
                                auto_selected=auto)

    def is_finalized(self) -> bool:
        """True once :meth:`finalize` has run."""
        return self.finalized_at() is not None

    def finalized_at(self) -> datetime | None:
        """When the competition was finalized, or None."""
        with self._read() as conn:
            return self._finalized_at(conn)

    def leaderboard(self, private: bool = False) -> list[ranking.LeaderboardRow]:
        """The Public leaderboard, or the Private one after finalize (see :mod:`leaderboard.ranking`).

        The result is cached until :meth:`revision` changes, so serving it again costs one
        small query however many submissions there are.

        Raises
        ------
        StoreError
            If ``private`` is asked before the competition is finalized.
        """
        with self._read() as conn:
            revision = self._revision(conn)
            cached = self._boards.get(private)
            if cached is not None and cached[0] == revision:
                return list(cached[1])
            finalized = self._finalized_at(conn) is not None
            if private and not finalized:
                raise StoreError("the Private leaderboard is hidden until the competition is finalized "
                                 "(ships finalize); only the Public one is available")
            entries = self._entries(conn, reveal=private)
            rows = (ranking.rank_private(entries, self._final_ids(conn), self.rules) if private
                    else ranking.rank_public(entries, self.rules))
        self._boards[private] = (revision, tuple(rows))
        return rows

    def revision(self) -> str:
        """A short string that changes whenever a leaderboard, a final choice or the team list may change.

        For caches: equal revisions mean equal leaderboards.
        """
        with self._read() as conn:
            return self._revision(conn)

    # -- internals -------------------------------------------------------------------------

    @contextmanager
    def _read(self):
        """A read transaction (one consistent snapshot on SQLite)."""
        with self._unavailable_as_store_error(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self):
        """A write transaction holding the write lock from its first statement."""
        with self._unavailable_as_store_error(), self._engine.connect() as conn, write_transaction(conn):
            yield conn

    @contextmanager
    def _unavailable_as_store_error(self):
        """Turn a database that cannot be reached, or stays locked, into a StoreError."""
        try:
            yield
        except OperationalError as exc:
            raise StoreError(f"the store at {self.url} is unavailable: {exc.orig}; "
                             "nothing was changed, try again") from exc

    def _revision(self, conn: Connection) -> str:
        counts = [select(f(c)).scalar_subquery() for c in (submissions.c.id, rescores.c.id, teams.c.id)
                  for f in (func.count, func.max)]
        row = conn.execute(select(*counts, select(func.max(finals.c.selected_at)).scalar_subquery(),
                                  select(func.count()).select_from(finals).scalar_subquery(),
                                  select(competition_state.c.finalized_at).scalar_subquery())).one()
        return ":".join("" if v is None else str(v) for v in row)

    def _insert_team(self, name: str, kind: str, token_hash: str | None, exist_ok: bool = False) -> None:
        """Insert a team; StoreError if the name is taken, unless ``exist_ok``."""
        name, key = _check_name(name), _name_key(name)
        values = dict(name=name, name_key=key, kind=_check_kind(kind), token_hash=token_hash,
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

    def _team_id(self, conn: Connection, name: str, lock: bool = False) -> int:
        query = select(teams.c.id).where(teams.c.name_key == _name_key(name))
        team_id = conn.execute(query.with_for_update() if lock else query).scalar()
        if team_id is None:
            raise StoreError(_unknown_team(name))
        return team_id

    def _name(self, conn: Connection, team_id: int) -> str:
        return conn.execute(select(teams.c.name).where(teams.c.id == team_id)).scalar_one()

    def _finalized_at(self, conn: Connection, lock: bool | str = False) -> datetime | None:
        query = select(competition_state.c.finalized_at).where(competition_state.c.id == 1)
        if lock:
            query = query.with_for_update(read=lock == "share")
        return conn.execute(query).scalar()

    def _check_open(self, conn: Connection, lock: bool | str = "share") -> None:
        """Refuse writes after finalize; on PostgreSQL, lock the state row against a concurrent finalize."""
        at = self._finalized_at(conn, lock=lock)
        if at is not None:
            raise ClosedError(f"the competition was finalized at {at:%Y-%m-%d %H:%M} UTC; "
                             "submissions and final selections are closed")

    def _count_day(self, conn: Connection, team_id: int, at: datetime) -> int:
        start, end = day_bounds(at)
        return conn.execute(select(func.count()).select_from(submissions).where(
            submissions.c.team_id == team_id, submissions.c.submitted_at >= start,
            submissions.c.submitted_at < end)).scalar_one()

    def _final_ids(self, conn: Connection) -> dict[str, list[int]]:
        rows = conn.execute(select(teams.c.name, finals.c.submission_id).join(teams, teams.c.id == finals.c.team_id)
                            .order_by(finals.c.submission_id))
        out: dict[str, list[int]] = {}
        for name, sid in rows:
            out.setdefault(name, []).append(sid)
        return out

    def _records(self, conn: Connection, *, reveal: bool, team_id: int | None = None,
                 submission_id: int | None = None) -> list[SubmissionRecord]:
        rows = conn.execute(select_records(reveal=reveal, team_id=team_id, submission_id=submission_id)).all()
        if submission_id is not None and not rows:
            raise StoreError(f"no submission {submission_id}; see 'ships submissions'")
        return [to_record(r, reveal) for r in rows]

    def _entries(self, conn: Connection, *, reveal: bool) -> list[ranking.Entry]:
        return [to_entry(r, reveal) for r in conn.execute(select_entries(reveal=reveal))]

    def _score_values(self, part: str, metrics: Mapping) -> dict:
        """Column values for one part: the primary score with its interval, and all metrics as JSON."""
        if not isinstance(metrics, Mapping):
            raise ParameterError(f"{part}={type(metrics).__name__} is invalid; expected a dict of metrics")
        clean, name = _clean(dict(metrics), part), self.rules.metric
        score = clean.get(name)
        if not isinstance(score, float) or isinstance(score, bool):
            raise ParameterError(f"{part} metrics are invalid: expected a finite {name!r}, got {metrics.get(name)!r}")
        low, high = (clean.get(f"{name}_{k}") for k in ("low", "high"))
        return {f"{part}_score": score, f"{part}_low": low if isinstance(low, float) else None,
                f"{part}_high": high if isinstance(high, float) else None, f"{part}_metrics": clean}


# -- helpers ----------------------------------------------------------------------------------

def _hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (tokens are random, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _name_key(name: str) -> str:
    """The case-insensitive identity of a team name."""
    return unicodedata.normalize("NFKC", str(name)).casefold()


def _check_name(name) -> str:
    """A valid team name: 1 to 64 printable characters, no leading or trailing space."""
    if not isinstance(name, str) or not 1 <= len(name) <= _MAX_NAME:
        got = f"{len(name)} characters" if isinstance(name, str) else type(name).__name__
        raise ParameterError(f"team name {name!r} is invalid: expected 1 to {_MAX_NAME} characters, got {got}")
    if not name.isprintable():
        bad = next(c for c in name if not c.isprintable())
        raise ParameterError(f"team name {name!r} is invalid: character {bad!r} is not printable")
    if name != name.strip():
        raise ParameterError(f"team name {name!r} is invalid: remove the leading or trailing spaces")
    return name


def _check_kind(kind: str) -> str:
    if kind not in TEAM_KINDS:
        raise ParameterError(f"kind={kind!r} is invalid; expected one of {list(TEAM_KINDS)}")
    return kind


def _unknown_team(name: str) -> str:
    return f"unknown team {name!r}; see 'ships team list', or create it with 'ships team add'"


def _check_sha256(value) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ParameterError(f"file_sha256={value!r} is invalid; expected 64 lowercase hex digits")
    return value


def _check_text(name: str, value, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        got = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
        raise ParameterError(f"{name} is invalid: expected a string of at most {limit} characters, got {got}")
    return value


def _check_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"submission id {value!r} is invalid; expected an integer")
    return int(value)


def _utc(value: datetime | None, name: str) -> datetime:
    """``value`` (timezone-aware) in UTC, or now."""
    if value is None:
        return datetime.now(timezone.utc)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ParameterError(f"{name}={value!r} is invalid; expected a timezone-aware datetime")
    return value.astimezone(timezone.utc)


def _clean(value, where: str):
    """A JSON-safe copy of a metric value: numpy scalars to Python numbers, NaN and inf to None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):
        return _clean(value.tolist(), where)
    if isinstance(value, Mapping):
        return {str(k): _clean(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, where) for v in value]
    raise ParameterError(f"{where} is invalid: expected a number, string, list or dict, got {type(value).__name__}")


def _to_team(row) -> Team:
    return Team(name=row.name, kind=row.kind, created_at=row.created_at, has_token=row.token_hash is not None)


def _by_team(records: Iterable[SubmissionRecord]) -> dict[str, list[SubmissionRecord]]:
    out: dict[str, list[SubmissionRecord]] = {}
    for r in records:
        out.setdefault(r.team, []).append(r)
    return out
