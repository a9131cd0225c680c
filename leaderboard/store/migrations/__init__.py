"""Ordered, frozen migrations of the leaderboard store's schema.

``MIGRATIONS[n - 1]`` brings a store from schema version ``n - 1`` to ``n``.  A migration is
frozen once released: it spells out its own DDL (the ``_vN_tables`` builders) instead of
reusing the current tables, so that an old store is rebuilt step by step exactly as it was.
:func:`leaderboard.store.schema.upgrade` runs them and records the version in the database.

History
-------
1. teams, submissions (with their Public and Private metrics), finals, competition state.
2. rescores (new score rows; a rescore never rewrites a submission); append-only triggers on
   submissions and rescores (SQLite and PostgreSQL); an index for the per-day quota count.
3. invalidations (the organiser's record that a submission no longer counts, with its reason)
   and replicates (each submission's bootstrap replicates of the primary metric, for paired
   tie tests); both append-only. ``competition_state.edits`` counts the organiser's edits (team
   renamed or removed, submission invalidated) so that caches of the leaderboard see them.

To change the schema: add ``_migrate_N`` at the end of :data:`MIGRATIONS`, update the
current tables in :mod:`leaderboard.store.schema`, and extend the migration test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "UTCDateTime", "v1_tables", "v2_tables", "v3_tables"]


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes, stored naive in UTC on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: D102 - SQLAlchemy API
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}; the store takes timezone-aware datetimes")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):  # noqa: D102 - SQLAlchemy API
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL on SQLite
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc)


def _score_columns() -> list[Column]:
    """The primary score with its interval, and every metric as JSON, for Public and Private."""
    cols = []
    for part in ("public", "private"):
        cols += [Column(f"{part}_score", Float), Column(f"{part}_low", Float), Column(f"{part}_high", Float),
                 Column(f"{part}_metrics", JSON, nullable=False)]
    return cols


def v1_tables(md: MetaData) -> dict[str, Table]:
    """The tables of schema version 1, defined on ``md``."""
    t = {}
    t["teams"] = Table(
        "teams", md,
        Column("id", Integer, primary_key=True),
        Column("name", String(64), nullable=False),
        Column("name_key", String(256), nullable=False, unique=True),
        Column("kind", String(16), nullable=False),
        Column("token_hash", String(64), unique=True),
        Column("created_at", UTCDateTime, nullable=False),
        CheckConstraint("kind IN ('team', 'baseline')", name="ck_teams_kind"),
    )
    t["submissions"] = Table(
        "submissions", md,
        Column("id", Integer, primary_key=True),
        Column("team_id", Integer, ForeignKey("teams.id"), nullable=False),
        Column("file_sha256", String(64), nullable=False),
        Column("filename", String(255), nullable=False),
        Column("message", Text, nullable=False),
        Column("submitted_at", UTCDateTime, nullable=False),
        Column("split_hash", String(64), nullable=False),
        *_score_columns(),
    )
    t["finals"] = Table(
        "finals", md,
        Column("team_id", Integer, ForeignKey("teams.id"), primary_key=True),
        Column("submission_id", Integer, ForeignKey("submissions.id"), primary_key=True),
        Column("selected_at", UTCDateTime, nullable=False),
        Column("auto", Boolean, nullable=False),
    )
    t["competition_state"] = Table(
        "competition_state", md,
        Column("id", Integer, primary_key=True),
        Column("finalized_at", UTCDateTime),
    )
    t["schema_version"] = Table("schema_version", md, Column("version", Integer, nullable=False))
    return t


def v2_tables(md: MetaData) -> dict[str, Table]:
    """The tables added by schema version 2, defined on ``md``."""
    rescores = Table(
        "rescores", md,
        Column("id", Integer, primary_key=True),
        Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=False),
        Column("rescored_at", UTCDateTime, nullable=False),
        Column("split_hash", String(64), nullable=False),
        *_score_columns(),
        Index("ix_rescores_submission", "submission_id"),
    )
    return {"rescores": rescores}


def v3_tables(md: MetaData) -> dict[str, Table]:
    """The tables added by schema version 3, defined on ``md``."""
    invalidations = Table(
        "invalidations", md,
        Column("id", Integer, primary_key=True),
        Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=False, unique=True),
        Column("reason", Text, nullable=False),
        Column("invalidated_at", UTCDateTime, nullable=False),
    )
    replicates = Table(
        "replicates", md,
        Column("id", Integer, primary_key=True),
        Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=False),
        Column("part", String(8), nullable=False),
        Column("metric", String(32), nullable=False),
        Column("n", Integer, nullable=False),
        Column("data", LargeBinary, nullable=False),
        CheckConstraint("part IN ('public', 'private')", name="ck_replicates_part"),
        Index("ix_replicates_submission", "submission_id"),
    )
    return {"invalidations": invalidations, "replicates": replicates}


def _migrate_1(conn: Connection) -> None:
    """Create the tables of version 1 and the single competition-state row."""
    md = MetaData()
    tables = v1_tables(md)
    md.create_all(conn)
    conn.execute(tables["competition_state"].insert().values(id=1, finalized_at=None))


_SQLITE_GUARD = ("CREATE TRIGGER {table}_no_{op} BEFORE {OP} ON {table} "
                 "BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END")
_PG_GUARD_FUNCTION = ("CREATE OR REPLACE FUNCTION ships_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$ BEGIN RAISE EXCEPTION '% are append-only', TG_TABLE_NAME; END $$")
_PG_GUARD = ("CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
             "FOR EACH ROW EXECUTE FUNCTION ships_append_only()")


def _migrate_2(conn: Connection) -> None:
    """Add rescores, the quota index, and append-only triggers on submissions and rescores."""
    md = MetaData()
    v1_tables(md)  # referred to by the new foreign keys
    md.create_all(conn, tables=list(v2_tables(md).values()))
    conn.execute(text("CREATE INDEX ix_submissions_team_time ON submissions (team_id, submitted_at)"))
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text(_PG_GUARD_FUNCTION))
    for table in ("submissions", "rescores"):
        if dialect == "sqlite":
            for op in ("update", "delete"):
                conn.execute(text(_SQLITE_GUARD.format(table=table, op=op, OP=op.upper())))
        elif dialect == "postgresql":
            conn.execute(text(_PG_GUARD.format(table=table)))


def _migrate_3(conn: Connection) -> None:
    """Add invalidations and replicates, both append-only, and a counter of the organiser's edits."""
    md = MetaData()
    v1_tables(md)
    md.create_all(conn, tables=list(v3_tables(md).values()))
    conn.execute(text("ALTER TABLE competition_state ADD COLUMN edits INTEGER NOT NULL DEFAULT 0"))
    _append_only(conn, ("invalidations", "replicates"))


def _append_only(conn: Connection, tables: tuple[str, ...]) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text(_PG_GUARD_FUNCTION))
    for table in tables:
        if dialect == "sqlite":
            for op in ("update", "delete"):
                conn.execute(text(_SQLITE_GUARD.format(table=table, op=op, OP=op.upper())))
        elif dialect == "postgresql":
            conn.execute(text(_PG_GUARD.format(table=table)))


MIGRATIONS: list[Callable[[Connection], None]] = [_migrate_1, _migrate_2, _migrate_3]
"""``MIGRATIONS[n - 1]`` upgrades a store from version ``n - 1`` to ``n``."""

SCHEMA_VERSION = len(MIGRATIONS)
