"""The leaderboard store: teams and tokens, submissions, quotas, finals, finalize, append-only, migrations.

Every test runs on SQLite and on a throwaway PostgreSQL server (tests/pg.py); the
PostgreSQL runs skip, saying why, only where no server can be started.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import MetaData, create_engine, event, inspect, select, text

import pg
from competition.errors import AuthError, ParameterError, QuotaError, ShipsError, StoreError
from leaderboard.store import schema
from leaderboard.store.migrations import MIGRATIONS, SCHEMA_VERSION, v1_tables
from competition.rules import Rules
from leaderboard.store import Store

T0 = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
SHA = "ab" * 32
PRIVATE_SENTINEL = 0.123456789  # a Private score that must never show before finalize


def metrics(score: float, width: float = 0.02) -> dict:
    return {"roc_auc": score, "roc_auc_low": score - width, "roc_auc_high": score + width, "log_loss": 0.4,
            "tn": 10, "fp": 2, "fn": 3, "tp": 5, "n": 20}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """A new, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leaderboard.db'}"
    try:
        return pg.get_server().new_database()
    except pg.PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL server unavailable: {exc}")


@pytest.fixture
def store(store_url):
    with Store.open(store_url) as s:
        yield s


UNLIMITED = 10**9


def with_quota(store, quota):
    """The store under rules with this daily quota (None: practically unlimited)."""
    store.rules = Rules(daily_quota=UNLIMITED if quota is None else quota)
    return store


def submit(store, team, score, at=T0, private=None, quota=None, message=""):
    return with_quota(store, quota).add_submission(
        team=team, file_sha256=SHA, filename="sub.csv", message=message, public=metrics(score),
        private=metrics(score - 0.05 if private is None else private), split_hash="split1", submitted_at=at)


# -- teams -------------------------------------------------------------------------------------

def test_add_team_returns_a_token_that_identifies_the_team(store):
    token = store.add_team("Harbour Watch")
    other = store.add_team("Bay Spotters")
    assert len(token) >= 40 and token != other
    assert store.team_for_token(token) == "Harbour Watch"
    assert store.team_for_token(other) == "Bay Spotters"
    assert [(t.name, t.kind, t.has_token) for t in store.list_teams()] == [
        ("Harbour Watch", "team", True), ("Bay Spotters", "team", True)]


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 43])
def test_wrong_or_missing_token_is_refused(store, token):
    store.add_team("a")
    with pytest.raises(AuthError, match="team token"):
        store.team_for_token(token)


def test_token_is_stored_only_as_a_hash(tmp_path):
    path = tmp_path / "leaderboard.db"
    with Store.open(f"sqlite:///{path}") as store:
        token = store.add_team("alpha")
        store.team_for_token(token)
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("leaderboard.db"))
    assert b"alpha" in data  # the file is readable as it is: the check below is meaningful
    assert token.encode() not in data
    import hashlib

    assert hashlib.sha256(token.encode()).hexdigest().encode() in data


def test_token_is_not_in_any_column(store):
    token = store.add_team("alpha")
    with store._engine.connect() as conn:
        rows = conn.execute(select(schema.teams)).all()
    assert token not in repr(rows)


@pytest.mark.parametrize("name, message", [
    ("", "expected 1 to 64 characters, got 0 characters"),
    ("x" * 65, "expected 1 to 64 characters, got 65 characters"),
    ("tab\there", "character '\\t' is not printable"),
    ("new\nline", "character '\\n' is not printable"),
    (" padded", "remove the leading or trailing spaces"),
    ("padded ", "remove the leading or trailing spaces"),
    (42, "got int"),
])
def test_invalid_team_names_are_refused(store, name, message):
    with pytest.raises(ParameterError) as info:
        store.add_team(name)
    assert message in str(info.value)


def test_team_names_are_unique_ignoring_case(store):
    store.add_team("Alpha")
    for clash in ("alpha", "ALPHA", "ＡＬＰＨＡ"):  # the last is full-width (NFKC)
        with pytest.raises(StoreError, match=r"team name .* is taken \(by 'Alpha'"):
            store.add_team(clash)
    assert store.team("aLpHa").name == "Alpha"


def test_names_with_markup_are_stored_verbatim(store):
    name = "<script>alert('x')</script> & [bold]co[/bold]"
    token = store.add_team(name)
    assert store.team_for_token(token) == name
    submit(store, name, 0.8)
    assert store.submissions()[0].team == name
    assert store.leaderboard()[0].team == name


