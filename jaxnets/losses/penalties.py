"""Weight penalties with their gradients: `l2(lmbda, n)` = λ/(2n)·Σw², `l1(lmbda, n)` = λ/n·Σ|w|; biases are not
penalised (by default only the leaves under key "w")."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Penalty", "is_weight", "l2", "l1"]


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
