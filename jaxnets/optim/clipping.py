"""Gradient clipping: elementwise `clip` and `clip_by_global_norm` (both stateless)."""
from __future__ import annotations

import operator
from typing import Any

import jax
import jax.numpy as jnp

from jaxnets.optim import _util
from jaxnets.optim.base import GradientTransformation, init_empty_state


def clip(max_delta: Any) -> GradientTransformation:
    """u = min(max(g, -max_delta), max_delta), elementwise."""
    _util.check_nonnegative("clip", "max_delta", max_delta)

    def update(updates, state, params=None, **extra):
        return jax.tree.map(lambda g: jnp.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(init_empty_state, update)


def global_norm(updates: Any) -> jax.Array:
    """‖g‖ = sqrt(Σ_leaves Σ_elements |g|²): per-leaf sums, then added up in pytree-flatten order."""
    sums = [jnp.sum(jnp.square(g.real) + jnp.square(g.imag)) for g in jax.tree.leaves(updates)]
    return jnp.sqrt(jax.tree.reduce(operator.add, sums, initializer=0))


def clip_by_global_norm(max_norm: Any) -> GradientTransformation:
    """Rescale all updates together so that their global norm is at most `max_norm`.

        n = ‖g‖ (over the whole pytree);   u = g if n < max_norm else (g / n) * max_norm
    There is no eps in the denominator (PyTorch's clip_grad_norm_ uses max_norm / (n + 1e-6)).
    """
    _util.check_positive("clip_by_global_norm", "max_norm", max_norm)

    def update(updates, state, params=None, **extra):
        norm = global_norm(updates)
        inside = jnp.squeeze(norm < max_norm)
        if jnp.ndim(inside) != 0:
            raise ValueError(f"clip_by_global_norm: max_norm must be a scalar, got shape {jnp.shape(max_norm)}.")

        def rescale(g):
            return jax.lax.select(inside, g, (g / norm.astype(g.dtype)) * max_norm)

        return jax.tree.map(rescale, updates), state

    return GradientTransformation(init_empty_state, update)
