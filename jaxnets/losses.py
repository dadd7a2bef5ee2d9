"""Costs C (batch means) with their hand-written output gradients ∂C/∂a, and weight penalties.

A `Loss` holds `value(outputs, targets) -> scalar` (the mean over the m examples of the batch) and
`grad(outputs, targets) -> ∂C/∂outputs` (shape of outputs; it carries the 1/m of the mean). The gradient is
the ∇ₐC of BP1, δᴸ = ∇ₐC ⊙ σ′(zᴸ); for the losses "on logits" it is already δᴸ (the fused a − y).

Targets are one-hot / real-valued arrays with the outputs' shape, or integer class labels of shape (m,).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class Loss(NamedTuple):
    value: Callable[[jax.Array, jax.Array], jax.Array]
    grad: Callable[[jax.Array, jax.Array], jax.Array]
    name: str


def as_dense_targets(outputs: jax.Array, targets: jax.Array, name: str = "loss") -> jax.Array:
    """Targets with the outputs' shape and dtype: integer labels (m,) become one-hot rows (or a (m, 1) column
    for a single output unit). Raises ValueError naming both shapes when they cannot match."""
    targets = jnp.asarray(targets)
    if targets.shape == outputs.shape:
        return targets.astype(outputs.dtype)
    if targets.ndim == outputs.ndim - 1 and targets.shape == outputs.shape[:-1] and jnp.issubdtype(targets.dtype, jnp.integer):
        if outputs.shape[-1] == 1:
            return targets[..., None].astype(outputs.dtype)
        return jax.nn.one_hot(targets, outputs.shape[-1], dtype=outputs.dtype)
    raise ValueError(
        f"{name}: targets of shape {tuple(targets.shape)} (dtype {targets.dtype}) do not match outputs of shape "
        f"{tuple(outputs.shape)}; pass one-hot targets of the outputs' shape or integer labels of shape "
        f"({outputs.shape[0]},), and check the last layer has one unit per class"
    )


def _batch_size(outputs):
    return outputs.shape[0]


# --- quadratic cost  C = (1/m) Σₓ ½‖y(x) − a‖²  ->  ∂C/∂a = (a − y)/m -----------------------------------
def _quadratic_value(a, y):
    y = as_dense_targets(a, y, "quadratic")
    return 0.5 * jnp.sum((a - y) ** 2) / _batch_size(a)


def _quadratic_grad(a, y):
    y = as_dense_targets(a, y, "quadratic")
    return (a - y) / _batch_size(a)


quadratic = Loss(_quadratic_value, _quadratic_grad, "quadratic")


# --- cross-entropy on probabilities  C = −(1/m) Σₓ Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)] ------------------
#     ∂C/∂aⱼ = (aⱼ − yⱼ) / (aⱼ(1 − aⱼ)) / m; with sigmoid outputs σ′ = a(1 − a) cancels and δᴸ = a − y.
def _bce_value(a, y):
    y = as_dense_targets(a, y, "binary_cross_entropy")
    return -jnp.sum(y * jnp.log(a) + (1 - y) * jnp.log1p(-a)) / _batch_size(a)


def _bce_grad(a, y):
    y = as_dense_targets(a, y, "binary_cross_entropy")
    return (a - y) / (a * (1 - a)) / _batch_size(a)


binary_cross_entropy = Loss(_bce_value, _bce_grad, "binary_cross_entropy")


# --- the same cost on logits z, a = σ(z): −y ln σ(z) − (1 − y) ln(1 − σ(z)) = ln(1 + eᶻ) − z·y ------------
#     ∂C/∂z = (σ(z) − y)/m, the fused "a − y" of sigmoid output + cross-entropy. ln(1 + eᶻ) is evaluated as
#     logaddexp(0, z): stable for large |z| and smooth at z = 0 (a max/abs form would give jax.grad a kink).
def _sigmoid_ce_value(z, y):
    y = as_dense_targets(z, y, "sigmoid_cross_entropy")
    per_unit = jnp.logaddexp(0.0, z) - z * y
    return jnp.sum(per_unit) / _batch_size(z)


def _sigmoid_ce_grad(z, y):
    y = as_dense_targets(z, y, "sigmoid_cross_entropy")
    return (jax.nn.sigmoid(z) - y) / _batch_size(z)


sigmoid_cross_entropy = Loss(_sigmoid_ce_value, _sigmoid_ce_grad, "sigmoid_cross_entropy")


# --- softmax + log-likelihood on logits  C = −(1/m) Σₓ Σⱼ yⱼ ln softmax(z)ⱼ  ->  ∂C/∂z = (softmax(z) − y)/m ----
def _softmax_ce_value(z, y):
    y = as_dense_targets(z, y, "softmax_cross_entropy")
    return -jnp.sum(y * jax.nn.log_softmax(z, axis=-1)) / _batch_size(z)


def _softmax_ce_grad(z, y):
    y = as_dense_targets(z, y, "softmax_cross_entropy")
    return (jax.nn.softmax(z, axis=-1) * jnp.sum(y, axis=-1, keepdims=True) - y) / _batch_size(z)


softmax_cross_entropy = Loss(_softmax_ce_value, _softmax_ce_grad, "softmax_cross_entropy")

LOSSES = {loss.name: loss for loss in (quadratic, binary_cross_entropy, sigmoid_cross_entropy, softmax_cross_entropy)}


def get(name: str) -> Loss:
    """A loss by name, e.g. get("quadratic")."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None


# --- penalties on weights (leaves under key "w"); biases are not regularised -----------------------------
class Penalty(NamedTuple):
    value: Callable[[object], jax.Array]
    grad: Callable[[object], object]
    name: str


def _is_weight(path) -> bool:
    last = path[-1] if path else None
    return isinstance(last, jax.tree_util.DictKey) and last.key == "w"


def _weight_sum(params, fn):
    leaves = [fn(w) for path, w in jax.tree_util.tree_leaves_with_path(params) if _is_weight(path)]
    return sum(leaves) if leaves else jnp.zeros(())


def _map_weights(params, fn):
    return jax.tree_util.tree_map_with_path(lambda p, v: fn(v) if _is_weight(p) else jnp.zeros_like(v), params)


def _check_penalty_args(kind, lmbda, n):
    if isinstance(lmbda, (int, float)) and lmbda < 0:
        raise ValueError(f"{kind}(lmbda, n): lmbda must be >= 0, got {lmbda}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{kind}(lmbda, n): n is the training-set size and must be a positive int, got {n!r}")


def l2(lmbda: float, n: int) -> Penalty:
    """C += λ/(2n) Σ w²  ->  ∂/∂w = (λ/n) w (weight decay); n is the size of the training set."""
    _check_penalty_args("l2", lmbda, n)
    return Penalty(lambda p: lmbda / (2 * n) * _weight_sum(p, lambda w: jnp.sum(w * w)),
                   lambda p: _map_weights(p, lambda w: (lmbda / n) * w), f"l2({lmbda}, {n})")


def l1(lmbda: float, n: int) -> Penalty:
    """C += λ/n Σ |w|  ->  ∂/∂w = (λ/n) sgn(w) (sgn(0) = 0)."""
    _check_penalty_args("l1", lmbda, n)
    return Penalty(lambda p: lmbda / n * _weight_sum(p, lambda w: jnp.sum(jnp.abs(w))),
                   lambda p: _map_weights(p, lambda w: (lmbda / n) * jnp.sign(w)), f"l1({lmbda}, {n})")
