"""A team's own model: a Python file that defines ``make_estimator(random_state)``.

``ships cv path/to/model.py`` evaluates it exactly as a baseline: the official folds, the same
metrics and intervals, the same MLflow runs.  The file is run once, as a module; the estimator
it returns is wrapped in a :class:`TeamEstimator`, which

- calls the team's ``fit`` and ``predict_proba`` and turns any exception raised there into a
  :class:`~competition.errors.ModelError` that says "your model raised" and shows the
  traceback of the team's own frames (not the harness's);
- checks every output of ``predict_proba``: shape ``(n, 2)``, no NaN, values in [0, 1];
- pickles the team's code by value (cloudpickle), so that local worker processes and the
  workers of a Dask cluster run it without having the file.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import inspect
import sys
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cloudpickle
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from competition.errors import ModelError, ParameterError

__all__ = ["TeamModel", "TeamEstimator", "load_team_model", "is_model_file", "check_proba"]

CONTRACT = ("a function make_estimator(random_state) that returns an estimator with fit(X, y) and "
            "predict_proba(X) on uint8 chips of shape (n, 80, 80, 3), as in submissions/example_model.py")
_MAX_FRAMES = 10  # of the team's frames shown (a deep recursion shows its last ten)
_DYNAMIC_CODE = "<dynamic-code>"  # the file name cloudpickle gives to code it pickled by value


def is_model_file(spec: str) -> bool:
    """True when ``spec`` names a model file rather than a baseline: it ends in .py or is a path."""
    return spec.endswith(".py") or "/" in spec or "\\" in spec or Path(spec).is_file()


@dataclass(frozen=True)
class TeamModel:
    """A team's model file, run once: its name (the file name), path and ``make_estimator``."""

    name: str
    path: Path
    module: ModuleType

    def make_estimator(self, random_state=0, **params) -> "TeamEstimator":
        """The team's estimator for ``random_state``, wrapped and checked.

        Raises
        ------
        ParameterError
            For a parameter that ``make_estimator`` does not take.
        ModelError
            If ``make_estimator`` raises, or returns something without ``fit`` and ``predict_proba``.
        """
        make = self.module.make_estimator
        accepted = inspect.signature(make).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
        unknown = sorted(set(params) - set(accepted))
        if unknown and not takes_any:
            raise ParameterError(f"{self.path}: make_estimator takes no parameter {', '.join(unknown)}; expected some "
                                 f"of: {', '.join(p for p in accepted if p != 'random_state') or '(none)'}")
        call = f"make_estimator(random_state={random_state!r})"
        with users_code(self.path, f"in {call}"):
            estimator = make(random_state=random_state, **params)
        if isinstance(estimator, type):
            raise ModelError(f"{self.path}: {call} returned the class {estimator.__name__}, not an estimator; "
                             f"return an instance, e.g. {estimator.__name__}(...)")
        missing = [m for m in ("fit", "predict_proba") if not callable(getattr(estimator, m, None))]
        if missing:
            raise ModelError(f"{self.path}: {call} returned {type(estimator).__name__}, which has no "
                             f"{' and no '.join(missing)}; expected {CONTRACT} (a classifier without predict_proba "
                             "can be wrapped in sklearn.calibration.CalibratedClassifierCV)")
        return TeamEstimator(estimator, source=str(self.path))


def load_team_model(path: str | Path, *, name: str = "model") -> TeamModel:
    """Run a team's model file as a module and check that it defines ``make_estimator(random_state)``.

    Raises
    ------
    ParameterError
        If the file does not exist (``name`` names the argument).
    ModelError
        If running the file raises (its traceback shown), or it defines no callable
        ``make_estimator`` taking ``random_state``.
    """
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{name} {str(path)!r}: no such file; expected a Python file that defines {CONTRACT}")
    module_name = "ships_team_model_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    loader = importlib.machinery.SourceFileLoader(module_name, str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(module_name, loader))
    sys.modules[module_name] = module  # pickled by value below: workers never import it by name
    try:
        with users_code(path, "while the file was run"):
            loader.exec_module(module)
    except ModelError:
        del sys.modules[module_name]
        raise
    cloudpickle.register_pickle_by_value(module)
    make = getattr(module, "make_estimator", None)
    if not callable(make):
        raise ModelError(f"{path}: defines no make_estimator; expected {CONTRACT}")
    parameters = inspect.signature(make).parameters
    if "random_state" not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        raise ModelError(f"{path}: make_estimator{inspect.signature(make)} takes no random_state; expected {CONTRACT}")
    return TeamModel(path.name, path, module)


