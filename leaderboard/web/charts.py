"""Server-side SVG charts for the web view: a team's score over time and a submission's ROC curve.

Each function returns one ``<svg>`` element as :class:`markupsafe.Markup`, ready to be
inlined in a page.  Every piece of text in it is escaped here; the charts hold no script
and no ``style`` attribute (the pages' Content-Security-Policy forbids both), so their
look comes from CSS classes (``leaderboard/static/style.css``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

__all__ = ["ScorePoint", "score_chart_svg", "roc_chart_svg", "nice_ticks"]

_W, _H = 960, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 20, 14, 42


@dataclass(frozen=True)
class ScorePoint:
    """One submission on the score-over-time chart (``private`` only once revealed)."""

    id: int
    submitted_at: datetime
    score: float
    low: float | None = None
    high: float | None = None
    private: float | None = None
    url: str = ""


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering [lo, hi], about ``target`` of them.

    >>> nice_ticks(0.62, 0.91)
    [0.65, 0.7, 0.75, 0.8, 0.85, 0.9]
    """
    span = hi - lo
    if span <= 0:
        return [round(lo, 6)]
    raw = span / max(target, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 2.5, 5, 10)), key=lambda s: abs(s - raw))
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _f(v: float) -> str:
    """A coordinate with one decimal."""
    return f"{v:.1f}"


def _svg(width: int, height: int, label: str, body: list[str]) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" '
            f'role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>')
    return Markup(head + "".join(body) + "</svg>")


def _y_range(points: Sequence[ScorePoint], bounds: tuple[float, float]) -> tuple[float, float]:
    """The data's range with a margin, within the metric's bounds (never the whole 0-1 by default)."""
    values = [v for p in points for v in (p.score, p.low, p.high, p.private) if v is not None]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.08, 0.001)
    return max(lo - pad, bounds[0]), min(hi + pad, bounds[1])


def score_chart_svg(points: Sequence[ScorePoint], *, label: str = "Score over time", greater_is_better: bool = True,
                    bounds: tuple[float, float] = (0.0, 1.0)) -> Markup:
    """The Public score of each submission over time, with its 95% interval and the running best.

    Parameters
    ----------
    points : sequence of ScorePoint
        Oldest first.  A point's ``private`` score is drawn as a second marker when set
        (the caller sets it only after finalize).
    label : str
        Accessible title of the chart.
    greater_is_better : bool
        Direction of the metric, for the running best.
    bounds : (float, float)
        The metric's range; the y-axis fits the data within it.

    Returns
    -------
    Markup
        An ``<svg>`` element; an empty string when there are no points.
    """
    if not points:
        return Markup("")
    x0, x1 = points[0].submitted_at.timestamp(), points[-1].submitted_at.timestamp()
    y0, y1 = _y_range(points, bounds)
    sign = 1 if greater_is_better else -1
    pw, ph = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(t: float) -> float:
        return _LEFT + (pw / 2 if x1 == x0 else (t - x0) / (x1 - x0) * pw)

    def sy(v: float) -> float:
        return _TOP + ph - (v - y0) / (y1 - y0) * ph

    body = _y_axis(nice_ticks(y0, y1), sy, _LEFT, _W - _RIGHT)
    body += _x_axis(points, sx, _TOP + ph)
    best, steps = -sign * math.inf, []
    for p in points:
        x = sx(p.submitted_at.timestamp())
        if sign * p.score > sign * best:
            if steps:
                steps.append(f"{_f(x)},{_f(sy(best))}")
            best = p.score
            steps.append(f"{_f(x)},{_f(sy(best))}")
    steps.append(f"{_f(_W - _RIGHT)},{_f(sy(best))}")
    body.append(f'<polyline class="best" points="{" ".join(steps)}"/>')
    for p in points:
        body += _point(p, sx(p.submitted_at.timestamp()), sy)
    return _svg(_W, _H, label, body)


def _y_axis(ticks: list[float], sy, left: float, right: float) -> list[str]:
    out = []
    for t in ticks:
        y = _f(sy(t))
        out.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y}" y2="{y}"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y}" text-anchor="end" dy="0.32em">{t:g}</text>')
    return out


