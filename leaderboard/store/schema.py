"""The leaderboard store's current tables, its engine set-up, schema upgrades, and its record types.

The tables below are the latest schema version; :mod:`leaderboard.store.migrations` holds the
frozen steps that build them, and :func:`upgrade` runs those steps and records the version
in the database (a test checks that migrating an empty database gives these tables).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlalchemy import Column, Index, Integer, MetaData, Select, case, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from competition.errors import StoreError
from leaderboard.store.migrations import MIGRATIONS, SCHEMA_VERSION, v1_tables, v2_tables, v3_tables
from leaderboard.ranking import Entry, LeaderboardRow

__all__ = [
    "SCHEMA_VERSION",
    "metadata",
    "teams",
    "submissions",
    "rescores",
    "invalidations",
    "replicates",
    "finals",
    "competition_state",
    "schema_version",
    "Team",
    "SubmissionRecord",
    "QuotaStatus",
    "Finalization",
    "make_engine",
    "write_transaction",
    "read_version",
    "upgrade",
    "select_records",
    "select_best_entries",
    "select_entries",
    "to_record",
    "to_entry",
]

_PG_LOCK_KEY = 0x5417_0001  # pg_advisory_xact_lock key that serialises migrations

metadata = MetaData()
_t = {**v1_tables(metadata), **v2_tables(metadata), **v3_tables(metadata)}
Index("ix_submissions_team_time", _t["submissions"].c.team_id, _t["submissions"].c.submitted_at)
teams, submissions, finals = _t["teams"], _t["submissions"], _t["finals"]
competition_state, rescores, schema_version = _t["competition_state"], _t["rescores"], _t["schema_version"]
invalidations, replicates = _t["invalidations"], _t["replicates"]
competition_state.append_column(Column("edits", Integer, nullable=False, server_default="0"))


# -- records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Team:
    """A team (or a baseline); its token is never kept, only a hash of it."""

    name: str
    kind: str
    created_at: datetime
    has_token: bool

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {**asdict(self), "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class SubmissionRecord:
    """One stored submission with its current scores (those of its latest rescore, if any).

    ``private``, ``private_score``, ``private_low`` and ``private_high`` are None until the
    competition is finalized.  ``final`` marks a selected final submission (after finalize,
    also one picked for a team that selected none).
    """

    id: int
    team: str
    kind: str
    file_sha256: str
    filename: str
    message: str
    submitted_at: datetime
    split_hash: str
    public: dict
    public_score: float | None
    public_low: float | None
    public_high: float | None
    private: dict | None
    private_score: float | None
    private_low: float | None
    private_high: float | None
    final: bool
    rescored_at: datetime | None
    invalidated: str | None = None  # the organiser's reason, when the submission no longer counts

    def to_dict(self) -> dict:
        """JSON-ready dict (times as ISO 8601 strings)."""
        d = asdict(self)
        d["submitted_at"] = self.submitted_at.isoformat()
        d["rescored_at"] = self.rescored_at.isoformat() if self.rescored_at else None
        return d


@dataclass(frozen=True)
class QuotaStatus:
    """A team's use of its daily quota on one UTC day (``limit`` and ``left`` None: no limit)."""

    team: str
    day: date
    used: int
    limit: int | None
    left: int | None
    resets_at: datetime

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {**asdict(self), "day": self.day.isoformat(), "resets_at": self.resets_at.isoformat()}


@dataclass(frozen=True)
class Finalization:
    """What finalize did: the Private leaderboard and every final submission, Private metrics included.

    ``auto_selected`` lists the ids picked for teams that had selected none.
    """

    finalized_at: datetime
    leaderboard: list[LeaderboardRow]
    finals: list[SubmissionRecord]
    auto_selected: list[int]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"finalized_at": self.finalized_at.isoformat(),
                "leaderboard": [r.to_dict() for r in self.leaderboard],
                "finals": [r.to_dict() for r in self.finals], "auto_selected": list(self.auto_selected)}


# -- engine and upgrades ---------------------------------------------------------------------

