"""The store's connection, transactions and the queries its parts share."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import datetime

import numpy as np
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from competition.errors import ClosedError, ParameterError, QuotaError, StoreError, StoreUnavailableError
from competition.rules import Rules, day_bounds
from leaderboard import ranking
from leaderboard.store.checks import check_id, clean, hide_password, name_key, scrub_password, unknown_team
from leaderboard.store.schema import replicates as replicates_table
from leaderboard.store.schema import (SubmissionRecord, competition_state, finals, make_engine, read_version, rescores,
                                      select_entries, select_records, submissions, teams, to_entry, to_record,
                                      upgrade, write_transaction)


class StoreBase:
    """Opening, transactions and shared queries; :class:`leaderboard.store.Store` adds the parts."""

    def __init__(self, engine: Engine, rules: Rules | None = None):
        self._engine = engine
        self.rules = rules or Rules()
        self._boards: dict[bool, tuple[str, tuple]] = {}  # private -> (revision, rows)
        self._writers = threading.Lock() if engine.dialect.name == "sqlite" else None  # see _write
        self._busy_timeout = 60.0
        self._bests: tuple | None = None  # (rules, revision parts, best entry per team, (entries, latest) per team)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, rules: Rules | None = None, *, busy_timeout: float | None = None) -> "StoreBase":
        """Open the store at a SQLAlchemy URL, creating or migrating its schema.

        Parameters
        ----------
        url : str
            e.g. ``sqlite:///ws/leaderboard.db`` or ``postgresql+psycopg://user@host/db``.
        rules : Rules, optional
            The competition's rules (default: ``Rules()``, ROC AUC and two finals).
        busy_timeout : float, optional
            Seconds a statement waits for a lock held by another writer before the store is
            called unavailable (SQLite's busy timeout, PostgreSQL's ``lock_timeout``); default
            60 on SQLite and no limit on PostgreSQL.  The web view uses a few seconds.

        Raises
        ------
        StoreError
            If the URL is invalid or its schema is newer than this version of ships.
        StoreUnavailableError
            If the database cannot be reached or stays locked.

        Messages show the URL with its password hidden.
        """
        try:
            engine = make_engine(url)
        except StoreError as exc:
            raise StoreError(scrub_password(str(exc), url)) from None
        if busy_timeout is not None:
            _set_busy_timeout(engine, busy_timeout)
        try:
            upgrade(engine)
        except OperationalError as exc:
            engine.dispose()
            raise StoreUnavailableError(f"cannot open the store at {hide_password(engine.url)}: "
                                        f"{scrub_password(str(exc.orig), url)}") from None
        except StoreError:
            engine.dispose()
            raise
        store = cls(engine, rules)
        if busy_timeout is not None:
            store._busy_timeout = busy_timeout
        return store

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> "StoreBase":
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

    @contextmanager
    def _read(self):
        """A read transaction: one consistent snapshot for all its statements.

        SQLite's read transactions are; PostgreSQL's default (READ COMMITTED) gives each
        statement its own, so a board could be built from rows newer than the revision it is
        cached under: reads run REPEATABLE READ there (a read-only transaction never fails to
        serialize).
        """
        with self._unavailable_as_store_error(), self._engine.connect() as conn:
            if self._engine.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def _write(self):
        """A write transaction holding the write lock from its first statement.

        On SQLite the threads of one process also queue on a lock of their own first: SQLite's
        busy handler lets waiting writers sleep and retry, so under many concurrent uploads
        some waited past the busy timeout while others went ahead; in a queue, one writer per
        process waits in SQLite, and the others in turn.
        """
        with self._unavailable_as_store_error(), self._writer_turn(), self._engine.connect() as conn, \
                write_transaction(conn):
            yield conn

    @contextmanager
    def _writer_turn(self):
        if self._writers is None:
            yield
            return
        if not self._writers.acquire(timeout=self._busy_timeout):
            raise StoreUnavailableError(f"the store at {self.url} is unavailable: busy with other writes for "
                                        f"{self._busy_timeout:g} s; nothing was changed, try again")
        try:
            yield
        finally:
            self._writers.release()

    @contextmanager
    def _unavailable_as_store_error(self):
        """Turn a database that cannot be reached, or stays locked, into a StoreError."""
        try:
            yield
        except OperationalError as exc:
            reason = scrub_password(str(exc.orig), self._engine.url.render_as_string(hide_password=False))
            raise StoreUnavailableError(f"the store at {self.url} is unavailable: {reason}; "
                                        "nothing was changed, try again") from None

    def _revision(self, conn: Connection) -> str:
        return ":".join("" if v is None else str(v) for v in self._revision_parts(conn))

    def _revision_parts(self, conn: Connection) -> tuple:
        """(count and max id of submissions, of rescores, of teams; latest final choice, finals, finalized, edits)."""
        counts = [select(f(c)).scalar_subquery() for c in (submissions.c.id, rescores.c.id, teams.c.id)
                  for f in (func.count, func.max)]
        return tuple(conn.execute(select(*counts, select(func.max(finals.c.selected_at)).scalar_subquery(),
                                         select(func.count()).select_from(finals).scalar_subquery(),
                                         select(competition_state.c.finalized_at).scalar_subquery(),
                                         select(competition_state.c.edits).scalar_subquery())).one())

    def _insert_replicates(self, conn: Connection, submission_id: int, replicates: Mapping | None) -> None:
        """Store a submission's bootstrap replicates of the primary metric, per part (float32)."""
        for part, values in (replicates or {}).items():
            if values is None:
                continue
            data = np.ascontiguousarray(values, dtype="<f4")
            conn.execute(replicates_table.insert().values(submission_id=submission_id, part=part,
                                                          metric=self.rules.metric, n=len(data),
                                                          data=data.tobytes()))

    def _replicates(self, conn: Connection, ids: list[int], part: str) -> dict[int, np.ndarray]:
        """The latest replicates of the rules' metric of each submission in ``ids`` (those that have some)."""
        if not ids:
            return {}
        r = replicates_table
        latest = (select(func.max(r.c.id)).where(r.c.submission_id.in_(ids), r.c.part == part,
                                                 r.c.metric == self.rules.metric)
                  .group_by(r.c.submission_id))
        rows = conn.execute(select(r.c.submission_id, r.c.data).where(r.c.id.in_(latest)))
        return {sid: np.frombuffer(data, dtype="<f4") for sid, data in rows}

    def _bump_edits(self, conn: Connection) -> None:
        """Count one edit of the organiser's (the leaderboard's revision changes with it)."""
        conn.execute(competition_state.update().where(competition_state.c.id == 1)
                     .values(edits=competition_state.c.edits + 1))

    def _team_id(self, conn: Connection, name: str, lock: bool = False) -> int:
        query = select(teams.c.id).where(teams.c.name_key == name_key(name))
        team_id = conn.execute(query.with_for_update() if lock else query).scalar()
        if team_id is None:
            raise StoreError(unknown_team(name))
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

    def _check_quota(self, conn: Connection, team_id: int, at: datetime) -> None:
        """Refuse a submission by a team that has used its quota (``rules.quota_for(kind)``) on ``at``'s UTC day."""
        name, kind = conn.execute(select(teams.c.name, teams.c.kind).where(teams.c.id == team_id)).one()
        daily_quota = self.rules.quota_for(kind)
        if daily_quota is not None and self._count_day(conn, team_id, at) >= daily_quota:
            start, end = day_bounds(at)
            raise QuotaError(f"team {name!r} has used its {daily_quota} submissions for {start:%Y-%m-%d} (UTC); "
                             f"the quota resets at {end:%Y-%m-%d %H:%M} UTC")

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
        if submission_id is not None:
            try:
                check_id(submission_id)
            except ParameterError as exc:  # e.g. beyond 64 bits: no such submission
                raise StoreError(str(exc)) from None
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
        values, name = clean(dict(metrics), part), self.rules.metric
        score = values.get(name)
        if not isinstance(score, float) or isinstance(score, bool):
            raise ParameterError(f"{part} metrics are invalid: expected a finite {name!r}, got {metrics.get(name)!r}")
        low, high = (values.get(f"{name}_{k}") for k in ("low", "high"))
        return {f"{part}_score": score, f"{part}_low": low if isinstance(low, float) else None,
                f"{part}_high": high if isinstance(high, float) else None, f"{part}_metrics": values}


def _set_busy_timeout(engine: Engine, seconds: float) -> None:
    """Make every new connection of ``engine`` wait at most ``seconds`` for another writer's lock."""
    ms = max(int(seconds * 1000), 1)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # runs after make_engine's own set-up
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"PRAGMA busy_timeout = {ms}")
        elif engine.dialect.name == "postgresql":
            cursor.execute(f"SET lock_timeout = {ms}")
        cursor.close()
        if engine.dialect.name == "postgresql":
            dbapi_connection.commit()
