"""The ranking logic of benchmarks/bench_ranks.py, on synthetic predictions (no model is fitted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from competition.rules import Rules
from leaderboard.submit import score_parts as project_score_parts

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ranks.py"
_spec = importlib.util.spec_from_file_location("bench_ranks", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_ranks"] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)

N_BOOTSTRAP, SEED = 400, 3


@pytest.fixture(scope="module")
def data():
    """600 chips on 30 days, a quarter ships, split Public/Private like a solution file."""
    rng = np.random.default_rng(0)
    groups = np.repeat([f"day{k:02d}" for k in range(30)], 20).astype(object)
    y = (rng.random(600) < 0.25).astype(np.int64)
    usage = np.where(rng.random(600) < 0.3, "Public", "Private").astype(object)
    return SimpleNamespace(y=y, groups=groups, usage=usage, rng=rng)


def _model(data, k: int, label: str, noise: float, shrink: float = 1.0, draw: int | None = None) -> "bench.Scored":
    """Submission ``k``: logits are the label plus noise (more noise: worse; ``draw`` seeds it, default ``k``),
    times ``shrink`` (above 1: overconfident)."""
    rng = np.random.default_rng(k if draw is None else draw)
    logit = shrink * (4.0 * (data.y - 0.5) + noise * rng.normal(size=len(data.y)))
    proba = 1.0 / (1.0 + np.exp(-logit))
    reports = bench.score_parts(data.y, proba, data.usage, data.groups, n_bootstrap=N_BOOTSTRAP, seed=SEED)
    return bench.Scored(k, label, reports)


def test_score_parts_pairs_as_the_submission_path(data):
    """The benchmark scores a part exactly as leaderboard.submit.score_parts does (same resamples)."""
    proba = np.random.default_rng(1).random(len(data.y))
    ws = SimpleNamespace(config=SimpleNamespace(n_bootstrap=N_BOOTSTRAP, seed=SEED), rules=Rules(metric="log_loss"))
    solution = SimpleNamespace(y_true=data.y, usage=data.usage, groups=data.groups)
    ours = bench.score_parts(data.y, proba, data.usage, data.groups, n_bootstrap=N_BOOTSTRAP, seed=SEED)
    theirs = project_score_parts(ws, solution, proba)
    for part in bench.PARTS:
        assert ours[part].metrics["log_loss"] == theirs[part.capitalize()]["log_loss"]
        np.testing.assert_array_equal(ours[part].replicates["log_loss"], theirs.replicates[part])


def test_loss_ranks_lowest_first_and_counts_distinct_ranks(data):
    """Under log loss the least noisy model leads; a copy of it with one changed chip is tied, the rest are not."""
    good, bad = _model(data, 1, "good", 0.5), _model(data, 2, "bad", 4.0)
    twin = bench.Scored(3, "twin", good.reports)  # the same scores: tied with good
    rows = bench.rank_models([bad, twin, good], "log_loss", "private")
    assert [r.team for r in rows] == ["good", "twin", "bad"]
    assert rows[0].score < rows[2].score
    assert [r.tied for r in rows] == [False, True, False]
    assert bench.distinct_ranks(rows) == 2
    public = bench.rank_models([bad, good], "roc_auc", "public")
    assert [r.team for r in public] == ["good", "bad"] and bench.distinct_ranks(public) == 2


def test_compare_pair_agrees_with_the_leaderboard(data):
    """compare_pair's verdict is mark_paired_ties', its margin is positive for the better and z grows with the gap."""
    good, close, far = _model(data, 1, "good", 2.0), _model(data, 4, "close", 2.2), _model(data, 5, "far", 6.0)
    for metric in ("roc_auc", "log_loss"):
        t_far = bench.compare_pair(far, good, metric, "private")
        assert (t_far.better, t_far.worse, t_far.tied) == ("good", "far", False)
        assert t_far.margin > 0 and t_far.low > 0
        board = bench.rank_models([good, far], metric, "private")
        assert board[1].tied is t_far.tied
        t_close = bench.compare_pair(good, close, metric, "private")
        assert t_close.tied is bench.rank_models([good, close], metric, "private")[1].tied
        assert t_close.tied is (t_close.low <= 0 <= t_close.high)
        assert abs(t_close.z) < t_far.z


def test_overconfidence_hurts_log_loss_not_auc(data):
    """The same ranking of chips made overconfident: ROC AUC cannot tell them apart, log loss can."""
    calibrated = _model(data, 1, "calibrated", 3.0)
    overconfident = _model(data, 2, "overconfident", 3.0, shrink=4.0, draw=1)
    auc = bench.compare_pair(calibrated, overconfident, "roc_auc", "private")
    assert auc.tied and auc.margin == pytest.approx(0.0, abs=1e-12)
    loss = bench.compare_pair(calibrated, overconfident, "log_loss", "private")
    assert (loss.better, loss.tied) == ("calibrated", False)


def test_log_loss_anatomy_finds_the_confident_mistake():
    """A ship predicted exactly 0 costs -log(CLIP) = 34.54 on its own part; exact 0/1 predictions are counted."""
    y = np.array([1, 0, 1, 0, 1, 0])
    proba = np.array([0.0, 0.1, 0.9, 0.0, 0.8, 1.0])
    usage = np.array(["Public"] * 3 + ["Private"] * 3, dtype=object)
    out = bench.log_loss_anatomy(y, proba, usage)
    assert out["public"][:2] == (1, 3) and out["public"][2] == pytest.approx(-np.log(bench.CLIP))
    assert out["private"][:2] == (2, 3) and out["private"][2] == pytest.approx(-np.log(bench.CLIP))
    assert bench.log_loss_anatomy(y, np.full(6, 0.5), usage)["private"][2] == pytest.approx(np.log(2))
