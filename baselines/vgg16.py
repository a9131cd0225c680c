"""VGG16 transfer learning for 80x80 RGB chips (Keras 3).

``keras.applications.VGG16(include_top=False)`` with a new dense head.  With
pretrained weights (``'imagenet'`` or a local file) training has two phases:
the head on the frozen base, then the last block (``block5``) unfrozen with a
low learning rate.  With ``weights='none'`` the whole network trains from
scratch in one phase.  Weights are resolved and loaded before any training, so
a missing, corrupt or foreign weights file, or ImageNet weights that cannot be
downloaded, fail at once with a :class:`~competition.errors.ModelError`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from baselines._keras import KerasChipClassifier, check_number, dihedral_layer_class, make_with_params, run_phase
from competition.data import CHIP_SHAPE
from competition.errors import ModelError, ParameterError

__all__ = ["VGG16Classifier", "make_estimator", "resolve_weights", "WEIGHTS_FILE"]

WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + WEIGHTS_FILE
WEIGHTS_MD5 = "6d6bbae143d832006294945121d1f1fc"
_ALTERNATIVES = "--weights PATH (a local copy of that file) or --weights none (train from scratch)"


class VGG16Classifier(KerasChipClassifier):
    """VGG16 ship classifier on raw chips.

    Parameters
    ----------
    weights : str or path, default='imagenet'
        ``'imagenet'`` (Keras's cache, else its download), the path of a weights file
        for ``VGG16(include_top=False)``, or ``'none'`` to train from scratch.
    epochs : int, default=20
        Maximum epochs of the first phase: the head on the frozen base, or the whole
        network when ``weights='none'``.
    fine_tune_epochs : int, default=10
        Maximum epochs with ``block5`` unfrozen (pretrained weights only; 0 skips it).
    batch_size : int, default=64
    learning_rate : float or None, default=None
        Adam learning rate of the first phase; None: 1e-3 for the head on a pretrained
        base, 1e-4 from scratch.
    fine_tune_learning_rate : float, default=1e-5
    patience : int, default=5
        Epochs without a better ``val_loss`` before a phase stops (best weights restored).
    validation_fraction : float, default=0.2
        Share of the training chips (whole groups when ``groups`` is given) held out.
    random_state : int or None, default=0
    verbose : int, default=0

    Attributes
    ----------
    classes_, model_, history_ (both phases, one entry per epoch), backend_,
    weights_source_ : str
        ``'imagenet'``, the weights path as given, or ``'none'``.
    weights_file_ : str or None
        The file the base weights were loaded from.
    phase_epochs_ : tuple of int
        Epochs run in each phase.
    fit_seconds_, epoch_seconds_
    """

    def __init__(
        self,
        weights="imagenet",
        epochs=20,
        fine_tune_epochs=10,
        batch_size=64,
        learning_rate=None,
        fine_tune_learning_rate=1e-5,
        patience=5,
        validation_fraction=0.2,
        random_state=0,
        verbose=0,
    ):
        self.weights = weights
        self.epochs = epochs
        self.fine_tune_epochs = fine_tune_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        super()._check_params()
        check_number("fine_tune_epochs", self.fine_tune_epochs, int, 0)
        if self.learning_rate is not None:
            check_number("learning_rate", self.learning_rate, (int, float), 0, low_open=True)
        check_number("fine_tune_learning_rate", self.fine_tune_learning_rate, (int, float), 0, low_open=True)

    def _prepare(self, keras):
        path, self.weights_source_ = resolve_weights(keras, self.weights)
        self.weights_file_ = None if path is None else str(path)
        base = keras.applications.VGG16(include_top=False, weights=None, input_shape=CHIP_SHAPE)
        if path is not None:
            load_base_weights(base, path)
        return base

    def _preprocess(self, keras, X):
        return keras.applications.vgg16.preprocess_input(X.astype(np.float32))

    def _train(self, keras, data, validation, base):
        pretrained = self.weights_file_ is not None
        base.trainable = not pretrained
        model = _build_model(keras, base, self.random_state)
        lr = self.learning_rate or (1e-3 if pretrained else 1e-4)
        common = dict(patience=self.patience, batch_size=self.batch_size, verbose=self.verbose)
        history, seconds = run_phase(keras, model, data, validation, epochs=self.epochs, learning_rate=lr, **common)
        self.phase_epochs_ = (len(seconds), 0)
        if pretrained and self.fine_tune_epochs > 0:
            base.trainable = True
            for layer in base.layers:
                layer.trainable = layer.name.startswith("block5")
            more, more_seconds = run_phase(
                keras, model, data, validation, epochs=self.fine_tune_epochs,
                learning_rate=self.fine_tune_learning_rate, **common,
            )
            history = {k: history.get(k, []) + more.get(k, []) for k in {**history, **more}}
            seconds = seconds + more_seconds
            self.phase_epochs_ = (self.phase_epochs_[0], len(more_seconds))
        return model, history, seconds


def _build_model(keras, base, seed):
    layers = keras.layers
    inputs = keras.Input(shape=CHIP_SHAPE, name="chip")
    x = dihedral_layer_class()(seed=seed, name="dihedral")(inputs)
    x = base(x, training=False)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(256, activation="relu", name="dense")(x)
    x = layers.Dropout(0.5, seed=seed, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="ship")(x)
    return keras.Model(inputs, outputs, name="ships_vgg16")


def resolve_weights(keras, weights) -> tuple[Path | None, str]:
    """The weights file to load and the source label (``'imagenet'``, the path, ``'none'``).

    Raises
    ------
    ModelError
        A path that is not a file, or ImageNet weights neither cached nor downloadable.
    """
    if weights is None or (isinstance(weights, str) and weights.lower() == "none"):
        return None, "none"
    if isinstance(weights, str) and weights.lower() == "imagenet":
        return imagenet_weights_file(keras), "imagenet"
    if not isinstance(weights, (str, os.PathLike)):
        raise ParameterError(f"weights={weights!r} is invalid; expected 'imagenet', 'none' or the path of a weights file")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(
            f"weights={str(weights)!r}: no such file; expected the path of VGG16 notop weights "
            f"(e.g. {WEIGHTS_FILE}), or --weights imagenet, or --weights none (train from scratch)"
        )
    return path, str(weights)


def imagenet_cache_dir() -> Path:
    """The folder where Keras caches downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    try:
        home = importlib.import_module("keras.src.backend.config").keras_home()
    except (ImportError, AttributeError):
        home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    home = os.path.expanduser(home)
    if not os.access(home, os.W_OK):  # Keras falls back to /tmp/.keras, as get_file does
        home = os.path.join("/tmp", ".keras")
    return Path(home) / "models"


def imagenet_weights_file(keras) -> Path:
    """The cached ImageNet notop weights, downloaded through Keras when not cached yet.

    The cache is checked first; only then is the download tried.
    """
    cached = imagenet_cache_dir() / WEIGHTS_FILE
    if cached.is_file():
        return cached
    try:
        got = keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5)
    except Exception as exc:  # get_file raises a plain Exception for every network failure
        raise ModelError(
            f"weights='imagenet': the ImageNet weights are not cached and could not be downloaded ({exc}). "
            f"Keras expects the file {WEIGHTS_FILE} under {cached.parent}/ "
            f"(~/.keras/models/, or $KERAS_HOME/models when KERAS_HOME is set); copy it there from {WEIGHTS_URL}, "
            f"or use {_ALTERNATIVES}"
        ) from exc
    return Path(got)


def load_base_weights(base, path: Path) -> None:
    """Load ``path`` into the notop VGG16 ``base``.

    Raises
    ------
    ModelError
        If the file is not a readable weights file of ``VGG16(include_top=False)``.
    """
    try:
        base.load_weights(str(path))
    except (ValueError, OSError, KeyError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ModelError(
            f"{path}: not a usable VGG16 notop weights file ({type(exc).__name__}: {reason}); "
            f"expected the weights of VGG16(include_top=False) such as {WEIGHTS_FILE}; "
            f"replace the file, or use --weights imagenet or --weights none"
        ) from exc


def make_estimator(random_state=0, **params) -> VGG16Classifier:
    """A :class:`VGG16Classifier`; ``params`` are its constructor arguments (e.g. ``weights``)."""
    return make_with_params(VGG16Classifier, random_state, params)
