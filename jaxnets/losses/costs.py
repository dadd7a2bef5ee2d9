"""Costs C (batch means) with their hand-written output gradients ∂C/∂a, and weight penalties.

A `Loss` holds `value(outputs, targets) -> scalar` (the mean over the m examples of the batch) and
`grad(outputs, targets) -> ∂C/∂outputs` (shape of outputs; it carries the 1/m of the mean). The gradient is
the ∇ₐC of BP1, δᴸ = ∇ₐC ⊙ σ′(zᴸ); for the losses "on logits" it is already δᴸ (the fused a − y).

Targets are one-hot / real-valued arrays with the outputs' shape, or integer class labels of shape (m,).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np


class Loss(NamedTuple):
    """value(outputs, targets) -> scalar batch mean; grad(outputs, targets) -> ∂C/∂outputs (the 1/m included).

    on_logits: the loss takes raw scores (logits), not probabilities; with one output unit the predicted class
        is then output > 0 (else output > 0.5). on_probabilities: the loss is defined only for outputs in (0, 1)
        (binary cross-entropy's log a and log(1 − a)), so the model must end in a unit producing them.
        check: optional `check(output_shape, targets)` raising ValueError for combinations the loss cannot make
        sense of (run on host arrays before training).
    """

    value: Callable[[jax.Array, jax.Array], jax.Array]
    grad: Callable[[jax.Array, jax.Array], jax.Array]
    name: str
    on_logits: bool = False
    check: Optional[Callable[[tuple, np.ndarray], None]] = None
    on_probabilities: bool = False


def as_dense_targets(outputs: jax.Array, targets: jax.Array, name: str = "loss") -> jax.Array:
    """Targets with the outputs' shape and dtype: integer labels (m,) become one-hot rows (or a (m, 1) column
    for a single output unit). Raises ValueError naming both shapes when they cannot match."""
    targets = jnp.asarray(targets)
    if targets.shape == outputs.shape:
        return targets.astype(outputs.dtype)
    if (targets.ndim == outputs.ndim - 1 and targets.shape == outputs.shape[:-1]
            and jnp.issubdtype(targets.dtype, jnp.integer)):
        if outputs.shape[-1] == 1:
            return targets[..., None].astype(outputs.dtype)
        return jax.nn.one_hot(targets, outputs.shape[-1], dtype=outputs.dtype)
    raise ValueError(
        f"{name}: targets of shape {tuple(targets.shape)} (dtype {targets.dtype}) do not match outputs of shape "
        f"{tuple(outputs.shape)}; pass one-hot targets of the outputs' shape or integer labels of shape "
        f"({outputs.shape[0]},), and check the last layer has one unit per class"
    )


def _dense(targets) -> bool:
    return np.issubdtype(np.asarray(targets).dtype, np.floating)


def _check_unit_interval(name):
    def check(out_shape, targets):
        if _dense(targets):
            t = np.asarray(targets)
            if t.size and (t.min() < 0 or t.max() > 1):
                raise ValueError(f"{name}: float targets must lie in [0, 1] (probabilities of the positive class per "
                                 f"unit), got values in [{t.min():.4g}, {t.max():.4g}]; rescale them or use quadratic "
                                 "for regression")
    return check


def _check_softmax(out_shape, targets):
    units = out_shape[-1] if out_shape else 1
    if units < 2:
        raise ValueError("softmax_cross_entropy: the model has 1 output unit, and a softmax over one unit is always 1, "
                         "so the cost is identically 0 and nothing trains; give the last layer one unit per class "
                         "(2 for two classes), or keep 1 unit with sigmoid_cross_entropy")
    if _dense(targets):
        t = np.asarray(targets, np.float64)
        sums = t.sum(axis=-1)
        if t.size and (t.min() < 0 or np.max(np.abs(sums - 1)) > 1e-3):
            raise ValueError(f"softmax_cross_entropy: float targets must be probability distributions over the "
                             f"{units} classes (non-negative rows summing to 1), got entries in [{t.min():.4g}, "
                             f"{t.max():.4g}] and row sums in [{sums.min():.4g}, {sums.max():.4g}]; pass integer "
                             "labels or one-hot rows (jaxnets.data.one_hot)")


def _batch_size(outputs):
    return outputs.shape[0]


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

LOSSES = {loss.name: loss for loss in (quadratic, binary_cross_entropy, sigmoid_cross_entropy, softmax_cross_entropy)}


def get(name: str) -> Loss:
    """A loss by name, e.g. get("quadratic")."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None


# --- penalties on weights (by default the leaves under key "w"); biases are not regularised --------------
class Penalty(NamedTuple):
    value: Callable[[object], jax.Array]
    grad: Callable[[object], object]
    name: str


def is_weight(path, leaf=None) -> bool:
    """The default penalty mask: a leaf stored under the dict key "w" (the textbook regularises weights, not
    biases, BatchNorm scales or shifts)."""
    last = path[-1] if path else None
    return isinstance(last, jax.tree_util.DictKey) and last.key == "w"


def _selector(mask):
    """mask -> `selected(params) -> tree of bools`: None (the "w" leaves), a predicate `mask(path, leaf)`, or a
    pytree of bools with the params' structure."""
    if mask is None:
        mask = is_weight
    if callable(mask):
        return lambda params: jax.tree_util.tree_map_with_path(lambda p, v: bool(mask(p, v)), params)

    def fixed(params):
        try:
            return jax.tree_util.tree_map(lambda m, v: bool(m), mask, params)
        except ValueError as err:
            raise ValueError(f"penalty mask: a pytree of bools with the params' structure is needed ({err}); or pass "
                             "a predicate mask(path, leaf) -> bool") from None

    return fixed


def _penalty(kind, lmbda, n, mask, value_of, grad_of, label):
    if isinstance(lmbda, (int, float)) and not isinstance(lmbda, bool) and not (lmbda >= 0 and np.isfinite(lmbda)):
        raise ValueError(f"{kind}(lmbda, n): lmbda must be a finite number >= 0, got {lmbda}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{kind}(lmbda, n): n is the training-set size and must be a positive int, got {n!r}")
    selected = _selector(mask)

    def value(params):
        terms = [value_of(w) for w, on in zip(jax.tree_util.tree_leaves(params),
                                              jax.tree_util.tree_leaves(selected(params))) if on]
        return lmbda / n * sum(terms) if terms else jnp.zeros(())

    def grad(params):
        return jax.tree_util.tree_map(lambda w, on: (lmbda / n) * grad_of(w) if on else jnp.zeros_like(w), params,
                                      selected(params))

    return Penalty(value, grad, label + ("" if mask is None else ", masked") + ")")


def l2(lmbda: float, n: int, *, mask=None) -> Penalty:
    """C += λ/(2n) Σ w²  ->  ∂/∂w = (λ/n) w (weight decay); n is the size of the training set.

    mask: which leaves are weights — None (the leaves under key "w"), a predicate `mask(path, leaf) -> bool`, or a
    pytree of bools like the params."""
    return _penalty("l2", lmbda, n, mask, lambda w: 0.5 * jnp.sum(w * w), lambda w: w, f"l2({lmbda}, {n}")


def l1(lmbda: float, n: int, *, mask=None) -> Penalty:
    """C += λ/n Σ |w|  ->  ∂/∂w = (λ/n) sgn(w) (sgn(0) = 0); `mask` as for `l2`."""
    return _penalty("l1", lmbda, n, mask, lambda w: jnp.sum(jnp.abs(w)), jnp.sign, f"l1({lmbda}, {n}")