@contextmanager
def users_code(source: str | Path, where: str):
    """Run the team's code: any exception it raises becomes a ModelError with the team's traceback.

    ``where`` completes "your model raised ValueError ...", e.g. "in fit".
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the team's code may raise anything; it is input, not a bug of ours
        raise ModelError(f"{source}: your model raised {type(exc).__name__} {where}\n"
                         f"{users_traceback(exc, source)}") from exc


def users_traceback(exc: BaseException, source: str | Path) -> str:
    """The frames of ``exc``'s traceback that are in the team's file, then the exception itself.

    Code pickled by value (on a worker) has lost its file name (cloudpickle names it
    ``<dynamic-code>``): those frames are the team's, shown with the file's path.
    """
    te = traceback.TracebackException.from_exception(exc, capture_locals=False)
    target = str(Path(source).resolve())
    frames = [f for f in te.stack if f.filename == _DYNAMIC_CODE or str(Path(f.filename).resolve()) == target]
    shown = [traceback.FrameSummary(str(source), f.lineno, f.name) if f.filename == _DYNAMIC_CODE else f
             for f in frames[-_MAX_FRAMES:]]
    lines = ["Traceback of your code (most recent call last):\n", *traceback.StackSummary.from_list(shown).format()]
    last = te.stack[-1] if te.stack else None
    if last is not None and (not frames or last is not frames[-1]) and not last.filename.startswith("<"):
        lines.append(f"  ... raised inside {last.filename}, line {last.lineno}, in {last.name}\n")
    lines += list(te.format_exception_only())
    return "".join(lines).rstrip("\n")


def check_proba(proba, n: int, source: str) -> np.ndarray:
    """The output of the team's ``predict_proba`` as floats, checked: shape ``(n, 2)``, no NaN, in [0, 1].

    Raises
    ------
    ModelError
        Saying what was returned and what was expected.
    """
    where = f"{source}: your model's predict_proba"
    try:
        arr = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where} returned {type(proba).__name__}, not numbers ({exc}); expected an array of shape "
                         f"({n}, 2)") from exc
    if arr.shape != (n, 2):
        raise ModelError(f"{where} returned shape {arr.shape} for {n} chips; expected ({n}, 2): column 0 the "
                         "probability of no ship, column 1 of ship")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise ModelError(f"{where} returned NaN or infinite values in {len(bad)} of {n} rows (first: row {bad[0]}, "
                         f"{arr[bad[0]].tolist()}); expected probabilities in [0, 1]")
    bad = np.flatnonzero(((arr < -1e-9) | (arr > 1 + 1e-9)).any(axis=1))
    if len(bad):
        raise ModelError(f"{where} returned values outside [0, 1] in {len(bad)} of {n} rows (first: row {bad[0]}, "
                         f"{arr[bad[0]].tolist()}); expected probabilities (scores such as decision_function's "
                         "need a calibration, e.g. sklearn.calibration.CalibratedClassifierCV)")
    return np.clip(arr, 0.0, 1.0)


class TeamEstimator(ClassifierMixin, BaseEstimator):
    """A team's estimator, run as the team's code and checked (see the module docstring).

    Parameters
    ----------
    estimator : object
        What the team's ``make_estimator`` returned; cloned (or deep-copied) before each fit.
    source : str
        The model file, named in every message.
    """

    def __init__(self, estimator=None, source="model.py"):
        self.estimator = estimator
        self.source = source

    def fit(self, X, y, groups=None):
        """Fit a copy of the team's estimator; ``groups`` go to its ``fit`` when it takes them."""
        with users_code(self.source, "in fit"):
            fitted = clone(self.estimator, safe=False)
            takes_groups = "groups" in inspect.signature(fitted.fit).parameters
            fitted.fit(X, y, **({"groups": groups} if groups is not None and takes_groups else {}))
        self.estimator_ = fitted
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X) -> np.ndarray:
        """The team's probabilities of no ship and ship, checked, shape ``(n, 2)``."""
        check_is_fitted(self, "estimator_")
        with users_code(self.source, "in predict_proba"):
            proba = self.estimator_.predict_proba(X)
        return check_proba(proba, len(X), self.source)

    def predict(self, X) -> np.ndarray:
        """0/1 prediction at probability 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    def __getstate__(self) -> dict:
        """The team's objects pickled by value, so that workers without the file can run them."""
        return {"cloudpickled": cloudpickle.dumps(self.__dict__)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(cloudpickle.loads(state["cloudpickled"]))
