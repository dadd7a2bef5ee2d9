"""The costs Keras and PyTorch users reach for, each with its hand-written output gradient next to its value.

Shapes: outputs (m, ...) with the batch first, targets of the outputs' shape or integer labels (m,) (one-hot
rows are made from them, as for the textbook costs). N is the number of entries of the batch (m times the units
per example). Each value is a scalar; each grad has the outputs' shape and carries the divisor of the mean.

    regression (mean over all N entries, as Keras's and PyTorch's default "mean" reduction):
      mean_squared_error   C = (1/N) Σ (a − y)²                       ∂C/∂a = 2(a − y)/N
      mean_absolute_error  C = (1/N) Σ |a − y|                        ∂C/∂a = sgn(a − y)/N   (0 at a = y)
      huber(delta)         C = (1/N) Σ ρ_δ(a − y)                     ∂C/∂a = clip(a − y, −δ, δ)/N
    distributions over the last axis (sum over classes, mean over the m examples):
      categorical_cross_entropy   on probabilities a:  C = −(1/m) Σ y ln a            ∂C/∂a = −y/(m a)
      kl_divergence               on probabilities a:  C = (1/m) Σ y (ln y − ln a)     ∂C/∂a = −y/(m a)
      softmax_kl_divergence       on logits z:         C = (1/m) Σ y (ln y − ln softmax(z)) ∂C/∂z = (softmax(z) Σy − y)/m
      softmax_cross_entropy_with_label_smoothing(alpha), on logits: the softmax cross-entropy with the targets
                                  y′ = (1 − α) y + α/K (K classes), ∂C/∂z = (softmax(z) Σy′ − y′)/m
    mean_over_units(loss): the loss divided by the units per example (Keras's binary_crossentropy, PyTorch's
      BCELoss average over units where the textbook cost sums over them).

0 ln 0 is taken as 0 (`xlogy`): a target entry of 0 contributes nothing. Unlike Keras, no output is clipped to
[1e-7, 1 − 1e-7]: the numbers agree wherever the outputs lie inside that interval.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

from jaxnets.losses.base import Loss, _batch_size, _check_distributions, _entries, as_dense_targets

__all__ = ["mean_squared_error", "mean_absolute_error", "huber", "categorical_cross_entropy", "kl_divergence",
           "softmax_kl_divergence", "softmax_cross_entropy_with_label_smoothing", "mean_over_units"]


def _number(where: str, value, *, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """value as a float in [low, high] (or (low, high] with low_open), else ValueError naming the argument."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (value > low if low_open else value >= low) and value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{where}: a finite number in {interval}, got {value!r}")
    return float(value)


# --- mean squared error  C = (1/N) Σ (a − y)²  ->  ∂C/∂a = 2(a − y)/N -------------------------------------------
#     Keras's mean_squared_error and PyTorch's MSELoss: no ½, and a mean over the units as well as the batch
#     (jaxnets' quadratic is ½ Σ over units, mean over the batch: quadratic = mean_squared_error · n/2).
def _mse_value(a, y):
    y = as_dense_targets(a, y, "mean_squared_error")
    return jnp.sum((a - y) ** 2) / _entries(a)


def _mse_grad(a, y):
    y = as_dense_targets(a, y, "mean_squared_error")
    return 2 * (a - y) / _entries(a)


mean_squared_error = Loss(_mse_value, _mse_grad, "mean_squared_error")


# --- mean absolute error  C = (1/N) Σ |a − y|  ->  ∂C/∂a = sgn(a − y)/N ---------------------------------------------
#     At a = y the subgradient 0 is taken (as PyTorch's L1Loss does); |r| is written r·sgn(r) so that jax.grad makes
#     the same choice (the derivative of sgn is 0, so d(r·sgn r)/dr = sgn r).
def _mae_value(a, y):
    r = a - as_dense_targets(a, y, "mean_absolute_error")
    return jnp.sum(r * jnp.sign(r)) / _entries(a)


def _mae_grad(a, y):
    return jnp.sign(a - as_dense_targets(a, y, "mean_absolute_error")) / _entries(a)


mean_absolute_error = Loss(_mae_value, _mae_grad, "mean_absolute_error")


# --- Huber  ρ_δ(r) = ½ r² for |r| ≤ δ, δ(|r| − ½δ) otherwise;  C = (1/N) Σ ρ_δ(a − y) ------------------------------
#     ρ′_δ(r) = r for |r| ≤ δ, δ·sgn(r) otherwise = clip(r, −δ, δ)  ->  ∂C/∂a = clip(a − y, −δ, δ)/N.
#     Both pieces have slope ±δ at |r| = δ, so the derivative is continuous. PyTorch's SmoothL1Loss(beta) is
#     ρ_β / β: equal to huber(1.0) for beta = 1.
def huber(delta: float = 1.0) -> Loss:
    """The Huber cost with threshold `delta` > 0 (Keras's Huber(delta), PyTorch's HuberLoss(delta=delta)):
    quadratic for residuals |a − y| ≤ delta, linear beyond; a mean over all N entries. Named "huber" for
    delta = 1, else "huber(delta=...)"."""
    delta = _number("huber(delta)", delta, low=0.0, low_open=True)
    name = "huber" if delta == 1.0 else f"huber(delta={delta:g})"

    def value(a, y):
        r = a - as_dense_targets(a, y, name)
        small = jnp.abs(r) <= delta
        return jnp.sum(jnp.where(small, 0.5 * r * r, delta * (jnp.abs(r) - 0.5 * delta))) / _entries(a)

    def grad(a, y):
        r = a - as_dense_targets(a, y, name)
        return jnp.clip(r, -delta, delta) / _entries(a)

    return Loss(value, grad, name)


