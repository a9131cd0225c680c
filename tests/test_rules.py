"""The rules of the competition as data: metric direction, what teams see, quota, finals, deadline, the Ladder."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from competition.errors import ClosedError, ParameterError
from competition.rules import Rules
from leaderboard.ranking import Entry, rank_public

T0 = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
FULL = {"roc_auc": 0.987654321, "roc_auc_low": 0.97123456, "roc_auc_high": 0.99876543, "log_loss": 0.0812345,
        "accuracy": 0.96, "tn": 500, "fp": 3, "fn": 9, "tp": 140}


def test_direction_follows_the_metric():
    assert Rules().greater_is_better and Rules().is_better(0.9, 0.8)
    loss = Rules(metric="log_loss")
    assert not loss.greater_is_better and loss.is_better(0.1, 0.2) and loss.direction == "lower is better"
    assert sorted([0.3, 0.1, 0.2], key=loss.sort_value) == [0.1, 0.2, 0.3]
    assert sorted([0.3, 0.1, 0.2], key=Rules().sort_value) == [0.3, 0.2, 0.1]


def test_before_finalize_a_team_sees_the_primary_metric_rounded_and_nothing_else():
    shown = Rules().shown_metrics(FULL, finalized=False)
    assert shown == {"roc_auc": 0.9877, "roc_auc_low": 0.9712, "roc_auc_high": 0.9988}
    assert Rules(public_precision=2).shown_metrics(FULL, finalized=False)["roc_auc"] == 0.99
    assert Rules(metric="log_loss").shown_metrics(FULL, finalized=False) == {
        "log_loss": 0.0812, "log_loss_low": None, "log_loss_high": None}
    assert Rules().shown_metrics(FULL, finalized=True) == FULL


def test_the_ladder_moves_only_on_a_significant_improvement():
    ladder = Rules(feedback="ladder", ladder_step=0.01)
    assert ladder.shown_scores([0.90, 0.905, 0.93, 0.935, 0.95]) == [0.9, 0.9, 0.93, 0.93, 0.95]
    loss = Rules(metric="log_loss", feedback="ladder", ladder_step=0.01)
    assert loss.shown_scores([0.30, 0.295, 0.25, 0.26]) == [0.3, 0.3, 0.25, 0.25]
    assert Rules().shown_scores([0.123456, None]) == [0.1235, None]


def test_a_ladder_board_ranks_by_the_standing_value():
    """Team b probes with many near-identical submissions: under the Ladder it gains nothing from the noise."""
    def entry(i, team, score, minutes):
        return Entry(i, team, "team", T0 + timedelta(minutes=minutes), score, score - 0.01, score + 0.01)

    records = [entry(1, "a", 0.950, 0), entry(2, "b", 0.949, 1), entry(3, "b", 0.9504, 2), entry(4, "b", 0.9509, 3)]
    by_score = rank_public(records, Rules())
    assert [(r.team, r.submission_id) for r in by_score] == [("b", 4), ("a", 1)]
    by_ladder = rank_public(records, Rules(feedback="ladder", ladder_step=0.005))
    assert [(r.team, r.submission_id, r.score) for r in by_ladder] == [("a", 1, 0.95), ("b", 2, 0.949)]


def test_quota_and_rank_belong_to_teams_not_baselines():
    rules = Rules(daily_quota=3)
    assert rules.quota_for("team") == 3 and rules.quota_for("baseline") is None
    assert rules.is_ranked("team") and not rules.is_ranked("baseline")


def test_deadline_and_finals():
    rules = Rules(deadline=T0, n_finals=1)
    rules.check_open(T0)
    with pytest.raises(ClosedError, match="the deadline passed at 2026-05-01 12:00 UTC"):
        rules.check_open(T0 + timedelta(seconds=1))
    rules.check_finals([7])
    with pytest.raises(ParameterError, match=r"at most 1 final submissions per team; got 2 \(7, 8\)"):
        rules.check_finals([7, 8])


@pytest.mark.parametrize("kwargs, message", [
    ({"metric": "auc"}, "metric='auc' is invalid; expected one of roc_auc, log_loss"),
    ({"feedback": "exact"}, "feedback='exact' is invalid; expected one of score, ladder"),
])
def test_unknown_rules_are_refused(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        Rules(**kwargs)