def test_ensure_team_creates_without_a_token_and_is_idempotent(store):
    team = store.ensure_team("xgboost", kind="baseline")
    assert (team.name, team.kind, team.has_token) == ("xgboost", "baseline", False)
    assert store.ensure_team("XGBoost", kind="baseline").name == "xgboost"
    assert len(store.list_teams()) == 1
    with pytest.raises(StoreError, match="'xgboost' is a 'baseline', not a 'team'"):
        store.ensure_team("xgboost", kind="team")
    with pytest.raises(ParameterError, match="kind='judge' is invalid"):
        store.ensure_team("new", kind="judge")


def test_reset_token_replaces_the_old_one(store):
    old = store.add_team("alpha")
    new = store.reset_token("ALPHA")
    assert store.team_for_token(new) == "alpha"
    with pytest.raises(AuthError):
        store.team_for_token(old)


def test_unknown_team_is_an_error_everywhere(store):
    with pytest.raises(StoreError, match="unknown team 'ghost'"):
        submit(store, "ghost", 0.8)
    for call in (lambda: store.team("ghost"), lambda: store.submissions("ghost"),
                 lambda: store.quota_status("ghost", T0), lambda: store.select_finals("ghost", [1])):
        with pytest.raises(StoreError, match="unknown team 'ghost'"):
            call()


# -- submissions -------------------------------------------------------------------------------

def test_add_submission_stores_both_parts_but_returns_public_only(store):
    store.add_team("alpha")
    rec = submit(store, "ALPHA", 0.8, private=PRIVATE_SENTINEL, message="first try")
    assert (rec.id, rec.team, rec.kind, rec.message, rec.filename) == (1, "alpha", "team", "first try", "sub.csv")
    assert rec.public == metrics(0.8)
    assert (rec.public_score, rec.public_low, rec.public_high) == (0.8, pytest.approx(0.78), pytest.approx(0.82))
    assert rec.private is None and rec.private_score is None and rec.private_low is None
    assert rec.submitted_at == T0 and rec.split_hash == "split1" and rec.rescored_at is None


def test_private_scores_never_leave_the_store_before_finalize(store):
    store.add_team("alpha")
    submit(store, "alpha", 0.8, private=PRIVATE_SENTINEL)
    needle = str(PRIVATE_SENTINEL)[:8]
    shown = [r.to_dict() for r in store.submissions()] + [store.submission(1).to_dict()]
    shown += [r.to_dict() for r in store.leaderboard()] + [store.quota_status("alpha", T0).to_dict()]
    assert needle not in json.dumps(shown)
    with pytest.raises(StoreError, match="Private leaderboard is hidden until the competition is finalized"):
        store.leaderboard(private=True)
    store.finalize(now=T0 + timedelta(days=1))
    assert store.submission(1).private_score == PRIVATE_SENTINEL
    assert store.leaderboard(private=True)[0].score == PRIVATE_SENTINEL


def test_metric_values_are_made_json_safe(store):
    store.add_team("alpha")
    public = {**metrics(0.8), "roc_auc": np.float32(0.75), "tp": np.int64(4), "precision": float("nan"),
              "curve": np.array([0.1, 0.2])}
    rec = store.add_submission(team="alpha", file_sha256=SHA, filename="a.csv", message="", public=public,
                               private=metrics(0.7), split_hash="s", submitted_at=T0)
    assert rec.public_score == pytest.approx(0.75)
    assert rec.public["tp"] == 4 and rec.public["precision"] is None
    assert rec.public["curve"] == [pytest.approx(0.1), pytest.approx(0.2)]


@pytest.mark.parametrize("change, message", [
    ({"file_sha256": "xyz"}, "file_sha256='xyz' is invalid; expected 64 lowercase hex digits"),
    ({"submitted_at": datetime(2024, 5, 1)}, "submitted_at=datetime.datetime(2024, 5, 1, 0, 0) is invalid; "
                                             "expected a timezone-aware datetime"),
    ({"public": {"log_loss": 0.3}}, "public metrics are invalid: expected a finite 'roc_auc', got None"),
    ({"private": {"roc_auc": float("nan")}}, "private metrics are invalid: expected a finite 'roc_auc', got nan"),
    ({"filename": "x" * 256}, "filename is invalid: expected a string of at most 255 characters, got 256"),
])
def test_bad_submission_arguments_are_parameter_errors(store, change, message):
    store.add_team("alpha")
    args = dict(team="alpha", file_sha256=SHA, filename="a.csv", message="", public=metrics(0.8),
                private=metrics(0.7), split_hash="s", submitted_at=T0)
    with pytest.raises(ParameterError) as info:
        store.add_submission(**{**args, **change})
    assert message in str(info.value)
    assert store.submissions() == []


