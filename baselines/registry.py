"""The baselines by name: ``BASELINES`` and :func:`make_baseline`.

Each baseline is one module of this package with a ``make_estimator(random_state=0, **params)``
function; its module is imported only when the baseline is made, so listing the baselines
imports neither xgboost nor keras.  The description of each is the first line of its module
docstring, read from the source.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from competition.errors import ModelError, ParameterError

__all__ = ["Baseline", "BASELINES", "make_baseline", "baseline_names"]

_MODULES = {
    "dummy": "baselines.dummy",
    "logreg": "baselines.logreg",
    "knn": "baselines.knn",
    "xgboost": "baselines.xgboost",
    "cnn": "baselines.cnn",
    "vgg16": "baselines.vgg16",
}


@dataclass(frozen=True)
class Baseline:
    """One baseline: its name, the module that makes it and a one-line description."""

    name: str
    module: str
    description: str


def _describe(module: str) -> str:
    """First line of a module's docstring, read from its source without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return "(module not installed)"
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


BASELINES: MappingProxyType[str, Baseline] = MappingProxyType(
    {name: Baseline(name, module, _describe(module)) for name, module in _MODULES.items()}
)


def baseline_names() -> list[str]:
    """Names of every baseline, in listing order."""
    return list(BASELINES)


def make_baseline(name: str, random_state=0, **params):
    """A fresh, unfitted estimator of the named baseline.

    Parameters
    ----------
    name : str
        One of ``BASELINES``.
    random_state : int or None, default=0
    **params
        Passed to the module's ``make_estimator``.

    Returns
    -------
    estimator
        ``fit(X, y, groups=None)`` and ``predict_proba(X) -> (n, 2)`` on uint8 chips ``(n, 80, 80, 3)``.

    Raises
    ------
    ParameterError
        For an unknown name (listing the known ones) or a parameter the baseline does not take.
    ModelError
        If the baseline's module cannot be imported (a missing dependency).
    """
    if name not in BASELINES:
        raise ParameterError(f"unknown model {name!r}; expected one of: {', '.join(BASELINES)}")
    module_name = BASELINES[name].module
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"baseline {name!r} cannot be imported ({exc}); install its dependency") from exc
    accepted = inspect.signature(module.make_estimator).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(set(params) - set(accepted))
    if unknown and not takes_any:
        known = [p for p in accepted if p != "random_state"]
        raise ParameterError(f"baseline {name!r} takes no parameter {', '.join(unknown)}; expected some of: {', '.join(known)}")
    try:
        return module.make_estimator(random_state=random_state, **params)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ParameterError(f"baseline {name!r} does not take {', '.join(sorted(params))} ({exc})") from exc
