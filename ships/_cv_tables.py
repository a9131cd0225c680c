"""Tables and lines of ``ships cv`` and ``ships baseline run``: per-fold metrics, splits side by side, intervals."""

from __future__ import annotations

__all__ = ["folds_line", "public_auc", "out_of_fold_line", "cv_fold_table", "cv_comparison_table"]


def folds_line(result) -> str:
    """The splitter and whether its folds are the workspace's official ones (and if not, why)."""
    if result.official_folds:
        return f"{result.splitter}, {result.n_splits} folds"
    reason = f": {result.fresh_folds_reason}" if result.fresh_folds_reason else ""
    return f"{result.splitter}, {result.n_splits} fresh folds, NOT the official ones{reason}"


def _pm(mean: float, std: float, digits: int = 4) -> str:
    return "n/a" if mean != mean else f"{mean:.{digits}f} ± {std:.{digits}f}"


def public_auc(public: dict) -> str:
    """``0.9871 [0.9790, 0.9932]``: the Public ROC AUC and its group-bootstrap interval."""
    value, low, high = (public.get(k) for k in ("roc_auc", "roc_auc_low", "roc_auc_high"))
    if value is None:
        return "n/a"
    return f"{value:.4f}" + ("" if low is None or high is None else f" [{low:.4f}, {high:.4f}]")


def cv_fold_table(result, title: str):
    """Rows: metrics (and fit time); columns: each fold, then mean ± std."""
    from rich.table import Table

    from competition.scoring import METRICS

    table = Table(title=title)
    table.add_column("metric")
    for fold in result.folds:
        table.add_column(f"fold {fold.fold}", justify="right")
    table.add_column("mean ± std", justify="right")
    for name, metric in METRICS.items():
        cells = [metric.format(f.metrics[name]) for f in result.folds]
        table.add_row(name, *cells, _pm(result.mean[name], result.std[name], metric.precision))
    table.add_row("fit time (s)", *(f"{f.fit_time:.1f}" for f in result.folds),
                  _pm(result.mean["fit_time"], result.std["fit_time"], 1))
    table.add_row("test chips", *(str(f.n_test) for f in result.folds), "")
    return table


def cv_comparison_table(results, title: str):
    """Side by side: mean ± std of each metric under each split, and how much each split overstates.

    The reference is the first grouped split given (date or scene); a leaky split's
    excess over it is the optimism that near-duplicate chips on both sides buy.
    """
    from rich.table import Table

    from competition.cv import LEAKY_CV_KINDS
    from competition.scoring import METRICS

    reference = next((r for r in results if r.cv not in LEAKY_CV_KINDS), results[0])
    others = [r for r in results if r is not reference]
    table = Table(title=title, caption=f"difference: the split's mean minus the {reference.cv} split's mean")
    table.add_column("metric")
    for r in results:
        table.add_column(f"{r.cv} ({r.n_splits} folds)", justify="right")
    for r in others:
        table.add_column(f"{r.cv} − {reference.cv}", justify="right")
    for name, metric in METRICS.items():
        cells = [_pm(r.mean[name], r.std[name], metric.precision) for r in results]
        cells += [f"{r.mean[name] - reference.mean[name]:+.{metric.precision}f}" for r in others]
        table.add_row(name, *cells)
    return table


def out_of_fold_line(result) -> str:
    """The pooled out-of-fold ROC AUC, log loss and accuracy, each with its group-bootstrap interval."""
    from competition.scoring import METRICS

    report = result.out_of_fold
    if report is None:
        return ""
    parts = []
    for name in ("roc_auc", "log_loss", "accuracy"):
        metric, (low, high) = METRICS[name], report.intervals[name]
        parts.append(f"{name} {metric.format(report.metrics[name])} [{metric.format(low)}, {metric.format(high)}]")
    return (f"Out of fold, all {report.n} chips pooled: {', '.join(parts)} ({report.confidence:.0%} intervals, "
            f"{report.n_bootstrap} resamples of whole groups, {report.n_groups} groups)")