def test_submission_lookup(store):
    store.add_team("alpha")
    store.add_team("beta")
    submit(store, "alpha", 0.8)
    submit(store, "beta", 0.7, at=T0 + timedelta(seconds=1))
    assert [r.id for r in store.submissions()] == [1, 2]
    assert [r.id for r in store.submissions("BETA")] == [2]
    assert store.submission(2).team == "beta"
    with pytest.raises(StoreError, match="no submission 99"):
        store.submission(99)


# -- quotas ------------------------------------------------------------------------------------

def test_quota_counts_valid_submissions_per_utc_day(store):
    store.add_team("alpha")
    late = datetime(2024, 5, 1, 23, 59, 59, tzinfo=timezone.utc)
    for i in range(3):
        submit(store, "alpha", 0.8, at=late - timedelta(hours=i), quota=3)
    with pytest.raises(QuotaError) as info:
        submit(store, "alpha", 0.9, at=late, quota=3)
    assert str(info.value) == ("team 'alpha' has used its 3 submissions for 2024-05-01 (UTC); "
                               "the quota resets at 2024-05-02 00:00 UTC")
    assert isinstance(info.value, StoreError)
    # One second later is a new UTC day, whatever the local zone of the clock.
    paris = timezone(timedelta(hours=2))
    submit(store, "alpha", 0.9, at=datetime(2024, 5, 2, 2, 0, 0, tzinfo=paris), quota=3)
    assert len(store.submissions("alpha")) == 4


def test_quota_status_reports_use_and_reset_time(store):
    store.add_team("alpha")
    submit(store, "alpha", 0.8, at=T0, quota=5)
    submit(store, "alpha", 0.8, at=T0 - timedelta(days=1), quota=5)  # yesterday: not counted
    q = store.quota_status("Alpha", now=T0 + timedelta(hours=3))
    assert (q.team, q.used, q.limit, q.left) == ("alpha", 1, 5, 4)
    assert q.resets_at == datetime(2024, 5, 2, tzinfo=timezone.utc)
    assert q.to_dict()["day"] == "2024-05-01"



def test_baselines_and_no_quota_are_unlimited(store):
    store.ensure_team("dummy", kind="baseline")
    store.add_team("alpha")
    for i in range(4):
        submit(store, "dummy", 0.5, at=T0 + timedelta(minutes=i), quota=1)
        submit(store, "alpha", 0.6, at=T0 + timedelta(minutes=i), quota=None)
    assert with_quota(store, 1).quota_status("dummy", now=T0).limit is None
    assert len(store.submissions()) == 8


def test_concurrent_submissions_never_exceed_the_quota(store_url):
    with Store.open(store_url) as setup:
        setup.add_team("alpha")
    accepted, refused, errors = [], [], []

    def worker():
        with Store.open(store_url) as s:
            for _ in range(5):
                try:
                    accepted.append(submit(s, "alpha", 0.8, quota=6).id)
                except QuotaError:
                    refused.append(1)
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert (len(accepted), len(refused)) == (6, 34)
    with Store.open(store_url) as s:
        assert sorted(r.id for r in s.submissions()) == sorted(accepted)


# -- finals and finalize ----------------------------------------------------------------------

@pytest.fixture
def three_teams(store):
    """alpha 1..3, beta 4..5, and a baseline 6."""
    for name in ("alpha", "beta"):
        store.add_team(name)
    store.ensure_team("dummy", kind="baseline")
    for i, (team, pub, priv) in enumerate([("alpha", 0.80, 0.90), ("alpha", 0.90, 0.70), ("alpha", 0.90, 0.60),
                                           ("beta", 0.85, 0.80), ("beta", 0.70, 0.95), ("dummy", 0.50, 0.50)]):
        submit(store, team, pub, at=T0 + timedelta(minutes=i), private=priv)
    return store