def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url``; SQLite gets WAL, a busy timeout and explicit BEGINs.

    Transactions begun with :func:`write_transaction` start with ``BEGIN IMMEDIATE`` on
    SQLite, so that a writer holds the write lock from its first read.

    Raises
    ------
    StoreError
        If the URL is malformed or names a database driver that is not installed.
    """
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True)
        engine = create_engine(parsed, connect_args={"timeout": 60})
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:  # ValueError: e.g. a bad port
        raise StoreError(f"cannot use store URL {url!r}: {exc}; expected a SQLAlchemy URL such as "
                         "'sqlite:///path/leaderboard.db' or 'postgresql+psycopg://user@host/db'") from exc
    in_memory = parsed.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        write = conn.get_execution_options().get("ships_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def write_transaction(conn: Connection):
    """Begin a write transaction on ``conn``; SQLite takes its write lock at once.

    On PostgreSQL the caller takes row locks (``SELECT ... FOR UPDATE``) as it goes.
    """
    conn.execution_options(ships_write=True)
    return conn.begin()


def read_version(conn: Connection) -> int:
    """The schema version of the database behind ``conn``; 0 for an empty one.

    Raises
    ------
    StoreError
        If the database holds tables of ours but no schema version (not a ships store).
    """
    insp = inspect(conn)
    # Our tables first, then the version: a migration committed by another process between the two
    # look-ups (PostgreSQL reads each at its own snapshot) then reads as a version, never as a stranger.
    ours = insp.has_table("submissions") or insp.has_table("teams")
    if not insp.has_table("schema_version"):
        if ours:
            raise StoreError("the database has 'teams' or 'submissions' tables but no schema version; "
                             "it is not a ships leaderboard store: point the store URL at a new database")
        return 0
    return int(conn.execute(select(schema_version.c.version)).scalar_one())


def upgrade(engine: Engine, target: int = SCHEMA_VERSION) -> int:
    """Create or migrate the store's schema up to ``target``; returns the version reached.

    Safe when several processes open the same store at once: the migrations run in one
    transaction under SQLite's write lock or a PostgreSQL advisory lock, and the version is
    read again once the lock is held.  A failed migration leaves the store as it was.

    Raises
    ------
    StoreError
        If the store was written by a newer ships (its version is above SCHEMA_VERSION).
    """
    with engine.connect() as conn:
        with conn.begin():
            current = read_version(conn)
        if current == target:
            return current
        with write_transaction(conn):
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            current = read_version(conn)
            if current > SCHEMA_VERSION:
                raise StoreError(f"the store has schema version {current}, newer than this ships "
                                 f"(version {SCHEMA_VERSION}); upgrade ships to use it")
            for version in range(current + 1, target + 1):
                MIGRATIONS[version - 1](conn)
            if current == 0:
                conn.execute(schema_version.insert().values(version=target))
            elif target > current:
                conn.execute(schema_version.update().values(version=target))
            return max(current, target)


# -- queries ----------------------------------------------------------------------------------

_SCORES = tuple(f"{p}_{k}" for p in ("public", "private") for k in ("score", "low", "high"))


def _scored_select(reveal: bool, metrics: bool) -> Select:
    """Submissions with their team and current scores (the latest rescore's, else the original).

    Private columns are selected only if ``reveal``; metric dicts only if ``metrics``.
    """
    s = submissions
    latest = (select(rescores.c.submission_id, func.max(rescores.c.id).label("rid"))
              .group_by(rescores.c.submission_id).subquery("latest"))
    r = rescores.alias("r")
    fields = [f for f in _SCORES if reveal or f.startswith("public")]
    if metrics:
        fields += ["public_metrics"] + (["private_metrics"] if reveal else [])

    def current(name):
        return case((r.c.id.is_(None), s.c[name]), else_=r.c[name]).label(name)

    return (select(s.c.id, teams.c.name.label("team"), teams.c.kind, s.c.submitted_at, *map(current, fields),
                   current("split_hash"), r.c.rescored_at)
            .select_from(s.join(teams, teams.c.id == s.c.team_id)
                         .outerjoin(latest, latest.c.submission_id == s.c.id)
                         .outerjoin(r, r.c.id == latest.c.rid))
            .order_by(s.c.id))


def select_records(*, reveal: bool, team_id: int | None = None, submission_id: int | None = None) -> Select:
    """The SELECT behind :func:`to_record`, filtered to a team or a submission if given."""
    s = submissions
    final = (select(func.count()).select_from(finals).where(finals.c.submission_id == s.c.id)
             .scalar_subquery().label("n_final"))
    reason = (select(invalidations.c.reason).where(invalidations.c.submission_id == s.c.id)
              .scalar_subquery().label("invalidated"))
    query = _scored_select(reveal, metrics=True).add_columns(s.c.file_sha256, s.c.filename, s.c.message, final,
                                                             reason)
    if team_id is not None:
        query = query.where(s.c.team_id == team_id)
    if submission_id is not None:
        query = query.where(s.c.id == submission_id)
    return query


def select_entries(*, reveal: bool) -> Select:
    """The SELECT behind :func:`to_entry`: scores only, no metric dicts (fast for large boards).

    Invalidated submissions are left out: they take no part in any leaderboard.
    """
    gone = select(invalidations.c.submission_id).where(invalidations.c.submission_id == submissions.c.id)
    return _scored_select(reveal, metrics=False).where(~gone.exists())


def select_best_entries(*, greater_is_better: bool) -> Select:
    """Each team's Public entries at its best Public score, with its number of entries and latest time.

    What :func:`leaderboard.ranking.rank_public` needs under ``'score'`` feedback, read in one
    pass however many submissions a team has: the ranking's own key then picks among a team's
    equal best scores.  Columns: those of :func:`select_entries`, then ``n`` and ``last``.
    """
    e = select_entries(reveal=False).subquery("e")
    mine = {"partition_by": e.c.team}
    best = (func.max if greater_is_better else func.min)(e.c.public_score).over(**mine)
    w = select(e, best.label("best"), func.count().over(**mine).label("n"),
               func.max(e.c.submitted_at).over(**mine).label("last")).subquery("w")
    return select(*(c for c in w.c if c.name != "best")).where(w.c.public_score == w.c.best).order_by(w.c.id)


def to_entry(row: Row, reveal: bool) -> Entry:
    """A ranking entry from a row of :func:`select_entries`."""
    return Entry(row.id, row.team, row.kind, row.submitted_at, *(row[4:10] if reveal else row[4:7]))


def to_record(row: Row, reveal: bool) -> SubmissionRecord:
    """A submission record from a row of :func:`select_records`."""
    m = row._mapping
    private = {k: m[k] for k in ("private_score", "private_low", "private_high")} if reveal else {}
    return SubmissionRecord(
        id=row.id, team=row.team, kind=row.kind, file_sha256=row.file_sha256, filename=row.filename,
        message=row.message, submitted_at=row.submitted_at, split_hash=row.split_hash, public=row.public_metrics,
        public_score=row.public_score, public_low=row.public_low, public_high=row.public_high,
        private=m["private_metrics"] if reveal else None, private_score=private.get("private_score"),
        private_low=private.get("private_low"), private_high=private.get("private_high"),
        final=bool(row.n_final), rescored_at=row.rescored_at, invalidated=row.invalidated,
    )
