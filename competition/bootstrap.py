"""The vectorised group bootstrap of the eight scoring metrics, and its intervals.

Pure functions of arrays, used by :mod:`competition.scoring` (which owns the metric
definitions; the names here are those of its ``METRICS``).  A resample draws as many
groups as there are, with replacement; group g drawn c_g times gives each of its chips
the weight c_g, so a resample is a row of group counts C (B, G) and every weighted sum
over chips is a product with a per-group matrix.

Three intervals (``INTERVALS``):

- ``studentized`` (the default): the bootstrap-t.  Each resample's value is divided by
  its own standard error, the nonparametric delta-method ("infinitesimal jackknife")
  error ``sqrt(sum_g c_g (d theta / d c_g)^2)``, computed exactly for all eight metrics
  from the same matrices; the interval is ``theta - t*_(1-a) se``, ``theta - t*_(a) se``,
  clipped to the metric's bounds.  Two small-sample details: a resample whose metric sits
  at a bound has no delta-method error (e.g. recall 1) and takes the sample's error
  instead of an infinite t; and the level ``a`` is Hesterberg's expanded one,
  ``Phi(sqrt(G / (G - 1)) t_(G-1)(alpha / 2))`` (1.9% instead of 2.5% for the 28 to 36
  days of a test set), since the spread of a statistic over few groups is underestimated.
  Why: near AUC 1 a test set without the hard days has both a high AUC and a narrow
  spread, so percentile intervals miss low; dividing by each resample's own error
  widens exactly those.  On the real chips (``benchmarks/bench_coverage.py``, xgboost's
  out-of-fold predictions, true ROC AUC 0.996, 1000 fair draws of test days) the 95%
  intervals of ROC AUC cover 95.8% (percentile 88.2%, BCa 91.3%), at about twice the width.
- ``bca``: bias-corrected and accelerated percentiles, the acceleration from a
  leave-one-group-out jackknife.
- ``percentile``: the plain percentiles of the resampled values.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.special import ndtr, ndtri, stdtrit

__all__ = ["INTERVALS", "bootstrap_metrics", "group_tables", "jackknife_metrics", "make_interval",
           "resample_metrics"]

INTERVALS = ("studentized", "bca", "percentile")
_CHUNK_CELLS = 2**21  # bootstrap resamples are processed in chunks of about this many matrix cells
_SE_ROUND_OFF = 1e-12  # a delta-method error below this is round-off of an exact 0 (metrics are O(1))
_PAIR_MAX_GROUPS, _PAIR_MAX_CELLS = 1024, 2**20  # PairRanks up to this many groups and (group, score) cells
# Metrics that are ratios of per-group sums: name -> (numerator columns, denominator columns) of the sums table.
# Columns: 0 n, 1 log loss, 2 Brier, 3 tp, 4 fp, 5 fn; a tuple of (column, factor) pairs.
_RATIOS = {
    "log_loss": (((1, 1.0),), ((0, 1.0),)),
    "brier_loss": (((2, 1.0),), ((0, 1.0),)),
    "accuracy": (((0, 1.0), (4, -1.0), (5, -1.0)), ((0, 1.0),)),
    "precision": (((3, 1.0),), ((3, 1.0), (4, 1.0))),
    "recall": (((3, 1.0),), ((3, 1.0), (5, 1.0))),
    "f1": (((3, 2.0),), ((3, 2.0), (4, 1.0), (5, 1.0))),
}
_FILL = {"log_loss": math.nan, "brier_loss": math.nan, "accuracy": math.nan, "precision": 0.0, "recall": 0.0,
         "f1": 0.0}  # value when the denominator is zero


def group_tables(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int, *, threshold: float,
                 clip: float, ranks: str | None = None) -> tuple[np.ndarray, "RankTables"]:
    """Per-group sums (G, 6): n, log loss, Brier, tp, fp, fn; and the tables of the two ranking metrics.

    ``ranks`` chooses how roc_auc and average_precision are computed: ``"pairs"``
    (:class:`PairRanks`, dense per-group tables: fast for the few groups of a test set),
    ``"blocks"`` (:class:`BlockRanks`, sparse per-(group, score) counts: linear in the chips,
    for many groups), or None to pick by size.  Both give the same values and errors.
    """
    q = np.clip(p, clip, 1 - clip)
    loss = -(y * np.log(q) + (1 - y) * np.log1p(-q))
    pred = p >= threshold
    chip = np.stack([np.ones_like(p), loss, (p - y) ** 2, pred & (y == 1), pred & (y == 0), ~pred & (y == 1)], axis=1)
    sums = np.stack([np.bincount(codes, chip[:, j], minlength=n_groups) for j in range(chip.shape[1])], axis=1)
    _, block = np.unique(p, return_inverse=True)  # distinct scores, ascending
    block = block.ravel()
    if ranks is None:
        cells = n_groups * len(np.unique(block[y == 1]))
        ranks = "pairs" if n_groups <= _PAIR_MAX_GROUPS and cells <= _PAIR_MAX_CELLS else "blocks"
    if ranks == "pairs":
        return sums, PairRanks(y, block, codes, n_groups)
    if ranks == "blocks":
        n_blocks = int(block.max()) + 1
        cols = block + n_blocks * (1 - y)
        return sums, BlockRanks(sparse.csr_matrix((np.ones(len(y)), (codes, cols)), shape=(n_groups, 2 * n_blocks)))
    raise ValueError(f"ranks={ranks!r}; expected 'pairs', 'blocks' or None")


def resample_metrics(counts: np.ndarray, sums: np.ndarray, ranks: "RankTables", *,
                     with_se: bool = False) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every metric for each row of group counts ``counts`` (m, G): ({name: (m,)}, {name: se (m,)}).

    The standard errors (empty dict unless ``with_se``) are ``sqrt(sum_g c_g g_g^2)`` with
    ``g_g`` the derivative of the metric with respect to the count of group g.
    """
    values, errors = {}, {}
    totals = counts @ sums
    for name, (num, den) in _RATIOS.items():
        a, d = _combine(sums, num), _combine(sums, den)
        top, bottom = totals @ _weights(num), totals @ _weights(den)
        values[name] = _ratio(top, bottom, bottom > 0, fill=_FILL[name])
        if with_se:
            scale = np.divide(1.0, bottom, out=np.zeros_like(bottom), where=bottom > 0)[:, None]  # 0: undefined
            grad = (a[None, :] - np.nan_to_num(values[name])[:, None] * d[None, :]) * scale
            errors[name] = np.sqrt((counts * grad**2).sum(axis=1))
    for name, (value, grad) in ranks.evaluate(counts, with_se).items():
        values[name] = value
        if with_se:
            errors[name] = np.sqrt((counts * grad**2).sum(axis=1))
    for name, error in errors.items():  # round-off where the error is 0 (a metric at its bound): exactly 0
        error[error < _SE_ROUND_OFF] = 0.0
    return values, errors