def test_select_finals_own_submissions_at_most_two(three_teams):
    store = three_teams
    chosen = store.select_finals("alpha", [1, 3])
    assert [r.id for r in chosen] == [1, 3] and all(r.final for r in chosen)
    assert store.final_ids() == {"alpha": [1, 3]}
    store.select_finals("alpha", [2])  # replaces the earlier choice
    assert store.final_ids() == {"alpha": [2]}
    assert [r.id for r in store.submissions() if r.final] == [2]
    with pytest.raises(ParameterError, match=r"at most 2 final submissions per team; got 3 \(1, 2, 3\)"):
        store.select_finals("alpha", [1, 2, 3])
    with pytest.raises(StoreError, match="submission 4 belongs to team 'beta', not 'alpha'"):
        store.select_finals("alpha", [1, 4])
    with pytest.raises(StoreError, match="no submission 42"):
        store.select_finals("alpha", [42])
    assert store.final_ids() == {"alpha": [2]}  # failed selections changed nothing
    store.select_finals("alpha", [])
    assert store.final_ids() == {}


def test_finalize_picks_two_best_public_for_teams_that_chose_none(three_teams):
    store = three_teams
    store.select_finals("beta", [5])
    result = store.finalize(now=T0 + timedelta(days=1))
    # alpha: 2 and 3 tie at 0.90; both beat 1 (0.80). dummy: its only one.
    assert sorted(result.auto_selected) == [2, 3, 6]
    assert store.final_ids() == {"alpha": [2, 3], "beta": [5], "dummy": [6]}
    assert [(r.team, r.rank, r.score, r.public_rank, r.move) for r in result.leaderboard] == [
        ("beta", 1, 0.95, 2, 1), ("alpha", 2, 0.70, 1, -1), ("dummy", None, 0.50, None, None)]
    finals = {r.id: r for r in result.finals}
    assert sorted(finals) == [2, 3, 5, 6]
    assert finals[5].private == metrics(0.95) and finals[5].team == "beta"
    assert result.finalized_at == T0 + timedelta(days=1) == store.finalized_at()
    assert store.is_finalized()
    assert result.to_dict()["leaderboard"][0]["team"] == "beta"


def test_finalize_ties_for_auto_finals_go_to_the_earlier(store):
    store.add_team("alpha")
    for i in range(3):
        submit(store, "alpha", 0.9, at=T0 + timedelta(minutes=10 - i))  # ids 1..3, latest first
    assert sorted(store.finalize(now=T0 + timedelta(days=1)).auto_selected) == [2, 3]


def test_after_finalize_everything_is_closed(three_teams):
    store = three_teams
    store.finalize(now=T0 + timedelta(days=1))
    with pytest.raises(StoreError, match="the competition was finalized at 2024-05-02 12:00 UTC; "
                                         "submissions and final selections are closed"):
        submit(store, "alpha", 0.99, at=T0 + timedelta(days=2))
    with pytest.raises(StoreError, match="final selections are closed"):
        store.select_finals("alpha", [1])
    with pytest.raises(StoreError, match="finalized at"):
        store.finalize()
    assert len(store.submissions()) == 6


def test_finalize_with_no_submissions_gives_an_empty_board(store):
    assert store.finalize(now=T0).leaderboard == []
    assert store.leaderboard(private=True) == []


def test_public_leaderboard_from_the_store(three_teams):
    rows = three_teams.leaderboard()
    assert [(r.team, r.rank, r.submission_id, r.entries) for r in rows] == [
        ("alpha", 1, 2, 3), ("beta", 2, 4, 2), ("dummy", None, 6, 1)]


def test_revision_changes_with_the_leaderboard(three_teams):
    store = three_teams
    before = store.revision()
    assert store.revision() == before
    submit(store, "beta", 0.99, at=T0 + timedelta(hours=1))
    after = store.revision()
    assert after != before
    store.finalize(now=T0 + timedelta(days=1))
    assert store.revision() != after


