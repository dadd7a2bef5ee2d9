"""Losses by name: jaxnets' own names, the Keras and PyTorch aliases (each the same number as there), a loss
from any scalar function (`from_function`, gradient by autodiff), and `resolve`, the one rule every entry point
uses to turn what a user passed into a `Loss`.

An alias names the quantity Keras or PyTorch computes under that name, with their defaults; where a jaxnets cost
of the same name differs (jaxnets' binary_cross_entropy sums over the output units, Keras's binary_crossentropy
averages over them) the alias points to the Keras/PyTorch quantity. The table is in docs/interop.md.
"""
from __future__ import annotations

import inspect
from typing import Callable

import jax
import jax.numpy as jnp

from jaxnets.losses.base import Loss
from jaxnets.losses.costs import binary_cross_entropy, quadratic, sigmoid_cross_entropy, softmax_cross_entropy
from jaxnets.losses.more import (categorical_cross_entropy, huber, kl_divergence, mean_absolute_error,
                                 mean_over_units, mean_squared_error, softmax_kl_divergence)

__all__ = ["LOSSES", "NAMES", "ALIASES", "get", "from_function", "resolve"]

# The four textbook costs (the command line's --loss choices, whose output unit it knows).
LOSSES = {loss.name: loss for loss in (quadratic, binary_cross_entropy, sigmoid_cross_entropy, softmax_cross_entropy)}

_huber = huber(1.0)
# Every loss with a name of its own: the textbook costs and the others (`losses.more`).
NAMES = dict(LOSSES, **{loss.name: loss for loss in (
    mean_squared_error, mean_absolute_error, _huber, categorical_cross_entropy, kl_divergence,
    softmax_kl_divergence)})

_mean_bce = mean_over_units(binary_cross_entropy)
_mean_sigmoid_ce = mean_over_units(sigmoid_cross_entropy)

# alias -> the loss computing the number Keras / PyTorch compute under that name (with their defaults).
ALIASES = {
    # Keras mse / mean_squared_error, PyTorch MSELoss, F.mse_loss: mean over all entries, no ½
    "mse": mean_squared_error, "mse_loss": mean_squared_error,
    # Keras mae / mean_absolute_error, PyTorch L1Loss, F.l1_loss
    "mae": mean_absolute_error, "l1": mean_absolute_error, "l1_loss": mean_absolute_error,
    # Keras Huber(delta=1), PyTorch HuberLoss(delta=1), and SmoothL1Loss(beta=1) (= huber / beta)
    "huber_loss": _huber, "smooth_l1": _huber, "smooth_l1_loss": _huber,
    # PyTorch CrossEntropyLoss, F.cross_entropy: on logits, integer labels or class probabilities
    "cross_entropy": softmax_cross_entropy,
    # Keras categorical_crossentropy / sparse_categorical_crossentropy with their default from_logits=False:
    # on probabilities (the model ends in Softmax)
    "categorical_crossentropy": categorical_cross_entropy,
    "sparse_categorical_crossentropy": categorical_cross_entropy,
    # Keras binary_crossentropy (from_logits=False), PyTorch BCELoss: on probabilities, mean over the units too
    "bce": _mean_bce, "binary_crossentropy": _mean_bce,
    # PyTorch BCEWithLogitsLoss, F.binary_cross_entropy_with_logits: on logits, mean over the units too
    "bce_with_logits": _mean_sigmoid_ce, "binary_cross_entropy_with_logits": _mean_sigmoid_ce,
    # Keras kld / kl_divergence / kullback_leibler_divergence: both arguments probabilities
    "kld": kl_divergence, "kullback_leibler_divergence": kl_divergence,
}


def _known() -> str:
    return (f"names: {', '.join(sorted(NAMES))}; aliases (Keras/PyTorch): "
            + ", ".join(f"{alias} ({loss.name})" for alias, loss in sorted(ALIASES.items())))


