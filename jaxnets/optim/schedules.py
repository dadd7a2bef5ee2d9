"""Learning-rate schedules: pure functions `count -> value` of the 0-based update count.

An optimizer evaluates its schedule on the count *before* incrementing it, so the first update uses
`schedule(0)`. Numeric arguments may be Python numbers or JAX arrays (traced values allowed, for sweeps); the
step counts (`transition_steps`, `decay_steps`, boundaries) must be Python ints.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

import jax.numpy as jnp

from jaxnets.optim import _util

Schedule = Callable[[Any], Any]


def _check_values(where: str, **values: Any) -> None:
    """Each value a finite number or array (a tracer taken as given); None passes (an optional value)."""
    for name, value in values.items():
        if value is not None:
            _util.check_finite(where, name, value)


def _warn_constant(where: str, why: str, init_value: Any) -> None:
    """optax gives the constant init_value here (and logs it); the user may have meant a decay, so say so."""
    warnings.warn(f"{where}: {why}, so the schedule is the constant init_value={init_value!r} (as in optax); pass "
                  "transition_steps > 0 for a schedule that changes", UserWarning, stacklevel=3)


def _begin(where: str, transition_begin: Any) -> int:
    """transition_begin as an int; a negative one counts as 0 (as in optax), with a warning."""
    begin = _util.check_steps(where, "transition_begin", transition_begin, low=-(2**63))
    if begin < 0:
        warnings.warn(f"{where}: transition_begin={begin} is negative and counts as 0 (as in optax)", UserWarning,
                      stacklevel=3)
    return max(begin, 0)


def constant_schedule(value: Any) -> Schedule:
    """lr(t) = value."""
    _check_values("constant_schedule", value=value)
    return lambda count: value


def linear_schedule(init_value: Any, end_value: Any, transition_steps: int, transition_begin: int = 0) -> Schedule:
    """Linear ramp from init_value (t <= begin) to end_value (t >= begin + transition_steps).

        c = clip(t - begin, 0, steps);   lr(t) = (init - end) * (1 - c/steps) + end
    transition_steps <= 0 gives the constant init_value (as in optax); a negative begin counts as 0.
    """
    where = "linear_schedule"
    _check_values(where, init_value=init_value, end_value=end_value)
    steps = _util.check_steps(where, "transition_steps", transition_steps, low=-(2**63))
    begin = _begin(where, transition_begin)
    if steps <= 0:
        _warn_constant(where, f"transition_steps={steps} is not positive", init_value)
        return lambda count: init_value

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
    where = "exponential_decay"
    _check_values(where, init_value=init_value, end_value=end_value)
    steps = _util.check_steps(where, "transition_steps", transition_steps, low=-(2**63))
    _util.check_range(where, "decay_rate", decay_rate, low=0,
                      fix="it multiplies the value every transition_steps updates, e.g. 0.5 halves it.")
    _util.check_flag(where, "staircase", staircase)
    begin = _begin(where, transition_begin)
    if steps <= 0:
        _warn_constant(where, f"transition_steps={steps} is not positive", init_value)
        return lambda count: init_value
    if _util.is_python_number(decay_rate) and decay_rate == 0:
        _warn_constant(where, "decay_rate=0", init_value)
        return lambda count: init_value

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
    where = "cosine_decay_schedule"
    _check_values(where, init_value=init_value)
    _util.check_steps(where, "decay_steps", decay_steps, low=1)
    _util.check_range(where, "alpha", alpha, low=0,
                      fix="alpha is the final fraction of init_value, e.g. 0.0 (decay to 0) or 0.1.")
    _util.check_positive(where, "exponent", exponent)
    total = float(decay_steps)

    def schedule(count):
        count = float(count) if isinstance(count, int) else count  # Python ints would overflow int32
        c = jnp.minimum(count, total)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * c / total))
        return init_value * ((1 - alpha) * cosine**exponent + alpha)

    return schedule


def join_schedules(schedules: list[Schedule], boundaries: list[int]) -> Schedule:
    """Use schedules[0] before boundaries[0], schedules[i] (on a count re-based to boundaries[i-1]) after."""
    where = "join_schedules"
    if not isinstance(schedules, (list, tuple)) or not all(callable(s) for s in schedules) or not schedules:
        raise TypeError(f"{where}: schedules must be a non-empty list of schedules (functions count -> value), got "
                        f"{schedules!r}")
    if not isinstance(boundaries, (list, tuple)) or len(boundaries) != len(schedules) - 1:
        raise ValueError(f"{where}: {len(schedules)} schedules need {len(schedules) - 1} boundaries (one between "
                         f"each pair), got {boundaries!r}")
    for i, boundary in enumerate(boundaries):
        _util.check_steps(where, f"boundaries[{i}]", boundary)

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
    where = "warmup_cosine_decay_schedule"
    _check_values(where, init_value=init_value, peak_value=peak_value, end_value=end_value)
    _util.check_steps(where, "warmup_steps", warmup_steps)
    _util.check_steps(where, "decay_steps", decay_steps, low=1)
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
    where = "piecewise_constant_schedule"
    _check_values(where, init_value=init_value)
    if boundaries_and_scales is not None and not isinstance(boundaries_and_scales, dict):
        raise TypeError(f"{where}: boundaries_and_scales must be a dict {{update count: scale}}, e.g. {{100: 0.1}}, "
                        f"or None, got {type(boundaries_and_scales).__name__} {boundaries_and_scales!r}")
    for boundary, factor in (boundaries_and_scales or {}).items():
        _util.check_steps(where, "a boundary", boundary)
        _util.check_range(where, f"the scale at boundary {boundary}", factor, low=0,
                          fix="each scale multiplies the value from its boundary on, e.g. 0.1.")
    items = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        value = init_value
        for boundary, factor in items:
            before = jnp.maximum(0.0, jnp.sign(boundary - count))  # 1 while count < boundary, then 0
            value = value * before + (1 - before) * factor * value
        return value

    return schedule
