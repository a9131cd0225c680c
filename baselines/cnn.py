"""A small Keras 3 CNN for 80x80 RGB chips.

Four convolution blocks (conv, batch norm, ReLU, max pool) and a dense head,
trained with the 8 flip/rotation symmetries of a chip as augmentation and early
stopping on a validation part carved from the training set by whole groups
(acquisition days) when ``groups`` is given.  Only the ``keras`` API is used,
so it runs on TensorFlow, JAX and PyTorch; keras is imported on first use.
"""

from __future__ import annotations

import numpy as np

from baselines._keras import KerasChipClassifier, check_number, dihedral_layer_class, make_with_params, run_phase
from competition.data import CHIP_SHAPE

__all__ = ["CNNClassifier", "make_estimator"]

_FILTERS = (16, 32, 64, 128)


class CNNClassifier(KerasChipClassifier):
    """Small CNN ship classifier on raw chips.

    Parameters
    ----------
    epochs : int, default=20
        Maximum number of epochs (early stopping may end sooner).
    batch_size : int, default=64
    learning_rate : float, default=1e-3
        Adam learning rate.
    patience : int, default=5
        Epochs without a better ``val_loss`` before training stops.
    validation_fraction : float, default=0.2
        Share of the training chips (whole groups when ``groups`` is given) held out
        for early stopping; 0 trains on everything for ``epochs`` epochs.
    random_state : int or None, default=0
        Seed of weights, shuffling, augmentation and the validation split.
    verbose : int, default=0
        Keras ``fit`` verbosity.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    model_ : keras.Model
    history_ : dict of str to list of float
        Per-epoch ``loss``, ``auc`` and, with validation, ``val_loss``, ``val_auc``.
    weights_source_ : str
        Always ``'none'`` (trained from scratch).
    backend_ : str
        The Keras backend used (tensorflow, jax or torch).
    fit_seconds_ : float
    epoch_seconds_ : list of float
    """

    def __init__(
        self,
        epochs=20,
        batch_size=64,
        learning_rate=1e-3,
        patience=5,
        validation_fraction=0.2,
        random_state=0,
        verbose=0,
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        super()._check_params()
        check_number("learning_rate", self.learning_rate, (int, float), 0, low_open=True)

    def _preprocess(self, keras, X):
        return X.astype(np.float32) / np.float32(255.0)

    def _train(self, keras, data, validation, setup):
        model = build_model(keras, self.random_state)
        history, seconds = run_phase(
            keras, model, data, validation, epochs=self.epochs, learning_rate=self.learning_rate,
            patience=self.patience, batch_size=self.batch_size, verbose=self.verbose,
        )
        return model, history, seconds


def build_model(keras, seed=None):
    """The CNN as a functional ``keras.Model`` on inputs scaled to [0, 1]."""
    layers = keras.layers
    inputs = keras.Input(shape=CHIP_SHAPE, name="chip")
    x = dihedral_layer_class()(seed=seed, name="dihedral")(inputs)
    for i, filters in enumerate(_FILTERS, 1):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, seed=seed, name="dropout")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="ship")(x)
    return keras.Model(inputs, outputs, name="ships_cnn")


def make_estimator(random_state=0, **params) -> CNNClassifier:
    """A :class:`CNNClassifier`; ``params`` are its constructor arguments."""
    return make_with_params(CNNClassifier, random_state, params)
