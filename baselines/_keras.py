"""Shared pieces of the Keras baselines: input checks, backend import, seeding,
the grouped validation split, dihedral augmentation, and a picklable estimator base.

Only the ``keras`` API is used in model code, so the baselines run on the
TensorFlow, JAX and PyTorch backends alike.  Keras itself is imported inside
functions, never when this module is imported.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import ShuffleSplit, StratifiedGroupKFold, StratifiedShuffleSplit
from sklearn.utils.validation import check_is_fitted

from competition.data import check_chips
from competition.errors import ModelError, ParameterError

__all__ = [
    "KerasChipClassifier",
    "check_chips",
    "import_keras",
    "available_backends",
    "seed_everything",
    "split_validation",
    "dihedral_layer_class",
    "model_to_bytes",
    "model_from_bytes",
    "run_phase",
    "check_number",
    "make_with_params",
]

BACKENDS = ("tensorflow", "jax", "torch")
_INSTALL = {
    "tensorflow": "pip install tensorflow (tensorflow-cpu on a CPU-only machine)",
    "jax": "pip install jax (on an NVIDIA GPU: pip install 'jax[cuda12]')",
    "torch": "pip install torch",
}
_PREDICT_CHUNK = 2048
_PREDICT_BATCH = 256


def available_backends() -> list[str]:
    """Keras backends whose framework is importable here."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def import_keras():
    """Import and return ``keras``, turning a missing backend into a :class:`ModelError`."""
    try:
        return importlib.import_module("keras")
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "keras":
            raise ModelError("keras is not installed; install it with pip install 'keras>=3'") from exc
        backend = "jax" if missing in ("jax", "jaxlib") else missing
        raise ModelError(_backend_message(backend, str(exc))) from exc
    except ValueError as exc:  # keras: "Unable to import backend : NAME"
        raise ModelError(_backend_message(str(exc).rsplit(":", 1)[-1].strip(), str(exc))) from exc


def _backend_message(backend: str, reason: str) -> str:
    how = _INSTALL.get(backend, f"KERAS_BACKEND must be one of {list(BACKENDS)}")
    found = available_backends() or ["none"]
    return (
        f"Keras backend {backend!r} cannot be imported ({reason}); install it with {how}, "
        f"or set KERAS_BACKEND to an installed backend (installed here: {', '.join(found)})"
    )


def seed_everything(keras, random_state) -> None:
    """Seed Python, NumPy and the backend, and ask the backend for deterministic ops.

    TensorFlow: op determinism; PyTorch: deterministic algorithms (warn only).
    JAX is deterministic on CPU; on a GPU set ``XLA_FLAGS=--xla_gpu_deterministic_ops=true``
    before start-up for bit-identical runs.
    """
    if random_state is None:
        return
    keras.utils.set_random_seed(int(random_state))
    backend = keras.backend.backend()
    if backend == "tensorflow":
        importlib.import_module("tensorflow").config.experimental.enable_op_determinism()
    elif backend == "torch":
        importlib.import_module("torch").use_deterministic_algorithms(True, warn_only=True)


def split_validation(y: np.ndarray, groups, validation_fraction: float, random_state):
    """Carve a validation part from a training set: ``(train_idx, val_idx)``.

    With ``groups``, whole groups only (one fold of a shuffled ``StratifiedGroupKFold``
    with ``round(1 / validation_fraction)`` folds), so no group is on both sides.
    Without, a stratified random split.  ``validation_fraction=0`` gives no validation.
    """
    y = np.asarray(y).astype(int)
    n = len(y)
    index = np.arange(n)
    if validation_fraction == 0:
        return index, index[:0]
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ParameterError(f"groups has shape {groups.shape}; expected ({n},), one group per chip")
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            raise ParameterError(
                f"groups has {n_groups} distinct value(s); a grouped validation split needs at least 2 "
                "(pass finer groups, groups=None, or validation_fraction=0)"
            )
        n_splits = int(min(max(2, round(1 / validation_fraction)), n_groups))
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        return next(cv.split(np.zeros(n), y, groups))
    stratify = np.bincount(y, minlength=2).min() >= 2 and round(n * validation_fraction) >= 2
    cls = StratifiedShuffleSplit if stratify else ShuffleSplit
    cv = cls(n_splits=1, test_size=validation_fraction, random_state=random_state)
    return next(cv.split(np.zeros(n), y))


@functools.cache
def dihedral_layer_class():
    """The ``RandomDihedral`` layer class (built once, after keras is imported)."""
    keras = import_keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="ships")
    class RandomDihedral(keras.layers.Layer):
        """Random flip/90-degree rotation of square images: the 8 symmetries of a chip.

        Each image of a batch gets an independent transpose, vertical and horizontal
        flip (each with probability 1/2), which together draw uniformly from the
        dihedral group.  Active only in training.
        """

        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs, training=None):
            if not training:
                return inputs
            coins = keras.random.uniform((ops.shape(inputs)[0], 1, 1, 1, 3), seed=self.seed_generator) < 0.5
            x = ops.where(coins[..., 0], ops.transpose(inputs, (0, 2, 1, 3)), inputs)
            x = ops.where(coins[..., 1], ops.flip(x, axis=1), x)
            return ops.where(coins[..., 2], ops.flip(x, axis=2), x)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "seed": self.seed}

    return RandomDihedral


