"""Learning-rate schedules: pure functions `count -> value` of the 0-based update count.

An optimizer evaluates its schedule on the count *before* incrementing it, so the first update uses
`schedule(0)`. Numeric arguments may be Python numbers or JAX arrays (traced values allowed, for sweeps); the
step counts (`transition_steps`, `decay_steps`, boundaries) must be Python ints.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import jax.numpy as jnp

from jaxnets.optim import _util

Schedule = Callable[[Any], Any]


def constant_schedule(value: Any) -> Schedule:
    """lr(t) = value."""
    return lambda count: value


def linear_schedule(init_value: Any, end_value: Any, transition_steps: int, transition_begin: int = 0) -> Schedule:
    """Linear ramp from init_value (t <= begin) to end_value (t >= begin + transition_steps).

        c = clip(t - begin, 0, steps);   lr(t) = (init - end) * (1 - c/steps) + end
    transition_steps <= 0 gives the constant init_value (as in optax); a negative begin counts as 0.
    """
    if transition_steps <= 0:
        return lambda count: init_value
    begin = max(transition_begin, 0)

    def schedule(count):
        c = jnp.clip(count - begin, 0, transition_steps)
        return (init_value - end_value) * (1 - c / transition_steps) + end_value

    return schedule


def exponential_decay(
    init_value: Any,
    transition_steps: int,
    decay_rate: Any,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value: Optional[Any] = None,
) -> Schedule:
    """lr(t) = init * rate^((t - begin) / steps) for t > begin, init before; optionally floored exponent.

    `end_value` bounds the result (from below when rate < 1, from above when rate > 1). As in optax,
    transition_steps <= 0 or decay_rate == 0 give the constant init_value, and a negative begin counts as 0.
    """
    if transition_steps <= 0 or (_util.is_python_number(decay_rate) and decay_rate == 0):
        return lambda count: init_value
    begin = max(transition_begin, 0)

    def schedule(count):
        elapsed = count - begin
        p = elapsed / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(elapsed <= 0, init_value, init_value * jnp.power(decay_rate, p))
        if end_value is None:
            return value
        if _util.is_python_number(decay_rate):
            return (jnp.maximum if decay_rate < 1.0 else jnp.minimum)(value, end_value)
        return jnp.where(decay_rate < 1.0, jnp.maximum(value, end_value), jnp.minimum(value, end_value))

    return schedule


def cosine_decay_schedule(init_value: Any, decay_steps: int, alpha: Any = 0.0, exponent: Any = 1.0) -> Schedule:
    """Cosine annealing (Loshchilov & Hutter) to alpha * init_value over decay_steps, constant afterwards.

        c = min(t, T);   lr(t) = init * ((1 - alpha) * (0.5 (1 + cos(π c / T)))^exponent + alpha)
    """
    if not decay_steps > 0:
        raise ValueError(f"cosine_decay_schedule: decay_steps must be > 0, got {decay_steps!r}.")
    total = float(decay_steps)

    def schedule(count):
        count = float(count) if isinstance(count, int) else count  # Python ints would overflow int32
        c = jnp.minimum(count, total)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * c / total))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def join_schedules(schedules: list[Schedule], boundaries: list[int]) -> Schedule:
    """Use schedules[0] before boundaries[0], schedules[i] (on a count re-based to boundaries[i-1]) after."""

    def schedule(count):
        value = schedules[0](count)
        for boundary, later in zip(boundaries, schedules[1:]):
            value = jnp.where(count < boundary, value, later(count - boundary))
        return value

    return schedule


def warmup_cosine_decay_schedule(
    init_value: Any, peak_value: Any, warmup_steps: int, decay_steps: int, end_value: Any = 0.0, exponent: Any = 1.0
) -> Schedule:
    """Linear warm-up from init_value to peak_value over warmup_steps, then cosine decay to end_value.

    `decay_steps` counts the warm-up too: the cosine part lasts decay_steps - warmup_steps updates.
    """
    if not decay_steps > warmup_steps:
        raise ValueError(
            f"warmup_cosine_decay_schedule: decay_steps ({decay_steps}) must exceed warmup_steps ({warmup_steps}); "
            "decay_steps includes the warm-up."
        )
    if _util.is_python_number(peak_value):
        alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    else:
        alpha = jnp.where(peak_value == 0.0, 0.0, end_value / peak_value)
    warmup = linear_schedule(init_value, peak_value, warmup_steps)
    decay = cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha=alpha, exponent=exponent)
    return join_schedules([warmup, decay], [warmup_steps])


def piecewise_constant_schedule(init_value: Any, boundaries_and_scales: Optional[dict[int, Any]] = None) -> Schedule:
    """lr(t) = init_value * Π {scale_b : boundary b <= t}: each scale applies from its boundary on.

    E.g. piecewise_constant_schedule(0.1, {100: 0.1, 200: 0.1}) is 0.1, then 0.01 from t=100, 0.001 from t=200.
    """
    items = sorted((boundaries_and_scales or {}).items())
    for boundary, factor in items:
        if _util.is_python_number(factor) and not factor >= 0:
            raise ValueError(f"piecewise_constant_schedule: scale at boundary {boundary} must be >= 0, got {factor!r}.")

    def schedule(count):
        value = init_value
        for boundary, factor in items:
            before = jnp.maximum(0.0, jnp.sign(boundary - count))  # 1 while count < boundary, then 0
            value = value * before + (1 - before) * factor * value
        return value

    return schedule
