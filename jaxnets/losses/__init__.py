"""Costs C (batch means) with their hand-written output gradients ∂C/∂a, losses by name, and weight penalties.

A `Loss` holds `value(outputs, targets) -> scalar` (the mean over the m examples of the batch) and
`grad(outputs, targets) -> ∂C/∂outputs` (shape of outputs; it carries the 1/m of the mean). The gradient is
the ∇ₐC of BP1, δᴸ = ∇ₐC ⊙ σ′(zᴸ); for the losses "on logits" it is already δᴸ (the fused a − y).
Targets are one-hot / real-valued arrays with the outputs' shape, or integer class labels of shape (m,).

    costs      quadratic, binary_cross_entropy (on probabilities), sigmoid_cross_entropy and
               softmax_cross_entropy (on logits): the textbook's
    more       mean_squared_error, mean_absolute_error, huber(delta), categorical_cross_entropy (on
               probabilities), kl_divergence (on probabilities), softmax_kl_divergence (on logits),
               softmax_cross_entropy_with_label_smoothing(alpha), mean_over_units(loss)
    names      get(name) (names and Keras/PyTorch aliases: "mse", "cross_entropy", "bce", ...),
               from_function(f) (gradient by autodiff, marked), resolve(loss, where)
    penalties  l2(lmbda, n), l1(lmbda, n)
"""
from jaxnets.losses.base import Loss, as_dense_targets
from jaxnets.losses.costs import binary_cross_entropy, quadratic, sigmoid_cross_entropy, softmax_cross_entropy
from jaxnets.losses.more import (categorical_cross_entropy, huber, kl_divergence, mean_absolute_error,
                                 mean_over_units, mean_squared_error, softmax_cross_entropy_with_label_smoothing,
                                 softmax_kl_divergence)
from jaxnets.losses.names import ALIASES, LOSSES, NAMES, from_function, get, resolve
from jaxnets.losses.penalties import Penalty, is_weight, l1, l2

__all__ = ["Loss", "as_dense_targets", "quadratic", "binary_cross_entropy", "sigmoid_cross_entropy",
           "softmax_cross_entropy", "mean_squared_error", "mean_absolute_error", "huber", "categorical_cross_entropy",
           "kl_divergence", "softmax_kl_divergence", "softmax_cross_entropy_with_label_smoothing", "mean_over_units",
           "LOSSES", "NAMES", "ALIASES", "get", "from_function", "resolve", "Penalty", "is_weight", "l2", "l1"]