def _x_axis(points: Sequence[ScorePoint], sx, y: float) -> list[str]:
    out = [f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y}" y2="{y}"/>']
    first, last = points[0].submitted_at, points[-1].submitted_at
    labels = [(first, "start")] if first == last else [(first, "start"), (last, "end")]
    for at, anchor in labels:
        x = sx(at.timestamp()) if first != last else _LEFT
        text = escape(f"{at:%Y-%m-%d %H:%M}")
        out.append(f'<text class="tick" x="{_f(x)}" y="{y + 18}" text-anchor="{anchor}">{text}</text>')
    out.append(f'<text class="axis-label" x="{_LEFT + (_W - _LEFT - _RIGHT) / 2}" y="{y + 34}" '
               f'text-anchor="middle">submission time (UTC)</text>')
    return out


def _point(p: ScorePoint, x: float, sy) -> list[str]:
    out = []
    if p.low is not None and p.high is not None:
        out.append(f'<line class="ci" x1="{_f(x)}" x2="{_f(x)}" y1="{_f(sy(p.low))}" y2="{_f(sy(p.high))}"/>')
    tip = f"#{p.id} {p.submitted_at:%Y-%m-%d %H:%M} UTC: Public {p.score:.4f}"
    if p.low is not None and p.high is not None:
        tip += f" [{p.low:.4f}, {p.high:.4f}]"
    if p.private is not None:
        tip += f"; Private {p.private:.4f}"
    dot = f'<circle class="pt" cx="{_f(x)}" cy="{_f(sy(p.score))}" r="4"><title>{escape(tip)}</title></circle>'
    if p.private is not None:
        dot += f'<rect class="pt-private" x="{_f(x - 3.5)}" y="{_f(sy(p.private) - 3.5)}" width="7" height="7"/>'
    out.append(f'<a href="{escape(p.url)}">{dot}</a>' if p.url else dot)
    return out


def roc_chart_svg(fpr: Sequence[float], tpr: Sequence[float], *, label: str = "ROC curve") -> Markup:
    """A ROC curve through the given points, with the chance diagonal.

    Parameters
    ----------
    fpr, tpr : sequence of float
        False and true positive rates, the same length, fpr increasing.
    label : str
        Accessible title of the chart.

    Returns
    -------
    Markup
        An ``<svg>`` element.
    """
    size, left, top, right = 340, 52, 12, 14
    side = size - left - right

    def sx(v: float) -> float:
        return left + v * side

    def sy(v: float) -> float:
        return top + side - v * side

    body = []
    for t in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        body.append(f'<line class="grid" x1="{_f(sx(t))}" x2="{_f(sx(t))}" y1="{top}" y2="{top + side}"/>')
        body.append(f'<line class="grid" x1="{left}" x2="{left + side}" y1="{_f(sy(t))}" y2="{_f(sy(t))}"/>')
        body.append(f'<text class="tick" x="{_f(sx(t))}" y="{top + side + 16}" text-anchor="middle">{t:g}</text>')
        body.append(f'<text class="tick" x="{left - 6}" y="{_f(sy(t))}" text-anchor="end" dy="0.32em">{t:g}</text>')
    body.append(f'<line class="chance" x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}"/>')
    pts = " ".join(f"{_f(sx(x))},{_f(sy(y))}" for x, y in [(0.0, 0.0), *zip(fpr, tpr)])  # every curve starts at 0,0
    body.append(f'<polyline class="roc" points="{pts}"/>')
    for x, y in zip(fpr, tpr):
        tip = escape(f"FPR {x:.2f}: TPR {y:.3f}")
        body.append(f'<circle class="pt" cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="2.5"><title>{tip}</title></circle>')
    body.append(f'<text class="axis-label" x="{left + side / 2}" y="{size - 6}" text-anchor="middle">'
                "false positive rate</text>")
    body.append(f'<text class="axis-label" transform="translate(14 {top + side / 2}) rotate(-90)" '
                'text-anchor="middle">true positive rate</text>')
    return _svg(size, size, label, body)
