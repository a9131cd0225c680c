"""How many statistically distinct ranks the cheap baselines form on ShipsNet, under each metric.

Which primary metric serves a ShipsNet challenge better: the one whose leaderboard tells more
teams apart.  A workspace of the bundled real chips is made (``init_workspace``, a fixed
seed); each model is fitted on all train chips with the project's baseline code
(``baselines.workflow.fit_baseline``), predicts the locked test set into a submission file
(``write_predictions``) that is read back the way a team's is (``read_and_validate``), and is
scored on the Public and on the Private part with the project's scoring
(``score_predictions``, the workspace's groups, seed and ``n_bootstrap``: the same resampled
days for every model, so their replicates pair).

For each metric and part the models are ranked by ``leaderboard.ranking`` under
``Rules(metric=...)`` (its direction: ``*_loss`` lower is better) and adjacent ones are marked
tied by ``mark_paired_ties`` on the replicates as the store keeps them (float32): exactly what
the leaderboard would show.  Every pair is tested the same way (a two-row board).  Printed:
the point values with their 95% intervals, the number of distinct ranks (1 + the adjacent
pairs not tied), and for each pair the margin of the better model, its paired 95% percentile
interval (the tie test's) and z = margin / the bootstrap standard deviation of the difference,
a measure of separation that can be compared across metrics.  A table per seed shows what each
model's log loss is made of: chips predicted exactly 0 or 1, and the worst single chip's share.

Models are ``NAME`` (a baseline at the workspace's seed) or ``NAME+K`` (at the workspace's seed
plus K); the default adds ``xgboost+1``, the xgboost baseline with another seed, as a control:
a pair whose difference is training noise only.  The CNN and VGG16 baselines are left out
(they need a GPU or long runs).

    python benchmarks/bench_ranks.py [--seeds 0,1,2,3,4] [--models dummy,logreg,knn,xgboost]
        [--controls xgboost+1] [--metrics roc_auc,log_loss,average_precision,brier_loss]
        [--n-jobs 1] [--out results.md]

Each seed makes a fresh workspace (another locked test set); a summary closes the output: the
distinct ranks per seed and part, and for each pair but the dummy's how often it is separated,
its z per seed and in how many seeds its Public order is its Private order.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from competition.rules import Rules  # noqa: E402
from competition.scoring import CLIP, METRICS, ScoreReport, score_predictions  # noqa: E402
from leaderboard.ranking import Entry, LeaderboardRow, mark_paired_ties, rank_private, rank_public  # noqa: E402

PARTS = ("public", "private")
BUDGET_S = 180.0  # the whole run, default arguments (5 seeds), on 2 cores
_T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Scored:
    """One model's predictions of the test set, scored on each part."""

    id: int
    label: str
    reports: dict  # part -> ScoreReport
    anatomy: dict = field(default_factory=dict)  # part -> (chips at exactly 0 or 1, chips, worst chip's log loss)

    def entry(self, metric: str) -> Entry:
        """The model as a ranked team's submission, scored on ``metric``."""
        values = {}
        for part in PARTS:
            r = self.reports[part]
            low, high = r.intervals[metric]
            values.update({f"{part}_score": r.metrics[metric], f"{part}_low": low, f"{part}_high": high})
        return Entry(id=self.id, team=self.label, kind="team", submitted_at=_T0, **values)

    def replicates(self, metric: str, part: str) -> np.ndarray:
        """The replicates as the store keeps them (float32) and reads them back."""
        return self.reports[part].replicates[metric].astype("<f4")


@dataclass(frozen=True)
class PairTest:
    """The paired test of two models on one metric and part; ``margin`` > 0: ``better`` is better."""

    better: str
    worse: str
    margin: float
    low: float
    high: float
    z: float
    tied: bool


def score_parts(y_true, y_proba, usage, groups, *, n_bootstrap: int, seed: int) -> dict[str, ScoreReport]:
    """The Public and Private reports of one set of predictions, as ``leaderboard.submit.score_parts`` scores them."""
    out = {}
    for part in PARTS:
        m = usage == part.capitalize()
        out[part] = score_predictions(y_true[m], y_proba[m], groups=groups[m], n_bootstrap=n_bootstrap,
                                      random_state=seed)
    return out


