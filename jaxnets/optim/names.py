"""Optimizers by name, for `fit(model, loss, "adam", ...)` and other places a Keras user writes a string.

A name gives the optimizer with its optax defaults and Keras's default learning rate: "sgd" 0.01, "adam" 1e-3,
"adamw" 1e-3, "rmsprop" 1e-3, "adagrad" 1e-3. To choose the learning rate or anything else, call the function
(`jaxnets.optim.adam(3e-4)`).
"""
from __future__ import annotations

from jaxnets.optim.aliases import adagrad, adam, adamw, rmsprop, sgd

DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-3}
_FACTORIES = {"sgd": sgd, "adam": adam, "adamw": adamw, "rmsprop": rmsprop, "adagrad": adagrad}
NAMES = tuple(_FACTORIES)


def get(name: str):
    """The optimizer called `name` with its default learning rate (see the module docstring)."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _FACTORIES:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(NAMES)} (default learning rates "
                         f"{DEFAULT_LEARNING_RATES}), or pass a GradientTransformation such as optim.adam(3e-4)")
    return _FACTORIES[key](DEFAULT_LEARNING_RATES[key])