class BlockRanks:
    """roc_auc and average_precision from per-(group, distinct score) counts, sparse (G, 2K).

    Each resample's weighted counts per score (positives in columns 0..K-1, ascending, then
    negatives) are cumulated along the scores: linear in the chips and the distinct scores.
    """

    def __init__(self, blocks: sparse.csr_matrix):
        self.blocks = blocks

    def evaluate(self, counts: np.ndarray, with_se: bool) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """{name: (values (m,), gradients with respect to the group counts (m, G) or None)}."""
        weighted = np.asarray((self.blocks.T @ counts.T).T)
        k = weighted.shape[1] // 2
        ranked = _ranking_metrics(weighted[:, :k], weighted[:, k:], with_se)
        return {name: (value, None if grad is None else np.asarray((self.blocks @ grad.T).T))
                for name, (value, grad) in ranked.items()}


class PairRanks:
    """roc_auc and average_precision from dense per-group tables, for a few groups (G) at a time.

    With c the group counts of a resample, P and N the positives and negatives per group:

    - roc_auc is ``c' M c / ((c.P) (c.N))`` where ``M[g, h]`` counts the (positive of g,
      negative of h) pairs ranked right, ties a half: G x G numbers, whatever the chips;
    - average_precision is ``sum_j (c.A_j) (c.T_j) / (c.T_j + c.F_j) / (c.P)`` over the scores
      j held by a positive, with ``A_j``, ``T_j``, ``F_j`` the per-group positives at j and
      positives and negatives scored at least j: three (G, J) tables.

    A resample is then a few small matrix products, and the derivatives (for the studentized
    interval) follow in closed form from the same tables.
    """

    def __init__(self, y: np.ndarray, block: np.ndarray, codes: np.ndarray, n_groups: int):
        held = np.unique(block[y == 1])  # the scores (ascending block numbers) some positive holds
        width = int(block.max()) + 2
        queries = (np.arange(n_groups)[:, None] * width + held[None, :]).ravel()  # (group, held score) keys

        def below(mask: np.ndarray, side: str) -> np.ndarray:
            """(G, J): chips in ``mask`` of each group scored below each held score (or at most it, 'right')."""
            keys = np.sort(codes[mask] * width + block[mask])
            starts = np.searchsorted(keys, np.arange(n_groups) * width)
            return (np.searchsorted(keys, queries, side=side).reshape(n_groups, -1) - starts[:, None]).astype(float)

        positive, negative = y == 1, y == 0
        self.n_pos = np.bincount(codes[positive], minlength=n_groups).astype(float)
        self.n_neg = np.bincount(codes[negative], minlength=n_groups).astype(float)
        pos_below, pos_upto = below(positive, "left"), below(positive, "right")
        neg_below, neg_upto = below(negative, "left"), below(negative, "right")
        self.at = pos_upto - pos_below  # (G, J) positives at each held score
        self.pairs = self.at @ (neg_below + 0.5 * (neg_upto - neg_below)).T  # (G, G); ties a half
        self.tp_ge = self.n_pos[:, None] - pos_below
        self.fp_ge = self.n_neg[:, None] - neg_below

    def evaluate(self, counts: np.ndarray, with_se: bool) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """{name: (values (m,), gradients with respect to the group counts (m, G) or None)}."""
        n_pos, n_neg = counts @ self.n_pos, counts @ self.n_neg
        both = (n_pos > 0) & (n_neg > 0)
        right = counts @ self.pairs  # (m, G): sum_g c_g M[g, h]
        auc = _ratio((right * counts).sum(axis=1), n_pos * n_neg, both)
        at, tp = counts @ self.at, counts @ self.tp_ge
        fp = counts @ self.fp_ge
        called = tp + fp
        precision = np.divide(tp, called, out=np.zeros_like(called), where=called > 0)
        ap = _ratio((at * precision).sum(axis=1), n_pos, both)
        if not with_se:
            return {"roc_auc": (auc, None), "average_precision": (ap, None)}
        pq = np.where(both, n_pos * n_neg, 1.0)[:, None]
        auc0, ap0 = np.nan_to_num(auc)[:, None], np.nan_to_num(ap)[:, None]
        auc_grad = ((counts @ self.pairs.T + right) / pq
                    - auc0 * (self.n_pos[None, :] / np.where(both, n_pos, 1.0)[:, None]
                              + self.n_neg[None, :] / np.where(both, n_neg, 1.0)[:, None]))
        r = np.divide(at, called**2, out=np.zeros_like(called), where=called > 0)
        npos = np.where(both, n_pos, 1.0)[:, None]
        ap_grad = (precision @ self.at.T + (r * fp) @ self.tp_ge.T - (r * tp) @ self.fp_ge.T
                   - ap0 * self.n_pos[None, :]) / npos
        return {"roc_auc": (auc, auc_grad), "average_precision": (ap, ap_grad)}


