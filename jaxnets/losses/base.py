"""The `Loss` type and what the costs share: dense targets, the checks run before training, the batch size.

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

__all__ = ["Loss", "as_dense_targets"]


class Loss(NamedTuple):
    """value(outputs, targets) -> scalar batch mean; grad(outputs, targets) -> ∂C/∂outputs (the 1/m included).

    on_logits: the loss takes raw scores (logits), not probabilities; with one output unit the predicted class
        is then output > 0 (else output > 0.5). on_probabilities: the loss is defined only for outputs in (0, 1)
        (binary cross-entropy's log a and log(1 − a)), so the model must end in a unit producing them.
    check: optional `check(output_shape, targets)` raising ValueError for combinations the loss cannot make
        sense of (run on host arrays before training).
    autodiff_grad: True when `grad` is `jax.grad` of `value` rather than hand-written (`losses.from_function`);
        the checker's reports say so, since "manual = autodiff" then holds by construction.
    """

    value: Callable[[jax.Array, jax.Array], jax.Array]
    grad: Callable[[jax.Array, jax.Array], jax.Array]
    name: str
    on_logits: bool = False
    check: Optional[Callable[[tuple, np.ndarray], None]] = None
    on_probabilities: bool = False
    autodiff_grad: bool = False


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


def _check_distributions(name: str, over: str = "a softmax"):
    """check(output_shape, targets) for a cost over a distribution on the last axis: at least 2 units, and float
    targets that are distributions (non-negative rows summing to 1)."""
    def check(out_shape, targets):
        units = out_shape[-1] if out_shape else 1
        if units < 2:
            raise ValueError(f"{name}: the model has 1 output unit, and {over} over one unit is always 1, so the cost "
                             "is identically 0 and nothing trains; give the last layer one unit per class (2 for two "
                             "classes), or keep 1 unit with sigmoid_cross_entropy")
        if _dense(targets):
            t = np.asarray(targets, np.float64)
            sums = t.sum(axis=-1)
            if t.size and (t.min() < 0 or np.max(np.abs(sums - 1)) > 1e-3):
                raise ValueError(f"{name}: float targets must be probability distributions over the {units} classes "
                                 f"(non-negative rows summing to 1), got entries in [{t.min():.4g}, {t.max():.4g}] "
                                 f"and row sums in [{sums.min():.4g}, {sums.max():.4g}]; pass integer labels or "
                                 "one-hot rows (jaxnets.data.one_hot)")
    return check


_check_softmax = _check_distributions("softmax_cross_entropy")


def _batch_size(outputs):
    return outputs.shape[0]


def _entries(outputs):
    """N, the number of entries of the batch (m times the units per example): the divisor of the Keras/PyTorch
    "mean" reduction."""
    return outputs.size