# --- cross-entropy on probabilities  C = −(1/m) Σₓ Σⱼ yⱼ ln aⱼ  ->  ∂C/∂aⱼ = −yⱼ/(m aⱼ) ----------------------------
#     Keras's categorical_crossentropy (from_logits=False, its default): the model ends in Softmax. The Softmax
#     layer's backward then turns −y/(m a) into (a − y)/m. On logits use softmax_cross_entropy (fused, stabler).
def _cce_value(a, y):
    y = as_dense_targets(a, y, "categorical_cross_entropy")
    return -jnp.sum(xlogy(y, a)) / _batch_size(a)


def _cce_grad(a, y):
    y = as_dense_targets(a, y, "categorical_cross_entropy")
    return -y / a / _batch_size(a)


categorical_cross_entropy = Loss(_cce_value, _cce_grad, "categorical_cross_entropy", on_probabilities=True,
                                 check=_check_distributions("categorical_cross_entropy", "a probability distribution"))


# --- KL divergence on probabilities  C = (1/m) Σₓ Σⱼ yⱼ (ln yⱼ − ln aⱼ)  ->  ∂C/∂aⱼ = −yⱼ/(m aⱼ) ---------------------
#     KL(y ‖ a) = cross-entropy − entropy of y; the entropy does not depend on a, so the gradient is the
#     cross-entropy's. Keras's kl_divergence / KLDivergence (both arguments probabilities).
def _kl_value(a, y):
    y = as_dense_targets(a, y, "kl_divergence")
    return jnp.sum(xlogy(y, y) - xlogy(y, a)) / _batch_size(a)


def _kl_grad(a, y):
    y = as_dense_targets(a, y, "kl_divergence")
    return -y / a / _batch_size(a)


kl_divergence = Loss(_kl_value, _kl_grad, "kl_divergence", on_probabilities=True,
                     check=_check_distributions("kl_divergence", "a probability distribution"))


# --- KL divergence on logits  C = (1/m) Σₓ Σⱼ yⱼ (ln yⱼ − log_softmax(z)ⱼ)  ->  ∂C/∂z = (softmax(z) Σⱼyⱼ − y)/m ------
#     = PyTorch's kl_div(log_softmax(z), y, reduction="batchmean") (its default reduction "mean" also divides by
#     the number of classes).
def _softmax_kl_value(z, y):
    y = as_dense_targets(z, y, "softmax_kl_divergence")
    return jnp.sum(xlogy(y, y) - y * jax.nn.log_softmax(z, axis=-1)) / _batch_size(z)


def _softmax_kl_grad(z, y):
    y = as_dense_targets(z, y, "softmax_kl_divergence")
    return (jax.nn.softmax(z, axis=-1) * jnp.sum(y, axis=-1, keepdims=True) - y) / _batch_size(z)


softmax_kl_divergence = Loss(_softmax_kl_value, _softmax_kl_grad, "softmax_kl_divergence", on_logits=True,
                             check=_check_distributions("softmax_kl_divergence"))


# --- label smoothing  y′ = (1 − α) y + α/K;  C = −(1/m) Σ y′ log_softmax(z)  ->  ∂C/∂z = (softmax(z) Σⱼy′ⱼ − y′)/m ----
#     (Σⱼy′ⱼ = 1 for one-hot or distribution targets, giving the fused softmax(z) − y′.) Keras's
#     CategoricalCrossentropy(from_logits=True, label_smoothing=α), PyTorch's CrossEntropyLoss(label_smoothing=α).
def softmax_cross_entropy_with_label_smoothing(alpha: float) -> Loss:
    """The softmax cross-entropy on logits (m, K) against smoothed targets y′ = (1 − alpha)·y + alpha/K, with
    0 ≤ alpha ≤ 1 (alpha = 0 is `softmax_cross_entropy`). Targets: integer labels (m,) or distributions (m, K)."""
    alpha = _number("softmax_cross_entropy_with_label_smoothing(alpha)", alpha, low=0.0, high=1.0)
    name = f"softmax_cross_entropy_with_label_smoothing({alpha:g})"

    def smoothed(z, y):
        return (1 - alpha) * as_dense_targets(z, y, name) + alpha / z.shape[-1]

    def value(z, y):
        return -jnp.sum(smoothed(z, y) * jax.nn.log_softmax(z, axis=-1)) / _batch_size(z)

    def grad(z, y):
        t = smoothed(z, y)
        return (jax.nn.softmax(z, axis=-1) * jnp.sum(t, axis=-1, keepdims=True) - t) / _batch_size(z)

    return Loss(value, grad, name, on_logits=True, check=_check_distributions(name))


# --- the mean over units: C′ = C / u, u = N/m the units per example  ->  ∂C′/∂a = (∂C/∂a)/u -------------------------
def mean_over_units(loss: Loss) -> Loss:
    """`loss` divided by the number of units per example u (the entries of one example's output): value and
    gradient both. Keras's binary_crossentropy and PyTorch's BCELoss / BCEWithLogitsLoss average over the units
    where jaxnets' binary_cross_entropy and sigmoid_cross_entropy sum over them (the textbook cost), so
    `mean_over_units(binary_cross_entropy)` is their number. With one output unit nothing changes."""
    if not isinstance(loss, Loss):
        raise TypeError(f"mean_over_units(loss): a jaxnets Loss, e.g. losses.binary_cross_entropy, got "
                        f"{type(loss).__name__}")

    def units(a):
        return _entries(a) // _batch_size(a)

    def value(a, y):
        return loss.value(a, y) / units(a)

    def grad(a, y):
        return loss.grad(a, y) / units(a)

    return loss._replace(value=value, grad=grad, name=f"mean_over_units({loss.name})")
