"""Saving and loading fitted models (joblib), for ``ships baseline run --save`` and ``ships detect``.

A model file is a joblib pickle: load only files you trust, since unpickling runs code.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zlib
from pathlib import Path

from competition.errors import ModelError

__all__ = ["save_model", "load_model"]

# What joblib/pickle raise on a truncated, corrupt or foreign file, or one whose classes are gone
# (MemoryError: a corrupt frame header that claims a huge size).
_LOAD_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError, TypeError,
                AttributeError, ImportError, zlib.error, OSError, MemoryError)


def save_model(estimator, path: Path) -> Path:
    """Write a fitted estimator to ``path`` (joblib, compressed), atomically.

    The parent folder is created if needed; an existing file is replaced only
    once the new one is complete.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ModelError
        If the file cannot be written or the estimator cannot be pickled.
    """
    import joblib

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ModelError(f"{path}: cannot write the model file ({exc.strerror}); choose a writable path") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            joblib.dump(estimator, fh, compress=3)
        os.replace(tmp, path)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ModelError(f"{path}: cannot save a model of type {type(estimator).__name__} ({exc})") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_model(path: Path):
    """Read an estimator written by :func:`save_model` (or any joblib-pickled estimator).

    Raises
    ------
    ModelError
        If the file is missing, is not a joblib model file, or needs a package that is
        not installed.
    """
    import joblib

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file; save one with `ships baseline run NAME --save {path}`")
    try:
        return joblib.load(path)
    except ImportError as exc:
        raise ModelError(f"{path}: the model needs a package that is not installed ({exc}); install it") from exc
    except _LOAD_ERRORS as exc:
        raise ModelError(
            f"{path}: not a readable model file ({type(exc).__name__}: {exc}); expected a file written by "
            "`ships baseline run NAME --save PATH` (joblib)"
        ) from exc