def test_finalize_waits_for_a_submission_in_flight(store_url):
    with Store.open(store_url) as setup:
        setup.add_team("alpha")
    slow, fast = Store.open(store_url), Store.open(store_url)
    inserted = threading.Event()

    def pause_after_insert(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO SUBMISSIONS"):
            inserted.set()
            time.sleep(1.0)  # the transaction is open, not yet committed

    event.listen(slow._engine, "after_cursor_execute", pause_after_insert)
    worker = threading.Thread(target=submit, args=(slow, "alpha", 0.8))
    worker.start()
    assert inserted.wait(30)
    started = time.monotonic()
    result = fast.finalize()
    worker.join()
    assert time.monotonic() - started > 0.5  # finalize waited for the commit...
    assert [r.id for r in result.finals] == [1]  # ...and saw the submission
    slow.close()
    fast.close()


def test_cached_leaderboard_follows_changes_made_elsewhere(three_teams, store_url):
    reader = three_teams
    assert reader.leaderboard()[0].team == "alpha"
    assert reader.leaderboard() == reader.leaderboard()  # served from the cache
    with Store.open(store_url) as writer:  # another process, in effect
        submit(writer, "beta", 0.97, at=T0 + timedelta(hours=1))
    assert reader.leaderboard()[0].team == "beta"
    with Store.open(store_url) as writer:
        writer.add_rescore(7, public=metrics(0.1), private=metrics(0.1), split_hash="s2")
    assert reader.leaderboard()[0].team == "alpha"
    with Store.open(store_url) as writer:
        writer.finalize(now=T0 + timedelta(days=1))
    assert reader.leaderboard(private=True)[0].team == "beta"


# -- append-only and rescores -----------------------------------------------------------------

@pytest.mark.parametrize("sql", ["UPDATE submissions SET public_score = 1.0",
                                 "DELETE FROM submissions",
                                 "UPDATE rescores SET public_score = 1.0",
                                 "DELETE FROM rescores"])
def test_database_refuses_to_rewrite_or_delete_scores(three_teams, sql):
    store = three_teams
    store.add_rescore(1, public=metrics(0.5), private=metrics(0.5), split_hash="split2", rescored_at=T0)
    with pytest.raises(Exception, match="append-only"):
        with store._engine.begin() as conn:
            conn.execute(text(sql))
    assert len(store.submissions()) == 6


def test_store_has_no_update_or_delete_api_for_submissions():
    public = {n for n in dir(Store) if not n.startswith("_")}
    # remove_team removes only a team without submissions (see below); nothing rewrites a submission
    assert {n for n in public if any(w in n for w in ("delete", "remove", "update", "edit", "drop"))} == {"remove_team"}


def test_rename_keeps_token_submissions_and_finals(store):
    token = store.add_team("alpha")
    submit(store, "alpha", 0.8)
    store.select_finals("alpha", [1])
    before = store.revision()
    store.rename_team("ALPHA", "Harbour Watch")
    assert store.team_for_token(token) == "Harbour Watch" and store.revision() != before
    assert [r.team for r in store.submissions()] == ["Harbour Watch"] and store.final_ids() == {"Harbour Watch": [1]}
    assert [r.team for r in store.leaderboard()] == ["Harbour Watch"]
    store.add_team("beta")
    with pytest.raises(StoreError, match="team name 'BETA' is taken"):
        store.rename_team("Harbour Watch", "BETA")
    with pytest.raises(ParameterError, match="is not printable"):
        store.rename_team("beta", "be\x1bta")


def test_remove_only_a_team_without_submissions(store):
    store.add_team("typo")
    store.add_team("alpha")
    submit(store, "alpha", 0.8)
    store.remove_team("TYPO")
    assert [t.name for t in store.list_teams()] == ["alpha"]
    with pytest.raises(StoreError, match="has 1 submission, which are kept .* invalidate them"):
        store.remove_team("alpha")
    assert len(store.submissions()) == 1


def test_an_invalidated_submission_leaves_the_boards_and_cannot_be_a_final(store):
    store.add_team("alpha")
    store.add_team("beta")
    submit(store, "alpha", 0.95)
    submit(store, "alpha", 0.80, at=T0 + timedelta(minutes=1))
    submit(store, "beta", 0.90, at=T0 + timedelta(minutes=2))
    assert [(r.team, r.submission_id) for r in store.leaderboard()] == [("alpha", 1), ("beta", 3)]
    store.select_finals("alpha", [1])
    record = store.invalidate(1, "predictions copied from another team", now=T0 + timedelta(hours=1))
    assert store.final_ids() == {}  # an invalidated submission is no longer a final
    assert record.invalidated == "predictions copied from another team"
    assert [(r.team, r.submission_id) for r in store.leaderboard()] == [("beta", 3), ("alpha", 2)]
    assert store.submission(1).public_score == 0.95  # the submission itself is kept as it was
    with pytest.raises(StoreError, match="submission 1 was invalidated by the organiser"):
        store.select_finals("alpha", [1])
    with pytest.raises(StoreError, match="invalidated already"):
        store.invalidate(1, "again")
    with pytest.raises(StoreError, match="needs a reason"):
        store.invalidate(2, "   ")
    final = store.finalize(now=T0 + timedelta(days=1))
    assert 1 not in final.auto_selected and 2 in final.auto_selected
    assert store.invalidated_ids() == {1: "predictions copied from another team"}


def test_rescore_adds_a_row_and_keeps_the_original(three_teams):
    store = three_teams
    assert store.add_rescore(1, public=metrics(0.80), private=metrics(0.90), split_hash="split1") is False
    assert store.add_rescore(1, public=metrics(0.99), private=metrics(0.10), split_hash="split1",
                             rescored_at=T0 + timedelta(hours=2)) is True
    rec = store.submission(1)
    assert (rec.public_score, rec.private, rec.rescored_at) == (0.99, None, T0 + timedelta(hours=2))
    assert store.leaderboard()[0].submission_id == 1
    with store._engine.connect() as conn:
        original = conn.execute(select(schema.submissions.c.public_score).where(schema.submissions.c.id == 1))
        assert original.scalar_one() == 0.80
    with pytest.raises(StoreError, match="no submission 77"):
        store.add_rescore(77, public=metrics(0.5), private=metrics(0.5), split_hash="s")


# -- schema and migrations --------------------------------------------------------------------

def test_migrations_build_the_current_schema(store_url):
    with Store.open(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        with store._engine.connect() as conn:
            insp = inspect(conn)
            for table in schema.metadata.sorted_tables:
                columns = {c["name"] for c in insp.get_columns(table.name)}
                assert columns == set(table.c.keys()), table.name
            assert {"ix_submissions_team_time"} <= {i["name"] for i in insp.get_indexes("submissions")}


def test_concurrent_first_opens_create_the_schema_once(store_url):
    versions, errors = [], []
    start = threading.Barrier(8)

    def open_store():
        start.wait()
        try:
            with Store.open(store_url) as s:
                versions.append(s.schema_version())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=open_store) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and versions == [SCHEMA_VERSION] * 8
    with Store.open(store_url) as store, store._engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM competition_state")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM schema_version")).scalar_one() == 1