def log_loss_anatomy(y_true, y_proba, usage) -> dict[str, tuple[int, int, float]]:
    """Per part: chips predicted exactly 0 or 1, chips, and the largest one-chip log loss (clipped as scored)."""
    loss = -np.log(np.clip(np.where(y_true == 1, y_proba, 1.0 - y_proba), CLIP, 1.0 - CLIP))
    out = {}
    for part in PARTS:
        m = usage == part.capitalize()
        worst = float(loss[m].max()) if m.any() else np.nan
        out[part] = (int(((y_proba[m] == 0) | (y_proba[m] == 1)).sum()), int(m.sum()), worst)
    return out


def rank_models(models: list[Scored], metric: str, part: str) -> list[LeaderboardRow]:
    """The leaderboard of ``models`` on ``part`` under ``metric``, with the leaderboard's paired ties."""
    rules = Rules(metric=metric)
    entries = [m.entry(metric) for m in models]
    rows = (rank_public(entries, rules) if part == "public"
            else rank_private(entries, {m.label: [m.id] for m in models}, rules))
    return mark_paired_ties(rows, {m.id: m.replicates(metric, part) for m in models})


def distinct_ranks(rows: list[LeaderboardRow]) -> int:
    """Groups of tied neighbours: 1 + the ranked rows not tied with the one above."""
    ranked = [row for row in rows if row.rank is not None]
    return 1 + sum(not row.tied for row in ranked[1:]) if ranked else 0


def compare_pair(a: Scored, b: Scored, metric: str, part: str) -> PairTest:
    """Rank two models on their own (a two-row board) and test them as the leaderboard does."""
    upper, lower = rank_models([a, b], metric, part)
    by_label = {a.label: a, b.label: b}
    sign = 1.0 if METRICS[metric].greater_is_better else -1.0
    diff = sign * (by_label[upper.team].replicates(metric, part).astype(np.float64)
                   - by_label[lower.team].replicates(metric, part).astype(np.float64))
    diff = diff[np.isfinite(diff)]
    margin = sign * (upper.score - lower.score)
    low, high = np.percentile(diff, [2.5, 97.5]) if len(diff) else (np.nan, np.nan)
    sd = float(diff.std(ddof=1)) if len(diff) > 1 else np.nan
    z = margin / sd if sd > 0 else (np.inf if margin > 0 else np.nan)
    return PairTest(upper.team, lower.team, margin, float(low), float(high), z, lower.tied)


def fit_and_score(ws, specs: list[str], *, n_jobs: int, folder: Path, log=print) -> list[Scored]:
    """Fit each model on all train chips, write its submission file, read it back and score both parts."""
    from baselines.workflow import fit_baseline, load_train_part, write_predictions
    from leaderboard.submit import read_and_validate

    train, test, solution = load_train_part(ws), ws.load_test(), ws.load_solution()
    out = []
    for k, spec in enumerate(specs, start=1):
        name, _, offset = spec.partition("+")
        start = time.perf_counter()
        estimator, fit_time = fit_baseline(ws, name, seed=ws.config.seed + int(offset or 0), n_jobs=n_jobs,
                                           train=train)
        path = write_predictions(folder / f"{spec.replace('+', '-plus')}.csv", test, estimator)
        y_proba, _ = read_and_validate(ws, path)
        reports = score_parts(solution.y_true, y_proba, solution.usage, solution.groups,
                              n_bootstrap=ws.config.n_bootstrap, seed=ws.config.seed)
        out.append(Scored(k, spec, reports, log_loss_anatomy(solution.y_true, y_proba, solution.usage)))
        log(f"  {spec}: fit {fit_time:.1f} s, predict and score {time.perf_counter() - start - fit_time:.1f} s")
    return out


def _fmt(metric: str, value: float) -> str:
    return METRICS[metric].format(value)