def get(name: str) -> Loss:
    """A loss by its name or a Keras/PyTorch alias, e.g. get("quadratic"), get("mse"), get("cross_entropy").
    Raises ValueError listing the names and aliases for an unknown one."""
    if not isinstance(name, str):
        raise TypeError(f"losses.get(name): a str such as 'softmax_cross_entropy' or 'mse', got {type(name).__name__}")
    found = NAMES.get(name) or ALIASES.get(name)
    if found is None:
        raise ValueError(f"unknown loss {name!r}; choose one of the {_known()}; or pass a Loss, or a function "
                         "f(outputs, targets) -> scalar (losses.from_function)")
    return found


def _takes_two(f) -> bool:
    """False when f's signature cannot take (outputs, targets) positionally; True when it can or is unknown."""
    try:
        inspect.signature(f).bind(None, None)
    except TypeError:
        return False
    except ValueError:   # no signature to read (some builtins): let the call decide
        return True
    return True


def from_function(f: Callable, name: str | None = None) -> Loss:
    """A Loss from a function `f(outputs, targets) -> scalar` (the mean over the batch, e.g.
    `lambda a, y: jnp.mean((a - y) ** 2)`), whose output gradient is `jax.grad` of f with respect to the outputs
    (shape of the outputs). Targets reach f as given (integer labels stay integers; `losses.as_dense_targets`
    makes one-hot rows). The Loss has `autodiff_grad=True`: the checker's reports mark its rows, since its
    manual and autodiff gradients agree by construction. name: default f's __name__."""
    if isinstance(f, Loss):
        raise TypeError(f"losses.from_function(f): f is already a Loss ({f.name}); use it as it is")
    if not callable(f) or isinstance(f, type):
        raise TypeError(f"losses.from_function(f): a function f(outputs, targets) -> scalar, got "
                        f"{type(f).__name__}")
    if not _takes_two(f):
        raise TypeError(f"losses.from_function(f): {getattr(f, '__name__', type(f).__name__)} cannot be called as "
                        "f(outputs, targets); a loss function takes the model's outputs and the targets")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"losses.from_function(name): a non-empty str or None, got {name!r}")
    label = name or getattr(f, "__name__", None) or type(f).__name__

    def value(outputs, targets):
        out = f(outputs, targets)
        if jnp.ndim(out) != 0:
            raise ValueError(f"loss {label} (from_function): returned shape {tuple(jnp.shape(out))}, not a scalar; a "
                             "loss returns the mean over the batch, e.g. wrap it as "
                             "lambda a, y: jnp.mean(f(a, y))")
        return out

    grad = jax.grad(value)   # ∂C/∂outputs by reverse-mode autodiff: no hand-written derivative to check
    return Loss(value, grad, label, autodiff_grad=True)


def resolve(loss, where: str) -> Loss:
    """The Loss meant by `loss`: a Loss as it is; a name or Keras/PyTorch alias (`get`); a plain function
    f(outputs, targets) -> scalar batch mean, made a Loss whose gradient is autodiff (`from_function`, marked
    in reports). Anything else raises TypeError naming `where` (e.g. "fit"), the argument and the fix."""
    from jaxnets.core import Layer

    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        try:
            return get(loss)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    if isinstance(loss, Layer):
        raise TypeError(f"{where}: loss is the layer {loss.name}, not a loss; the order is model, loss, then "
                        "params/optimizer, then data")
    if isinstance(loss, tuple) and callable(getattr(loss, "value", None)) and callable(getattr(loss, "grad", None)):
        return loss   # a Loss-like named tuple (value, grad, name, ...) from older code
    if callable(loss) and not isinstance(loss, (tuple, type)) and _takes_two(loss):
        return from_function(loss)
    got = (f"the function {getattr(loss, '__name__', type(loss).__name__)}, which cannot take (outputs, targets)"
           if callable(loss) and not isinstance(loss, type) else type(loss).__name__)
    raise TypeError(f"{where}: loss must be a jaxnets Loss (e.g. losses.softmax_cross_entropy), a name or alias "
                    f"('softmax_cross_entropy', 'mse', 'cross_entropy', ...), or a function f(outputs, targets) -> "
                    f"scalar batch mean (its gradient by autodiff); got {got}. The order is model, loss, then "
                    "params/optimizer, then data")