def test_old_store_is_upgraded_without_losing_rows(store_url):
    engine = schema.make_engine(store_url)
    assert schema.upgrade(engine, target=1) == 1
    v1 = v1_tables(MetaData())
    with engine.begin() as conn:
        conn.execute(v1["teams"].insert().values(id=1, name="Old Team", name_key="old team", kind="team",
                                                 token_hash="0" * 64, created_at=T0))
        conn.execute(v1["submissions"].insert().values(
            id=1, team_id=1, file_sha256=SHA, filename="old.csv", message="from v1", submitted_at=T0,
            split_hash="s", public_score=0.7, public_low=0.6, public_high=0.8, public_metrics=metrics(0.7),
            private_score=0.65, private_low=0.6, private_high=0.7, private_metrics=metrics(0.65)))
        conn.execute(v1["finals"].insert().values(team_id=1, submission_id=1, selected_at=T0, auto=False))
        assert not inspect(conn).has_table("rescores")
    engine.dispose()
    with Store.open(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        rec = store.submission(1)
        assert (rec.team, rec.message, rec.public_score, rec.final) == ("Old Team", "from v1", 0.7, True)
        assert store.add_rescore(1, public=metrics(0.75), private=metrics(0.7), split_hash="s") is True
        with pytest.raises(Exception, match="append-only"), store._engine.begin() as conn:
            conn.execute(text("DELETE FROM submissions"))
        assert store.finalize(now=T0).leaderboard[0].score == 0.7


def test_store_from_a_newer_ships_is_refused(store_url):
    Store.open(store_url).close()
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(StoreError, match=f"schema version 99, newer than this ships \\(version {SCHEMA_VERSION}\\)"):
        Store.open(store_url)


def test_foreign_database_is_refused(store_url):
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE teams (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StoreError, match="not a ships leaderboard store"):
        Store.open(store_url)


@pytest.mark.parametrize("url, message", [
    ("not a url", "cannot use store URL 'not a url'"),
    ("nosuchdb://x/y", "cannot use store URL 'nosuchdb://x/y'"),
])
def test_bad_store_urls(url, message):
    with pytest.raises(StoreError, match=message):
        Store.open(url)


def test_unreachable_store_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="cannot open the store at"):
        Store.open(f"sqlite:///{tmp_path}/no/such/dir/lb.db")