def model_to_bytes(model) -> bytes:
    """The bytes of ``model.save`` in the native ``.keras`` format."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def model_from_bytes(data: bytes):
    """Rebuild a model from :func:`model_to_bytes` output (not compiled: for prediction)."""
    keras = import_keras()
    layer = dihedral_layer_class()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(data)
        return keras.models.load_model(path, custom_objects={layer.__name__: layer}, compile=False)


def run_phase(keras, model, data, validation, *, epochs, learning_rate, patience, batch_size, verbose):
    """Compile and train ``model`` once; returns ``(history dict, seconds per epoch)``.

    With a validation part, early stopping on ``val_loss`` restores the best weights.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    timer = _epoch_timer(keras)
    callbacks = [timer]
    if validation is not None:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True))
    history = model.fit(
        data[0], data[1], validation_data=validation, epochs=epochs, batch_size=batch_size,
        callbacks=callbacks, shuffle=True, verbose=verbose,
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}, timer.seconds


def _epoch_timer(keras):
    class EpochTimer(keras.callbacks.Callback):
        seconds: list

        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def check_number(name, value, kind, low, high=None, low_open=False):
    ok = isinstance(value, kind) and not isinstance(value, bool)
    ok = ok and (value > low if low_open else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high is not None else "")
        raise ParameterError(f"{name}={value!r} is invalid; expected {'an int' if kind is int else 'a number'} {bound}")


class KerasChipClassifier(ClassifierMixin, BaseEstimator):
    """Base of the Keras baselines: fit/predict on raw chips, pickling through ``model.save``.

    Subclasses define ``_preprocess(keras, X) -> float32 array`` and
    ``_train(keras, data, validation, setup) -> (model, history, epoch seconds)``,
    and may define ``_prepare(keras) -> setup`` (checks made before any training).
    """

    def _check_params(self):
        check_number("epochs", self.epochs, int, 1)
        check_number("batch_size", self.batch_size, int, 1)
        check_number("patience", self.patience, int, 0)
        check_number("validation_fraction", self.validation_fraction, (int, float), 0, 0.5)
        if self.random_state is not None:
            check_number("random_state", self.random_state, (int, np.integer), 0)

    def _prepare(self, keras):
        self.weights_source_ = "none"

    def fit(self, X, y, groups=None):
        """Train on raw chips ``X`` (n, 80, 80, 3) uint8 and labels ``y``; ``groups`` shape the validation split."""
        X = check_chips(X)
        self._check_params()
        classes, y01 = _encode_labels(y, len(X))
        keras = import_keras()
        seed_everything(keras, self.random_state)
        setup = self._prepare(keras)
        train, val = split_validation(y01, groups, self.validation_fraction, self.random_state)
        data = (self._preprocess(keras, X[train]), y01[train])
        validation = (self._preprocess(keras, X[val]), y01[val]) if len(val) else None
        start = time.perf_counter()
        self.model_, self.history_, self.epoch_seconds_ = self._train(keras, data, validation, setup)
        self.fit_seconds_ = time.perf_counter() - start
        self.classes_ = classes
        self.backend_ = keras.backend.backend()
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities ``(n, 2)``: columns follow ``classes_`` (no ship, ship)."""
        check_is_fitted(self, "model_")
        X = check_chips(X)
        keras = import_keras()
        parts = []
        for start in range(0, len(X), _PREDICT_CHUNK):
            chunk = self._preprocess(keras, X[start : start + _PREDICT_CHUNK])
            parts.append(np.asarray(self.model_.predict(chunk, batch_size=_PREDICT_BATCH, verbose=0)).reshape(-1))
        p = np.clip(np.concatenate(parts).astype(np.float64), 0.0, 1.0)
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Class labels at the 0.5 threshold."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_model_keras_bytes"] = model_to_bytes(model)
        return state

    def __setstate__(self, state):
        state = dict(state)
        data = state.pop("_model_keras_bytes", None)
        super().__setstate__(state)
        if data is not None:
            self.model_ = model_from_bytes(data)


def make_with_params(cls, random_state, params: dict):
    """``cls(random_state=random_state, **params)``, naming any parameter ``cls`` does not take."""
    known = [p for p in cls._get_param_names() if p != "random_state"]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ParameterError(f"{cls.__name__} takes no parameter {', '.join(unknown)}; expected some of: {', '.join(known)}")
    return cls(random_state=random_state, **params)


def _encode_labels(y, n: int):
    y = np.asarray(y)
    if y.shape != (n,):
        raise ParameterError(f"y has shape {y.shape}; expected ({n},), one label per chip")
    classes, y01 = np.unique(y, return_inverse=True)
    if len(classes) != 2:
        raise ParameterError(f"y holds {len(classes)} class(es) {classes.tolist()}; expected 2 (0 no ship, 1 ship)")
    return classes, y01.astype("float32")
