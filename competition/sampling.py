"""Balanced sampling of whole groups by the cube method, on PCG64's raw stream only.

The cube method (Deville and Tillé, "Efficient balanced sampling: the cube method",
Biometrika 91(4), 2004), in the "fast flight" form of Chauvet and Tillé (2006).
Every unit (a group of chips) starts with the inclusion probability ``chance``.
Each step takes ``p + 1`` units whose probabilities are still fractional, where
``p`` is the number of balanced totals (here chips and ship chips), and moves
their probabilities along a direction ``u`` that leaves every expected total
``sum(pi * x)`` unchanged, as far as one of them reaches 0 or 1: forwards by
``a`` with probability ``b / (a + b)``, backwards by ``b`` otherwise, so the move
has mean zero.  The probabilities are a martingale, hence each unit ends in the
sample with a chance of exactly ``chance``, whatever its size and class mix; and
the sample's totals equal their expectation up to the last few units, rounded
when fewer fractional units are left than totals (the "landing": the last total
is dropped, then the next).  Units are taken largest first, so those last units
are small ones.

Nothing here depends on a library's version: the random numbers are PCG64's raw
64-bit outputs (a stream numpy keeps stable, unlike the methods of ``Generator``),
the directions are found by exact integer elimination, and the rest is Python
float arithmetic.
"""

from __future__ import annotations

import numpy as np

__all__ = ["draw_balanced", "random_keys", "uniforms"]


def random_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` raw 64-bit outputs of the generator's bit stream, (n,) uint64: sort keys for a random order."""
    return rng.bit_generator.random_raw(n)


def uniforms(rng: np.random.Generator, n: int) -> list[float]:
    """``n`` uniforms in [0, 1): the top 53 bits of ``n`` raw outputs, times 2**-53."""
    return [(v >> 11) * 2.0**-53 for v in random_keys(rng, n).tolist()]


def draw_balanced(totals: list[list[int]], chance: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the units drawn, each with probability ``chance``, balanced on the integer ``totals``.

    Parameters
    ----------
    totals : list of n lists of p ints
        The balanced quantities of each unit, e.g. ``[chips, ships]``; the first
        orders the units (largest first) and is the last dropped at landing.
    chance : float
        Inclusion probability of every unit, in (0, 1).
    rng : numpy.random.Generator
        Only its bit generator's raw stream is used.

    Returns
    -------
    ndarray of int64
        Indices of the drawn units, ascending.
    """
    n = len(totals)
    keys = random_keys(rng, n).tolist()
    order = iter(sorted(range(n), key=lambda i: (-totals[i][0], keys[i])))
    coins = iter(uniforms(rng, n))  # each step settles at least one unit
    pi = [float(chance)] * n
    live: list[int] = []
    n_balanced = len(totals[0]) if n else 0
    while True:
        live += [i for _, i in zip(range(n_balanced + 1 - len(live)), order)]
        if not live:
            return np.array([i for i in range(n) if pi[i] == 1.0], dtype=np.int64)
        u = _null_vector([[totals[i][c] for i in live] for c in range(n_balanced)], len(live))
        if u is None:  # landing: fewer fractional units than totals; drop the last total
            n_balanced -= 1
            continue
        _step(pi, live, u, next(coins))
        live = [i for i in live if 0.0 < pi[i] < 1.0]


def _step(pi: list[float], live: list[int], u: list[float], coin: float) -> None:
    """Move ``pi[live]`` by ``+a u`` (probability b / (a + b)) or ``-b u``, settling the unit that hits 0 or 1."""
    ahead = [((1 - pi[i]) / v if v > 0 else pi[i] / -v) if v else float("inf") for i, v in zip(live, u)]
    behind = [(pi[i] / v if v > 0 else (1 - pi[i]) / -v) if v else float("inf") for i, v in zip(live, u)]
    a, b = min(ahead), min(behind)
    limits, step = (ahead, a) if coin * (a + b) < b else (behind, -b)
    hit = limits.index(min(limits))
    for i, v in zip(live, u):
        p = pi[i] + step * v
        pi[i] = 0.0 if p < 1e-12 else 1.0 if p > 1 - 1e-12 else p
    pi[live[hit]] = 1.0 if step * u[hit] > 0 else 0.0


def _null_vector(rows: list[list[int]], m: int) -> list[float] | None:
    """A nonzero u (m,) with rows @ u = 0, by exact integer elimination; None if the m columns are independent."""
    a = [list(r) for r in rows]
    pivots: list[int] = []
    for c in range(m):
        r = len(pivots)
        piv = next((i for i in range(r, len(a)) if a[i][c]), None)
        if piv is None:  # column c is a combination of the pivot columns before it
            u = [0.0] * m
            u[c] = 1.0
            for k, pc in enumerate(pivots):
                u[pc] = -a[k][c] / a[k][pc]
            return u
        a[r], a[piv] = a[piv], a[r]
        for i in range(len(a)):
            if i != r and a[i][c]:
                f, d = a[i][c], a[r][c]
                a[i] = [d * x - f * z for x, z in zip(a[i], a[r])]
        pivots.append(c)
    return None