def test_store_errors_are_ships_errors():
    assert issubclass(StoreError, ShipsError) and issubclass(QuotaError, StoreError)
    assert issubclass(AuthError, StoreError)


def test_a_lower_is_better_metric_ranks_lowest_first(store_url):
    """The store ranks and picks finals by the rules' metric and its direction (log_loss: lower wins)."""
    def scored(loss):
        return {"log_loss": loss, "log_loss_low": loss - 0.01, "log_loss_high": loss + 0.01, "roc_auc": 1 - loss}

    with Store.open(store_url, Rules(metric="log_loss", n_finals=1)) as store:
        for team in ("alpha", "beta"):
            store.add_team(team)
        for team, loss, minutes in (("alpha", 0.30, 0), ("alpha", 0.10, 1), ("beta", 0.20, 2), ("beta", 0.50, 3)):
            store.add_submission(team=team, file_sha256=SHA, filename="a.csv", message="", public=scored(loss),
                                 private=scored(loss), split_hash="s", submitted_at=T0 + timedelta(minutes=minutes))
        board = store.leaderboard()
        assert [(r.team, r.score) for r in board] == [("alpha", 0.10), ("beta", 0.20)]
        final = store.finalize(now=T0 + timedelta(days=1))
        assert sorted(final.auto_selected) == [2, 3]  # each team's one best (lowest) Public loss