def board_table(models: list[Scored], metrics: list[str]) -> list[str]:
    """Point values and 95% intervals of every model, and the leaderboard of each metric and part."""
    lines = []
    for part in PARTS:
        r0 = models[0].reports[part]
        lines += [f"**{part.capitalize()}** ({r0.n} chips, {r0.n_positive} ships, {r0.n_groups} days, "
                  f"{r0.n_bootstrap} resamples)", "",
                  "| metric | leaderboard, best first (`=` tied with the one above) | distinct ranks |",
                  "|---|---|---:|"]
        for metric in metrics:
            rows = rank_models(models, metric, part)
            cells = [f"{'= ' if row.tied else ''}{row.team} {_fmt(metric, row.score)} "
                     f"[{_fmt(metric, row.score_low)}, {_fmt(metric, row.score_high)}]" for row in rows]
            lines.append(f"| {metric} | {' · '.join(cells)} | {distinct_ranks(rows)} of {len(rows)} |")
        lines.append("")
    return lines


def pairs_table(models: list[Scored], metrics: list[str], pairs: list[tuple[Scored, Scored]]) -> list[str]:
    """Every pair on every metric and part: the better one, its margin, the paired interval, z and the verdict."""
    lines = ["| pair | metric | Public: margin [paired 95%], z | Private: margin [paired 95%], z |",
             "|---|---|---|---|"]
    for a, b in pairs:
        for metric in metrics:
            cells = []
            for part in PARTS:
                t = compare_pair(a, b, metric, part)
                verdict = "tied" if t.tied else f"**{t.better}** better"
                cells.append(f"{verdict}: {t.margin:+.4f} [{t.low:+.4f}, {t.high:+.4f}], z {t.z:.1f}")
            lines.append(f"| {a.label} vs {b.label} | {metric} | {cells[0]} | {cells[1]} |")
    return lines


def run_seed(seed: int, specs: list[str], controls: list[str], metrics: list[str], n_jobs: int,
             log=print) -> tuple[list[str], dict]:
    """One workspace: its tables, and {"counts": {(metric, part): distinct ranks}, "pairs": {(a, b, metric, part):
    PairTest}} for the summary."""
    from competition.create import init_workspace

    with tempfile.TemporaryDirectory(prefix="bench-ranks-") as tmp:
        start = time.perf_counter()
        ws = init_workspace(Path(tmp) / "ws", seed=seed)
        log(f"seed {seed}: workspace in {time.perf_counter() - start:.1f} s")
        models = fit_and_score(ws, specs + controls, n_jobs=n_jobs, folder=Path(tmp), log=log)
    baselines = models[:len(specs)]
    by_label = {m.label: m for m in models}
    pairs = list(combinations(baselines, 2))
    pairs += [(by_label[c.split("+")[0]], by_label[c]) for c in controls if c.split("+")[0] in by_label]
    lines = [f"### Workspace seed {seed}", ""] + board_table(baselines, metrics)
    lines += ["Log loss, chip by chip (one chip's share: its loss / the sum over the part):", "",
              "| model | part | chips at exactly 0 or 1 | worst chip's log loss | its share of the part's log loss |",
              "|---|---|---:|---:|---:|"]
    for m in models:
        for part in PARTS:
            extreme, n, worst = m.anatomy[part]
            share = worst / (m.reports[part].metrics["log_loss"] * n)
            lines.append(f"| {m.label} | {part} | {extreme} of {n} | {worst:.2f} | {share:.0%} |")
    lines += ["", "Every pair (margin: how much better the better one is, in the metric's units; "
              "z: margin / bootstrap sd of the difference):", ""] + pairs_table(models, metrics, pairs) + [""]
    counts = {(metric, part): distinct_ranks(rank_models(baselines, metric, part))
              for metric in metrics for part in PARTS}
    close = [(a, b) for a, b in pairs if "dummy" not in (a.label, b.label)]
    separation = {(a.label, b.label, metric, part): compare_pair(a, b, metric, part)
                  for a, b in close for metric in metrics for part in PARTS}
    return lines, {"counts": counts, "pairs": separation}


