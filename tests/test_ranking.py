"""Ranking rules: best per team, ties to the earlier submission, baselines, statistical ties, moves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from leaderboard.ranking import Entry, LeaderboardRow, RankChange, intervals_overlap, rank_changes, rank_private, rank_public

T0 = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


def entry(id, team, score, minutes=0, kind="team", width=0.01, private=None, pwidth=0.01):
    """A submission with a symmetric interval of half-width ``width`` around each score."""
    p = {} if private is None else dict(private_score=private, private_low=private - pwidth,
                                       private_high=private + pwidth)
    return Entry(id=id, team=team, kind=kind, submitted_at=T0 + timedelta(minutes=minutes),
                 public_score=score, public_low=score - width, public_high=score + width, **p)


def test_best_public_per_team_and_counts():
    rows = rank_public([
        entry(1, "a", 0.80, 0), entry(2, "a", 0.90, 5), entry(3, "a", 0.85, 10),
        entry(4, "b", 0.95, 1),
    ])
    assert [(r.rank, r.team, r.submission_id, r.score) for r in rows] == [(1, "b", 4, 0.95), (2, "a", 2, 0.90)]
    a = rows[1]
    assert a.entries == 3
    assert a.last_submitted_at == T0 + timedelta(minutes=10)
    assert (a.score_low, a.score_high) == (pytest.approx(0.89), pytest.approx(0.91))


def test_tie_within_a_team_goes_to_the_earlier_submission():
    rows = rank_public([entry(7, "a", 0.9, minutes=30), entry(3, "a", 0.9, minutes=10)])
    assert rows[0].submission_id == 3


def test_equal_timestamps_fall_back_to_the_lower_id():
    rows = rank_public([entry(9, "a", 0.9), entry(8, "a", 0.9)])
    assert rows[0].submission_id == 8


def test_tie_between_teams_goes_to_the_team_that_reached_the_score_first():
    rows = rank_public([entry(1, "late", 0.9, minutes=60), entry(2, "early", 0.9, minutes=5),
                        entry(3, "late", 0.5, minutes=0)])
    assert [r.team for r in rows] == ["early", "late"]
    assert [r.rank for r in rows] == [1, 2]


def test_baselines_are_shown_in_place_without_taking_a_rank():
    rows = rank_public([entry(1, "a", 0.95), entry(2, "xgboost", 0.90, kind="baseline"), entry(3, "b", 0.85)])
    assert [(r.team, r.kind, r.rank) for r in rows] == [("a", "team", 1), ("xgboost", "baseline", None),
                                                         ("b", "team", 2)]


def test_statistical_ties_compare_with_the_team_ranked_just_above():
    rows = rank_public([
        entry(1, "a", 0.950, width=0.01),   # [0.94, 0.96]
        entry(2, "b", 0.945, width=0.01),   # overlaps a
        entry(3, "c", 0.900, width=0.01),   # [0.89, 0.91]: apart from b
        entry(4, "base", 0.899, kind="baseline", width=0.05),
        entry(5, "d", 0.895, width=0.002),  # [0.893, 0.897]: overlaps c, skipping the baseline
    ])
    assert [(r.team, r.tied) for r in rows] == [("a", False), ("b", True), ("c", False), ("base", False),
                                                 ("d", True)]


def test_touching_intervals_count_as_overlapping():
    assert intervals_overlap((0.8, 0.9), (0.9, 0.95)) is True
    assert intervals_overlap((0.8, 0.9), (0.91, 0.95)) is False
    assert intervals_overlap((None, 0.9), (0.8, 0.9)) is None


def test_without_intervals_only_equal_scores_are_tied():
    def bare(id, team, score, minutes):
        return Entry(id=id, team=team, kind="team", submitted_at=T0 + timedelta(minutes=minutes), public_score=score)

    rows = rank_public([bare(1, "a", 0.9, 0), bare(2, "b", 0.9, 1), bare(3, "c", 0.8, 2)])
    assert [r.tied for r in rows] == [False, True, False]


def test_records_without_a_public_score_are_ignored():
    rows = rank_public([entry(1, "a", 0.9), Entry(2, "b", "team", T0, public_score=None)])
    assert [r.team for r in rows] == ["a"]


def test_private_uses_only_finals_and_reports_moves():
    records = [
        entry(1, "a", 0.95, 0, private=0.80), entry(2, "a", 0.90, 1, private=0.99),  # 2 not a final
        entry(3, "b", 0.90, 2, private=0.85),
        entry(4, "c", 0.85, 3, private=0.90),
        entry(5, "base", 0.99, 0, kind="baseline", private=0.70),
    ]
    rows = rank_private(records, {"a": [1], "b": [3], "c": [4], "base": [5]})
    assert [(r.team, r.rank, r.public_rank, r.move, r.submission_id) for r in rows] == [
        ("c", 1, 3, 2, 4), ("b", 2, 2, 0, 3), ("a", 3, 1, -2, 1), ("base", None, None, None, 5)]
    assert rows[0].score == 0.90


def test_private_best_of_two_finals_ties_to_the_earlier():
    records = [entry(1, "a", 0.9, 10, private=0.8), entry(2, "a", 0.8, 5, private=0.8)]
    rows = rank_private(records, {"a": [1, 2]})
    assert rows[0].submission_id == 2


def test_private_ignores_teams_without_finals():
    rows = rank_private([entry(1, "a", 0.9, private=0.8), entry(2, "b", 0.8, private=0.7)], {"a": [1]})
    assert [r.team for r in rows] == ["a"]


def test_private_statistical_ties_use_private_intervals():
    records = [entry(1, "a", 0.9, 0, private=0.90, pwidth=0.05), entry(2, "b", 0.5, 1, private=0.86, pwidth=0.05)]
    rows = rank_private(records, {"a": [1], "b": [2]})
    assert [r.tied for r in rows] == [False, True]


def test_rank_changes_lists_only_teams_that_moved():
    before = rank_public([entry(1, "a", 0.9), entry(2, "b", 0.8), entry(3, "c", 0.7)])
    after = rank_public([entry(1, "a", 0.9), entry(2, "b", 0.6), entry(3, "c", 0.7), entry(4, "d", 0.5)])
    assert rank_changes(before, after) == [RankChange("c", 3, 2), RankChange("b", 2, 3), RankChange("d", None, 4)]


def test_row_to_dict_is_json_ready():
    row = rank_public([entry(1, "a", 0.9)])[0]
    d = row.to_dict()
    assert d["last_submitted_at"] == T0.isoformat()
    assert d["rank"] == 1 and d["tied"] is False and d["move"] is None
    assert isinstance(row, LeaderboardRow)


def test_paired_ties_see_through_correlated_scores():
    """Two models scored on the same resampled days: their intervals overlap widely, but the
    bootstrap of their difference is tight, so they are not tied; a third, really close, is."""
    import numpy as np

    from leaderboard.ranking import mark_paired_ties

    rng = np.random.default_rng(0)
    shared = rng.normal(0.95, 0.02, 1000)  # what every model gains or loses with the resampled days
    reps = {1: shared + 0.010, 2: shared + rng.normal(0, 0.002, 1000), 3: shared + rng.normal(0, 0.002, 1000)}
    records = [entry(1, "a", 0.960, minutes=0), entry(2, "b", 0.950, minutes=1), entry(3, "c", 0.9499, minutes=2)]
    rows = rank_public(records)
    assert [r.tied for r in rows] == [False, True, True]  # the overlap of the intervals says tied
    paired = mark_paired_ties(rows, reps)
    assert [(r.team, r.tied) for r in paired] == [("a", False), ("b", False), ("c", True)]
    assert mark_paired_ties(rows, {}) == rows  # without replicates the overlap rule stays
