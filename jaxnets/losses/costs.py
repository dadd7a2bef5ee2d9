"""The textbook costs with their hand-written output gradients: quadratic, binary cross-entropy (on
probabilities), sigmoid and softmax cross-entropy (on logits). Shapes: outputs (m, n), targets (m, n) or integer
labels (m,); each value is a scalar batch mean, each grad has the outputs' shape and carries the 1/m."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.losses.base import Loss, _batch_size, _check_softmax, _check_unit_interval, as_dense_targets

__all__ = ["quadratic", "binary_cross_entropy", "sigmoid_cross_entropy", "softmax_cross_entropy"]


# --- quadratic cost  C = (1/m) Σₓ ½‖y(x) − a‖²  ->  ∂C/∂a = (a − y)/m --------------------------------
def _quadratic_value(a, y):
    y = as_dense_targets(a, y, "quadratic")
    return 0.5 * jnp.sum((a - y) ** 2) / _batch_size(a)


def _quadratic_grad(a, y):
    y = as_dense_targets(a, y, "quadratic")
    return (a - y) / _batch_size(a)


quadratic = Loss(_quadratic_value, _quadratic_grad, "quadratic")


# --- cross-entropy on probabilities  C = −(1/m) Σₓ Σⱼ [yⱼ ln aⱼ + (1 − yⱼ) ln(1 − aⱼ)] ------------
#     ∂C/∂aⱼ = (aⱼ − yⱼ) / (aⱼ(1 − aⱼ)) / m;
#     with sigmoid outputs σ′ = a(1 − a) cancels and δᴸ = a − y.
def _bce_value(a, y):
    y = as_dense_targets(a, y, "binary_cross_entropy")
    return -jnp.sum(y * jnp.log(a) + (1 - y) * jnp.log1p(-a)) / _batch_size(a)


def _bce_grad(a, y):
    y = as_dense_targets(a, y, "binary_cross_entropy")
    return (a - y) / (a * (1 - a)) / _batch_size(a)


binary_cross_entropy = Loss(_bce_value, _bce_grad, "binary_cross_entropy",
                            check=_check_unit_interval("binary_cross_entropy"), on_probabilities=True)


# --- the same cost on logits z, a = σ(z): −y ln σ(z) − (1 − y) ln(1 − σ(z)) = ln(1 + eᶻ) − z·y --------
#     ∂C/∂z = (σ(z) − y)/m, the fused "a − y" of sigmoid output + cross-entropy. ln(1 + eᶻ) is evaluated as
#     logaddexp(0, z): stable for large |z| and smooth at z = 0 (a max/abs form would give jax.grad a kink).
def _sigmoid_ce_value(z, y):
    y = as_dense_targets(z, y, "sigmoid_cross_entropy")
    per_unit = jnp.logaddexp(0.0, z) - z * y
    return jnp.sum(per_unit) / _batch_size(z)


def _sigmoid_ce_grad(z, y):
    y = as_dense_targets(z, y, "sigmoid_cross_entropy")
    return (jax.nn.sigmoid(z) - y) / _batch_size(z)


sigmoid_cross_entropy = Loss(_sigmoid_ce_value, _sigmoid_ce_grad, "sigmoid_cross_entropy", on_logits=True,
                             check=_check_unit_interval("sigmoid_cross_entropy"))


# --- softmax + log-likelihood on logits  C = −(1/m) Σₓ Σⱼ yⱼ ln softmax(z)ⱼ ----
#     ->  ∂C/∂z = (softmax(z) − y)/m
def _softmax_ce_value(z, y):
    y = as_dense_targets(z, y, "softmax_cross_entropy")
    return -jnp.sum(y * jax.nn.log_softmax(z, axis=-1)) / _batch_size(z)


def _softmax_ce_grad(z, y):
    y = as_dense_targets(z, y, "softmax_cross_entropy")
    return (jax.nn.softmax(z, axis=-1) * jnp.sum(y, axis=-1, keepdims=True) - y) / _batch_size(z)


softmax_cross_entropy = Loss(_softmax_ce_value, _softmax_ce_grad, "softmax_cross_entropy", on_logits=True,
                             check=_check_softmax)
