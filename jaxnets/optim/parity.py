"""Step-by-step comparison of two gradient transformations (e.g. a jaxnets optimizer and its optax twin).

    report = parity(jaxnets.optim.adam(1e-3), optax.adam(1e-3), params, grads_fn, steps=200)
    print(report); report.assert_close(1e-6)

Both optimizers start from the same params and each follows its own trajectory: at step t each one gets
`grads_fn(its_params, t)`, so gradients that depend on the params (a loss) feed differences back, as in
training. All steps run in one `jax.jit`-compiled `lax.scan`.

The relative difference of two arrays is max_i |a_i - b_i| / max(|a_i|, |b_i|), elementwise (0 where both are
equal, including 0 = 0 and inf = inf; inf where only one side is NaN); for a pytree it is the maximum over
leaves. Integer leaves (step counters) are compared as floats.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.optim.base import apply_updates


@jax.jit
def relative_difference(a: Any, b: Any) -> jax.Array:
    """Largest elementwise |a - b| / max(|a|, |b|) over all leaves of two pytrees of equal structure (0 if no leaves).

    Jitted (one small program per tree layout); inside another jitted function it is simply inlined.
    """
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(la) != len(lb):
        raise ValueError(f"relative_difference: trees have {len(la)} and {len(lb)} leaves.")
    if not la:
        return jnp.zeros([], jnp.result_type(float))
    dtype = jnp.result_type(*la, *lb, float)
    x = jnp.concatenate([jnp.ravel(v).astype(dtype) for v in la])  # one vector: fewer ops to compile
    y = jnp.concatenate([jnp.ravel(v).astype(dtype) for v in lb])
    rel = jnp.where(x == y, 0.0, jnp.abs(x - y) / jnp.maximum(jnp.abs(x), jnp.abs(y)))
    rel = jnp.where(jnp.isnan(x) | jnp.isnan(y), jnp.where(jnp.isnan(x) & jnp.isnan(y), 0.0, jnp.inf), rel)
    return jnp.max(rel, initial=0.0)


def check_same_layout(state_a: Any, state_b: Any) -> None:
    """Raise ValueError unless two optimizer states have the same tree layout (NamedTuple names and fields included)."""
    sa, sb = jax.tree.structure(state_a), jax.tree.structure(state_b)
    if str(sa) != str(sb):
        paths_a = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state_a)]
        paths_b = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(state_b)]
        raise ValueError(
            "parity: the two optimizer states have different layouts, so they cannot be compared leaf by leaf.\n"
            f"  first: {sa}\n  second: {sb}\n  leaves only in first: {sorted(set(paths_a) - set(paths_b))[:5]}\n"
            f"  leaves only in second: {sorted(set(paths_b) - set(paths_a))[:5]}"
        )


@dataclasses.dataclass(frozen=True)
class ParityReport:
    """Per-step maximum relative differences (NumPy arrays of length `steps`) and their overall maxima."""

    params: np.ndarray  # after apply_updates at each step
    updates: np.ndarray  # the updates returned at each step
    state: np.ndarray  # the optimizer state after each step

    @property
    def max_params(self) -> float:
        return float(np.max(self.params, initial=0.0))

    @property
    def max_updates(self) -> float:
        return float(np.max(self.updates, initial=0.0))

    @property
    def max_state(self) -> float:
        return float(np.max(self.state, initial=0.0))

    @property
    def max(self) -> float:
        """The overall worst relative difference (params, updates and state, all steps)."""
        return max(self.max_params, self.max_updates, self.max_state)

    def worst_step(self) -> int:
        """0-based index of the step with the largest difference of any kind."""
        return int(np.argmax(np.maximum(np.maximum(self.params, self.updates), self.state)))

    def __str__(self) -> str:
        return (
            f"parity over {len(self.params)} steps: max relative difference "
            f"params {self.max_params:.3g}, updates {self.max_updates:.3g}, state {self.max_state:.3g} "
            f"(worst at step {self.worst_step()})"
        )

    def assert_close(self, rtol: float) -> None:
        """Raise AssertionError naming the first step where any relative difference exceeds `rtol`."""
        for name in ("params", "updates", "state"):
            per_step = getattr(self, name)
            bad = np.flatnonzero(~(per_step <= rtol))
            if bad.size:
                t = int(bad[0])
                raise AssertionError(
                    f"parity: {name} differ by {per_step[t]:.3g} (> rtol={rtol:g}) at step {t}; {self}"
                )


def parity(
    tx_a: Any, tx_b: Any, params: Any, grads_fn: Callable[[Any, jax.Array], Any], steps: int = 200
) -> ParityReport:
    """Run two gradient transformations side by side for `steps` updates and compare them after every step.

    tx_a, tx_b: any (init, update) pairs (jaxnets or optax). params: the common starting pytree.
    grads_fn(params, step) -> grads: called on each trajectory's own params with the int32 step index (traced).
    Raises ValueError if the two initial states differ in layout. Returns a ParityReport.
    """
    if not (isinstance(steps, int) and steps > 0):
        raise ValueError(f"parity: steps must be a positive int, got {steps!r}.")
    check_same_layout(jax.eval_shape(tx_a.init, params), jax.eval_shape(tx_b.init, params))

    @jax.jit
    def run(params):
        def step(carry, t):
            pa, sa, pb, sb = carry
            ua, sa = tx_a.update(grads_fn(pa, t), sa, pa)
            ub, sb = tx_b.update(grads_fn(pb, t), sb, pb)
            pa, pb = apply_updates(pa, ua), apply_updates(pb, ub)
            diffs = (relative_difference(pa, pb), relative_difference(ua, ub), relative_difference(sa, sb))
            return (pa, sa, pb, sb), diffs

        carry = (params, tx_a.init(params), params, tx_b.init(params))
        _, diffs = jax.lax.scan(step, carry, jnp.arange(steps, dtype=jnp.int32))
        return diffs

    d_params, d_updates, d_state = (np.asarray(d) for d in run(params))
    return ParityReport(params=d_params, updates=d_updates, state=d_state)
