"""Evaluation plots as matplotlib figures (Agg, no pyplot state): ROC, precision-recall, confusion matrix.

Pure functions of ``y_true`` and ``y_proba``; tracking saves them as PNG.  Baselines draw
them from their cross-validation's out-of-fold predictions, never from test labels.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import auc, average_precision_score, confusion_matrix, precision_recall_curve, roc_curve

from competition.scoring import THRESHOLD

__all__ = ["plot_roc", "plot_precision_recall", "plot_confusion", "make_plots"]


def _figure() -> tuple[Figure, object]:
    fig = Figure(figsize=(4.5, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def plot_roc(y_true: np.ndarray, y_proba: np.ndarray, title: str = "ROC curve") -> Figure:
    """ROC curve with its area, and the chance diagonal."""
    fpr, tpr, _ = roc_curve(y_true, y_proba)
    fig, ax = _figure()
    ax.plot(fpr, tpr, lw=1.8, label=f"ROC AUC = {auc(fpr, tpr):.4f}")
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return fig


def plot_precision_recall(y_true: np.ndarray, y_proba: np.ndarray, title: str = "Precision-recall curve") -> Figure:
    """Precision-recall curve with the average precision, and the prevalence line."""
    precision, recall, _ = precision_recall_curve(y_true, y_proba)
    prevalence = float(np.mean(y_true))
    fig, ax = _figure()
    ax.step(recall, precision, where="post", lw=1.8,
            label=f"average precision = {average_precision_score(y_true, y_proba):.4f}")
    ax.axhline(prevalence, ls="--", lw=1, color="grey", label=f"prevalence = {prevalence:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left")
    return fig


def plot_confusion(y_true: np.ndarray, y_proba: np.ndarray, title: str = "Confusion matrix") -> Figure:
    """Confusion matrix at the scoring threshold, counts and row shares."""
    cm = confusion_matrix(y_true, (np.asarray(y_proba) >= THRESHOLD).astype(int), labels=[0, 1])
    fig, ax = _figure()
    ax.imshow(cm, cmap="Blues")
    shares = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    for (i, j), n in np.ndenumerate(cm):
        ax.text(j, i, f"{n}\n({shares[i, j]:.1%})", ha="center", va="center",
                color="white" if n > cm.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["no ship", "ship"], yticklabels=["no ship", "ship"],
           xlabel=f"predicted (threshold {THRESHOLD})", ylabel="true", title=title)
    return fig


def make_plots(y_true: np.ndarray, y_proba: np.ndarray, label: str = "") -> dict[str, Figure]:
    """The three plots, keyed by their PNG file name."""
    suffix = f" ({label})" if label else ""
    return {
        "roc_curve.png": plot_roc(y_true, y_proba, "ROC curve" + suffix),
        "precision_recall_curve.png": plot_precision_recall(y_true, y_proba, "Precision-recall" + suffix),
        "confusion_matrix.png": plot_confusion(y_true, y_proba, "Confusion matrix" + suffix),
    }