RankTables = BlockRanks | PairRanks


def _ranking_metrics(pos: np.ndarray, neg: np.ndarray, with_se: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """roc_auc and average_precision from weighted counts per ascending score (m, K); with their gradients (m, 2K)."""
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    both = (n_pos > 0) & (n_neg > 0)
    below = np.cumsum(neg, axis=1) - neg  # negatives scored strictly lower; ties count half
    auc = _ratio((pos * (below + 0.5 * neg)).sum(axis=1), n_pos * n_neg, both)
    tp_at = np.cumsum(pos[:, ::-1], axis=1)[:, ::-1]  # positives scored at least this block's score
    called = tp_at + np.cumsum(neg[:, ::-1], axis=1)[:, ::-1]
    precision_at = np.divide(tp_at, called, out=np.zeros_like(called), where=called > 0)
    ap = _ratio((pos * precision_at).sum(axis=1), n_pos, both)
    if not with_se:
        return {"roc_auc": (auc, None), "average_precision": (ap, None)}
    pq = np.where(both, n_pos * n_neg, 1.0)[:, None]
    auc0 = np.nan_to_num(auc)[:, None]
    above = n_pos[:, None] - np.cumsum(pos, axis=1)  # positives scored strictly higher
    auc_grad = np.hstack([(below + 0.5 * neg - auc0 * n_neg[:, None]) / pq,
                          (above + 0.5 * pos - auc0 * n_pos[:, None]) / pq])
    r = np.divide(pos, called**2, out=np.zeros_like(called), where=called > 0)
    up, down = np.cumsum(r * (called - tp_at), axis=1), np.cumsum(r * tp_at, axis=1)
    npos = np.where(both, n_pos, 1.0)[:, None]
    ap_grad = np.hstack([(precision_at + up - np.nan_to_num(ap)[:, None]) / npos, -down / npos])
    return {"roc_auc": (auc, auc_grad), "average_precision": (ap, ap_grad)}


def bootstrap_metrics(tables: tuple[np.ndarray, RankTables], n_bootstrap: int, random_state: int | None, *,
                      with_se: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every metric (and its delta-method error if ``with_se``) on ``n_bootstrap`` group resamples; NaN: undefined."""
    sums, ranks = tables
    n_groups = sums.shape[0]
    rng = np.random.default_rng(random_state)
    width = ranks.blocks.shape[1] if isinstance(ranks, BlockRanks) else ranks.at.shape[1]
    chunk = max(1, min(n_bootstrap, _CHUNK_CELLS // max(n_groups, width)))
    parts = []
    for start in range(0, n_bootstrap, chunk):
        m = min(chunk, n_bootstrap - start)
        draws = rng.integers(0, n_groups, size=(m, n_groups)) + (np.arange(m) * n_groups)[:, None]
        counts = np.bincount(draws.ravel(), minlength=m * n_groups).reshape(m, n_groups).astype(np.float64)
        parts.append(resample_metrics(counts, sums, ranks, with_se=with_se))
    return tuple({name: np.concatenate([part[i][name] for part in parts]) for name in parts[0][i]} for i in (0, 1))


def jackknife_metrics(tables: tuple[np.ndarray, RankTables]) -> dict[str, np.ndarray]:
    """Every metric with each group left out in turn: {name: (G,)}."""
    n_groups = tables[0].shape[0]
    return resample_metrics(1.0 - np.eye(n_groups), *tables)[0]


def make_interval(method: str, point: float, values: np.ndarray, alpha: float, bounds: tuple[float, float], *,
                  n_groups: int = 0, se: float = math.nan, errors: np.ndarray | None = None,
                  jackknife: np.ndarray | None = None) -> tuple[float, float]:
    """(low, high) of one metric by ``method`` from its resampled ``values`` (B,); (NaN, NaN) if undefined.

    ``studentized`` needs ``n_groups``, ``se`` (the sample's error) and ``errors`` (B,);
    ``bca`` needs ``jackknife`` (G,).  Resamples where the metric is undefined are left out.
    """
    keep = np.isfinite(values)
    if not keep.any() or not math.isfinite(point):
        return math.nan, math.nan
    values = values[keep]
    if method == "percentile":
        low, high = np.quantile(values, [alpha, 1.0 - alpha])
    elif method == "bca":
        low, high = np.quantile(values, _bca_levels(point, values, jackknife, alpha))
    else:
        errors = np.where(errors[keep] > 0, errors[keep], se)  # a resample at a bound: the sample's error
        diff = values - point
        t = np.divide(diff, errors, out=np.sign(diff) * 1e12, where=errors > 0)  # no error at all: +-"inf", or 0
        level = _expanded_level(alpha, n_groups)
        t_low, t_high = np.quantile(t, [level, 1.0 - level])
        low, high = point - t_high * se, point - t_low * se
    return float(np.clip(low, *bounds)), float(np.clip(high, *bounds))


def _expanded_level(alpha: float, n_groups: int) -> float:
    """Hesterberg's small-sample level: Phi(sqrt(G / (G - 1)) t_(G-1)(alpha)), a little below ``alpha``."""
    if n_groups < 2:
        return alpha
    return float(ndtr(math.sqrt(n_groups / (n_groups - 1)) * stdtrit(n_groups - 1, alpha)))


def _bca_levels(point: float, values: np.ndarray, jackknife: np.ndarray, alpha: float) -> np.ndarray:
    """The two BCa quantile levels: bias from the share of resamples below ``point``, acceleration from a jackknife."""
    below = (np.sum(values < point) + 0.5 * np.sum(values == point)) / len(values)
    z0 = float(ndtri(np.clip(below, 1e-6, 1 - 1e-6)))
    jack = jackknife[np.isfinite(jackknife)]
    d = jack.mean() - jack if len(jack) else np.zeros(1)
    spread = float((d**2).sum())
    accel = float((d**3).sum()) / (6 * spread**1.5) if spread > 0 else 0.0
    z = ndtri(np.array([alpha, 1.0 - alpha]))
    return ndtr(z0 + (z0 + z) / (1 - accel * (z0 + z)))


def _combine(sums: np.ndarray, terms: tuple[tuple[int, float], ...]) -> np.ndarray:
    """Per-group sum of ``factor * sums[:, column]`` over ``terms``: (G,)."""
    return sums @ _weights(terms)


def _weights(terms: tuple[tuple[int, float], ...]) -> np.ndarray:
    """Column weights (6,) of a ratio's numerator or denominator."""
    w = np.zeros(6)
    for column, factor in terms:
        w[column] += factor
    return w


def _ratio(num: np.ndarray, den: np.ndarray, ok: np.ndarray, fill: float = math.nan) -> np.ndarray:
    """num / den where ``ok``, else ``fill``."""
    return np.divide(num, den, out=np.full(num.shape, fill), where=ok)