def test_the_board_marks_ties_by_the_paired_bootstrap_of_stored_replicates(store):
    rng = np.random.default_rng(1)
    shared = rng.normal(0.9, 0.03, 500)
    for team, shift, minutes in (("alpha", 0.02, 0), ("beta", 0.0, 1), ("gamma", -0.0001, 2)):
        store.add_team(team)
        store.add_submission(team=team, file_sha256=SHA, filename="s.csv", message="",
                             public=metrics(0.9 + shift, width=0.06), private=metrics(0.9),
                             split_hash="s", submitted_at=T0 + timedelta(minutes=minutes),
                             replicates={"public": shared + shift + rng.normal(0, 0.001, 500), "private": shared})
    rows = store.leaderboard()
    assert [(r.team, r.tied) for r in rows] == [("alpha", False), ("beta", False), ("gamma", True)]


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss"])
def test_the_board_read_from_each_teams_best_entries_is_the_full_ranking(store_url, metric, monkeypatch):
    """The store reads only each team's entries at its best score (a window query); the board must be
    exactly the ranking of every entry: equal scores (the earlier wins), rescores, invalidations, baselines."""
    from leaderboard import ranking
    from leaderboard.store import finals as board_module

    rules = Rules(metric=metric, daily_quota=1000)
    store = Store.open(store_url, rules)
    rng = np.random.default_rng(5)
    for i in range(12):
        store.add_team(f"team {i}")
    store.ensure_team("a baseline", kind="baseline")
    names = [f"team {i}" for i in range(12)] + ["a baseline"]
    ids = []

    def m(score):  # the same ordering read either way: log loss falls as ROC AUC rises
        loss = round(1.0 - score, 6)
        return {**metrics(score, 0.01), "log_loss": loss, "log_loss_low": loss - 0.01, "log_loss_high": loss + 0.01}

    for k in range(120):
        score = float(rng.choice([0.81, 0.9, 0.95, 0.97])) if k % 3 else float(rng.uniform(0.5, 0.99))
        record = store.add_submission(team=names[int(rng.integers(len(names)))], file_sha256=f"{k:064x}",
                                      filename="s.csv", message="", public=m(score),
                                      private=m(score), split_hash="s",
                                      submitted_at=T0 + timedelta(minutes=int(rng.integers(0, 3)) * 10 + k // 50))
        ids.append(record.id)
    for sid in rng.choice(ids, 10, replace=False):
        store.add_rescore(int(sid), public=m(float(rng.choice([0.9, 0.97, 0.99]))), private=m(0.9),
                          split_hash="s2")
    for sid in rng.choice(ids, 8, replace=False):
        if not store.submission(int(sid)).invalidated:
            store.invalidate(int(sid), "found leaking")
    with store._read() as conn:
        everything = ranking.rank_public(store._entries(conn, reveal=False), rules)
    def rows(board):
        return [(r.rank, r.team, r.submission_id, r.score, r.entries, r.last_submitted_at) for r in board]

    fresh = Store.open(store_url, rules)  # a process that has never read the board: the window query
    assert rows(fresh.leaderboard()) == rows(everything)
    assert len({r.score for r in everything}) < len(everything)  # equal best scores were there to break
    # A process that read the board, then more submissions from elsewhere: merged from the new rows alone.
    monkeypatch.setattr(board_module, "select_best_entries", lambda **kw: pytest.fail("read every team's entries again"))
    for k in range(6):
        store.add_submission(team=names[k], file_sha256=f"{1000 + k:064x}", filename="s.csv", message="",
                             public=m(0.97 if k % 2 else 0.999), private=m(0.9), split_hash="s",
                             submitted_at=T0 + timedelta(hours=1))
        with store._read() as conn:
            everything = ranking.rank_public(store._entries(conn, reveal=False), rules)
        assert rows(fresh.leaderboard()) == rows(everything)
        row = next(r for r in everything if r.team == names[k])
        assert fresh.standing(names[k]) == (row.rank, row.submission_id)
    fresh.close()
    store.close()


def test_writers_of_one_process_queue_and_give_up_with_one_message(tmp_path):
    """On SQLite the threads of a process take turns on a lock of their own before SQLite's: one that
    cannot get its turn within the busy timeout is told the store is busy, and nothing is written."""
    from competition.errors import StoreUnavailableError

    store = Store.open(f"sqlite:///{tmp_path / 'leaderboard.db'}", busy_timeout=0.2)
    holding, release = threading.Event(), threading.Event()

    def hold():
        with store._write():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(10)
        with pytest.raises(StoreUnavailableError, match="busy with other writes for 0.2 s; nothing was changed"):
            store.add_team("alpha")
    finally:
        release.set()
        thread.join(10)
    assert store.list_teams() == [] and store.add_team("alpha")
    store.close()


def test_a_board_is_built_from_one_snapshot(store_url, monkeypatch):
    """A submission committed by another process between the store's reading of the revision and of the
    entries must not be counted into a board cached under the older revision (PostgreSQL gives each
    statement of a READ COMMITTED transaction its own snapshot: reads run REPEATABLE READ)."""
    from leaderboard import ranking

    rules = Rules(daily_quota=100)
    reader, writer = Store.open(store_url, rules), Store.open(store_url, rules)
    writer.add_team("alpha")
    writer.add_submission(team="alpha", file_sha256="0" * 64, filename="s.csv", message="", public=metrics(0.8),
                          private=metrics(0.8), split_hash="s", submitted_at=T0)
    reader.leaderboard()  # the incremental state starts here
    original, sneaked, calls = reader._revision_parts, [], []

    def parts_then_a_commit(conn):
        parts = original(conn)
        calls.append(1)
        if len(calls) == 2:  # the board's own reading of the revision, just before it reads the entries
            sneaked.append(writer.add_submission(team="alpha", file_sha256="1" * 64, filename="s.csv", message="",
                                                 public=metrics(0.9), private=metrics(0.9), split_hash="s",
                                                 submitted_at=T0 + timedelta(minutes=1)))
        return parts

    writer.add_submission(team="alpha", file_sha256="2" * 64, filename="s.csv", message="", public=metrics(0.7),
                          private=metrics(0.7), split_hash="s", submitted_at=T0 + timedelta(minutes=2))
    monkeypatch.setattr(reader, "_revision_parts", parts_then_a_commit)
    reader.leaderboard()
    monkeypatch.undo()
    [row] = reader.leaderboard()
    assert sneaked and (row.entries, row.submission_id, row.score) == (3, sneaked[0].id, 0.9)
    with writer._read() as conn:
        assert [(r.entries, r.submission_id) for r in ranking.rank_public(writer._entries(conn, reveal=False))] == \
            [(3, sneaked[0].id)]
    reader.close()
    writer.close()
