"""How long the leaderboard takes to rebuild with paired-bootstrap ties after a new submission.

Goal (issue: ties that mean something): a 1000-team board with paired ties rebuilt in under
100 ms after a new submission.  The store keeps each submission's bootstrap replicates of the
primary metric (float32, one per resample) at submit time, so a rebuild reads the entries,
ranks them, reads the replicates of each team's best submission only, and tests each adjacent
pair.  Prints the median rebuild time and its ratio to the goal.

    python benchmarks/bench_ties.py [--teams 1000] [--per-team 5] [--n-bootstrap 1000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from competition.rules import Rules
from leaderboard.store import Store

GOAL_S = 0.100


def metrics(score: float) -> dict:
    return {"roc_auc": score, "roc_auc_low": score - 0.01, "roc_auc_high": score + 0.01}


def populate(store: Store, teams: int, per_team: int, n_bootstrap: int, rng) -> None:
    """Teams of graded skill whose replicates share the resampled days' ups and downs."""
    shared = rng.normal(0.0, 0.01, n_bootstrap)
    start = datetime.now(timezone.utc) - timedelta(days=30)
    for i in range(teams):
        name = f"team-{i:04d}"
        store.add_team(name)
        skill = 0.90 + 0.09 * i / teams
        for k in range(per_team):
            score = float(skill + rng.normal(0, 0.002))
            store.add_submission(team=name, file_sha256=secrets.token_hex(32), filename="s.csv", message="",
                                 public=metrics(score), private=metrics(score), split_hash="bench",
                                 submitted_at=start + timedelta(minutes=i * per_team + k),
                                 replicates={"public": score + shared + rng.normal(0, 0.002, n_bootstrap)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teams", type=int, default=1000)
    ap.add_argument("--per-team", type=int, default=5)
    ap.add_argument("--n-bootstrap", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'leaderboard.db'}"
        store = Store.open(url, Rules(daily_quota=10_000))
        t = time.perf_counter()
        populate(store, args.teams, args.per_team, args.n_bootstrap, rng)
        print(f"{args.teams} teams, {args.teams * args.per_team} submissions with {args.n_bootstrap} replicates "
              f"each, stored in {time.perf_counter() - t:.1f} s")
        rows = store.leaderboard()
        print(f"ties marked: {sum(r.tied for r in rows)} of {len(rows) - 1} adjacent pairs")
        times = []
        for k in range(args.repeat):
            score = 0.95 + 0.0001 * k
            store.add_submission(team=f"team-{k:04d}", file_sha256=secrets.token_hex(32), filename="s.csv",
                                 message="", public=metrics(score), private=metrics(score), split_hash="bench",
                                 replicates={"public": score + rng.normal(0, 0.01, args.n_bootstrap)})
            t = time.perf_counter()
            store.leaderboard()  # the revision changed: a full rebuild with paired ties
            times.append(time.perf_counter() - t)
        store.close()
    median = statistics.median(times)
    print(f"rebuild after a new submission: median {median * 1000:.1f} ms over {args.repeat} "
          f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}); "
          f"ratio to the {GOAL_S * 1000:.0f} ms goal: {median / GOAL_S:.2f}x ({'met' if median < GOAL_S else 'NOT met'})")


if __name__ == "__main__":
    main()