def summary_tables(results: dict[int, dict], metrics: list[str], n_models: int) -> list[str]:
    """Distinct ranks per seed and part; then, for each pair but the dummy's, the verdicts and z over the seeds."""
    seeds = list(results)
    lines = [f"Distinct ranks of the {n_models} baselines, workspace seeds {', '.join(map(str, seeds))}:", "",
             "| metric | Public | Private | sum over the boards |", "|---|---|---|---:|"]
    for metric in metrics:
        cells = [" ".join(str(results[s]["counts"][(metric, part)]) for s in seeds) for part in PARTS]
        total = sum(results[s]["counts"][(metric, part)] for s in seeds for part in PARTS)
        lines.append(f"| {metric} | {cells[0]} | {cells[1]} | {total} of {len(seeds) * len(PARTS) * n_models} |")
    lines += ["", "Pairs (z signed: positive when the second is better; * tied on the leaderboard; kept: seeds "
              "where the Public order of the pair is the Private order):", "",
              "| pair | metric | Public: separated, z per seed | Private: separated, z per seed | kept |",
              "|---|---|---|---|---:|"]
    keys = list(dict.fromkeys((a, b) for a, b, _, _ in results[seeds[0]]["pairs"]))
    for a, b in keys:
        for metric in metrics:
            cells = []
            for part in PARTS:
                tests = [results[s]["pairs"][(a, b, metric, part)] for s in seeds]
                zs = " ".join(_signed_z(t, b) for t in tests)
                mean = np.mean([t.z if t.better == b else -t.z for t in tests])
                cells.append(f"{sum(not t.tied for t in tests)}/{len(tests)}, mean z {mean:+.1f}: {zs}")
            kept = sum(results[s]["pairs"][(a, b, metric, "public")].better
                       == results[s]["pairs"][(a, b, metric, "private")].better for s in seeds)
            lines.append(f"| {a} vs {b} | {metric} | {cells[0]} | {cells[1]} | {kept}/{len(seeds)} |")
    return lines


def _signed_z(t: PairTest, second: str) -> str:
    """A pair's z, positive when ``second`` is the better one, with * when the leaderboard calls it a tie."""
    z = t.z if t.better == second else -t.z
    return f"{z:+.1f}{'*' if t.tied else ''}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4", help="workspace seeds, comma-separated (one workspace each)")
    ap.add_argument("--models", default="dummy,logreg,knn,xgboost", help="the ranked baselines")
    ap.add_argument("--controls", default="xgboost+1", help="extra models tested against their base only")
    ap.add_argument("--metrics", default="roc_auc,log_loss,average_precision,brier_loss")
    ap.add_argument("--n-jobs", type=int, default=1, help="jobs of a baseline's inner search")
    ap.add_argument("--out", type=Path, help="also write the Markdown tables here")
    args = ap.parse_args()
    specs = args.models.split(",")
    controls = [c for c in args.controls.split(",") if c]
    metrics = args.metrics.split(",")
    start, load = time.perf_counter(), os.getloadavg()
    lines, results = [], {}
    for seed in map(int, args.seeds.split(",")):
        seed_lines, results[seed] = run_seed(seed, specs, controls, metrics, args.n_jobs,
                                             log=lambda text: print(text, file=sys.stderr, flush=True))
        lines += seed_lines
        print("\n".join(seed_lines), flush=True)
    summary = summary_tables(results, metrics, len(specs))
    elapsed = time.perf_counter() - start
    tail = ["### Summary", "", *summary, "",
            f"{os.cpu_count()} CPU cores, load average {load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
            f"run {elapsed:.0f} s ({elapsed / len(results):.0f} s a seed): ratio to the {BUDGET_S:.0f} s budget "
            f"{elapsed / BUDGET_S:.2f}x"]
    print("\n".join(tail))
    if args.out:
        args.out.write_text("\n".join(lines + tail) + "\n")


if __name__ == "__main__":
    main()
