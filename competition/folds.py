"""Which folds a cross-validation uses: the workspace's official ones, or fresh ones and why.

The official folds (``public/folds.csv``) were made by ``ships init`` with the workspace's
grouping (``group_by``) and number of folds (``n_splits``).  A cross-validation uses them
unless another split or another number of folds is asked for; then :func:`plan_folds` says
why the folds are fresh, so that no score is taken for an official one by mistake.
Pure functions of arrays: no file is read here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, PredefinedSplit, StratifiedGroupKFold, StratifiedKFold

from competition.data import make_groups
from competition.errors import ParameterError

__all__ = ["CV_KINDS", "GROUPED_CV_KINDS", "LEAKY_CV_KINDS", "FoldPlan", "plan_folds", "check_n_splits",
           "check_leaky_n_splits", "make_splitter"]

CV_KINDS = ("date", "scene", "stratified", "random")
LEAKY_CV_KINDS = ("stratified", "random")
GROUPED_CV_KINDS = {"date": "acquisition day", "scene": "scene id"}  # kind -> what a group is


def check_n_splits(n_splits, groups=None, *, name: str = "n_splits") -> int:
    """Validate a number of folds: an int >= 2 and, with groups, at most the number of groups.

    Raises
    ------
    ParameterError
        Naming the argument (``name``) and its value.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise ParameterError(f"{name}={n_splits!r} is invalid; expected an int >= 2")
    if groups is not None:
        n_groups = len(np.unique(np.asarray(groups)))
        if n_splits > n_groups:
            raise ParameterError(f"{name}={n_splits} is more than the {n_groups} groups; expected {name} <= {n_groups}")
    return int(n_splits)


@dataclass(frozen=True)
class FoldPlan:
    """The split a cross-validation will use: the workspace's official folds, or fresh ones and why.

    Attributes
    ----------
    cv : str
        One of ``CV_KINDS``.
    n_splits : int
    groups : ndarray of shape (n,) or None
        Group of each chip for a grouped split (``date``: acquisition day, ``scene``: scene id).
    folds : ndarray of shape (n,) or None
        The official fold of each chip, or None when fresh folds are drawn.
    reason : str
        Why fresh folds are drawn ("" for the official folds).
    """

    cv: str
    n_splits: int
    groups: np.ndarray | None
    folds: np.ndarray | None
    reason: str = ""

    @property
    def official(self) -> bool:
        """True when the cross-validation uses the official folds."""
        return self.folds is not None


def plan_folds(y, scene_id, official_folds, *, group_by: str, cv: str | None = None, n_splits: int | None = None,
               name: str = "n_splits") -> FoldPlan:
    """The official folds, unless another split (``cv``) or another number of folds is asked for.

    Parameters
    ----------
    y, scene_id, official_folds : arrays of shape (n,)
        Label, scene id and official fold (``public/folds.csv``) of each train chip.
    group_by : {'date', 'scene'}
        The grouping the official folds were made with (the workspace's ``group_by``).
    cv : str, optional
        One of ``CV_KINDS``; default: ``group_by``.
    n_splits : int, optional
        Default: the number of official folds.
    name : str
        Name of ``n_splits`` in error messages (e.g. ``--folds``).

    Raises
    ------
    ParameterError
        For an unknown ``cv``, or a number of folds below 2 or above the number of groups
        (or of chips of the smaller class, for a leaky split).
    """
    if group_by not in GROUPED_CV_KINDS:
        raise ParameterError(f"group_by={group_by!r} is invalid; expected one of {', '.join(GROUPED_CV_KINDS)}")
    cv = group_by if cv is None else cv
    if cv not in CV_KINDS:
        raise ParameterError(f"cv={cv!r} is invalid; expected one of {', '.join(CV_KINDS)}")
    official_n = len(np.unique(official_folds))
    n = official_n if n_splits is None else check_n_splits(n_splits, name=name)
    groups = make_groups(np.asarray(scene_id), cv) if cv in GROUPED_CV_KINDS else None
    if groups is not None:
        check_n_splits(n, groups, name=name)
    else:
        check_leaky_n_splits(n, np.asarray(y), cv, name=name)
    if cv == group_by and n == official_n:
        return FoldPlan(cv, n, groups, np.asarray(official_folds))
    if cv != group_by:
        asked = f"a split by {GROUPED_CV_KINDS[cv]}" if cv in GROUPED_CV_KINDS else f"a leaky {cv} split"
        reason = f"{asked} (cv={cv!r}) was asked for; the official folds group by {GROUPED_CV_KINDS[group_by]}"
    else:
        reason = f"{n} folds were asked for; the workspace has {official_n} official folds"
    return FoldPlan(cv, n, groups, None, reason)


def check_leaky_n_splits(n_splits: int, y: np.ndarray, cv: str, *, name: str = "n_splits") -> None:
    """A leaky split needs at least ``n_splits`` chips (of each class, when stratified).

    Raises
    ------
    ParameterError
        Naming the argument (``name``), its value and the bound.
    """
    smallest = int(np.bincount(y.astype(np.int64)).min()) if cv == "stratified" else len(y)
    if n_splits > smallest:
        raise ParameterError(f"{name}={n_splits} is more than the {smallest} chips of the smallest class; "
                             f"expected {name} <= {smallest}")


def make_splitter(cv: str, *, n_splits: int = 5, random_state=0, folds=None):
    """The scikit-learn splitter of a ``cv`` kind and a short description of it.

    With ``folds`` (the official fold of each chip; grouped kinds only) it is a ``PredefinedSplit``.

    Returns
    -------
    splitter, description : (cross-validator, str)
    """
    if cv not in CV_KINDS:
        raise ParameterError(f"cv={cv!r} is invalid; expected one of {', '.join(CV_KINDS)}")
    if folds is not None:
        if cv not in GROUPED_CV_KINDS:
            raise ParameterError(f"cv={cv!r} is a leaky split and cannot use the official folds; "
                                 "pass folds=None for fresh folds")
        return PredefinedSplit(np.asarray(folds)), f"PredefinedSplit (official folds by {GROUPED_CV_KINDS[cv]})"
    if cv in GROUPED_CV_KINDS:
        return (StratifiedGroupKFold(n_splits, shuffle=True, random_state=random_state),
                f"StratifiedGroupKFold by {GROUPED_CV_KINDS[cv]}")
    if cv == "stratified":
        return StratifiedKFold(n_splits, shuffle=True, random_state=random_state), "StratifiedKFold (leaky)"
    return KFold(n_splits, shuffle=True, random_state=random_state), "KFold (leaky)"
