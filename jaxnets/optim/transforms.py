"""Building blocks: learning-rate scaling, momentum traces and the adaptive (Adagrad/RMSProp/Adam) scalings.

Notation, per leaf and elementwise: g is the incoming update (the gradient or the previous transform's output),
t the step number after increment (1 on the first update). Each state NamedTuple has optax's name and fields, so
states are comparable leaf by leaf and `optax.tree.get(state, "mu")` finds the same arrays.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.optim import _util
from jaxnets.optim.base import (GradientTransformation, ScalarOrSchedule, identity, init_empty_state,
                                remember_learning_rate)


def _zeros(params):
    return jax.tree.map(jnp.zeros_like, params)


def _full(params, value):
    return jax.tree.map(lambda p: jnp.full_like(p, value), params)


def _count0():
    return jnp.zeros([], jnp.int32)


# --------------------------------------------------------------------------------------------- learning rate
class ScaleByScheduleState(NamedTuple):
    count: jax.Array  # int32 scalar: number of updates so far


def scale(step_size: Any) -> GradientTransformation:
    """u = step_size * g (stateless)."""
    _util.check_finite("scale", "step_size", step_size)

    def update(updates, state, params=None, **extra):
        return jax.tree.map(lambda g: step_size * g, updates), state

    return GradientTransformation(init_empty_state, update)


def scale_by_schedule(step_size_fn) -> GradientTransformation:
    """u = step_size_fn(count) * g, with count = 0 on the first update (the value is cast to g's dtype)."""
    if not callable(step_size_fn):
        raise TypeError(f"scale_by_schedule: step_size_fn must be a schedule (a function count -> step size), got "
                        f"{type(step_size_fn).__name__} {step_size_fn!r}; for a constant use scale(step_size)")

    def init(params):
        return ScaleByScheduleState(count=_count0())

    def update(updates, state, params=None, **extra):
        step_size = step_size_fn(state.count)
        updates = jax.tree.map(lambda g: jnp.array(step_size, dtype=g.dtype) * g, updates)
        return updates, ScaleByScheduleState(count=_util.safe_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate: ScalarOrSchedule | None, *, flip_sign: bool = True) -> GradientTransformation:
    """u = -lr * g (or +lr * g with flip_sign=False): the sign that turns a direction into a descent step.

    `learning_rate` is a Python number (> 0), a JAX array (possibly traced, for sweeps), a schedule
    `count -> lr` (state ScaleByScheduleState(count)), or None (identity).
    """
    _util.check_learning_rate("scale_by_learning_rate", learning_rate)
    _util.check_flag("scale_by_learning_rate", "flip_sign", flip_sign)
    if learning_rate is None:
        return identity()
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return remember_learning_rate(scale_by_schedule(lambda count: sign * learning_rate(count)), learning_rate)
    return remember_learning_rate(scale(sign * learning_rate), learning_rate)


# --------------------------------------------------------------------------------------------- momentum
class TraceState(NamedTuple):
    trace: Any  # the momentum buffer m, shaped like params


def trace(decay: Any, nesterov: bool = False) -> GradientTransformation:
    """Heavy-ball momentum on raw updates (the learning rate is applied outside the buffer).

        m_t = g_t + decay * m_{t-1},    m_0 = 0
        u_t = m_t                        (heavy ball)
        u_t = g_t + decay * m_t          (nesterov=True)
    """
    _util.check_decay("trace", "decay", decay)
    _util.check_flag("trace", "nesterov", nesterov)

    def init(params):
        return TraceState(trace=_zeros(params))

    def update(updates, state, params=None, **extra):
        old = _util.state_field("trace", state, "trace", updates)
        new = jax.tree.map(lambda g, m: g + decay * m, updates, old)
        out = jax.tree.map(lambda g, m: g + decay * m, updates, new) if nesterov else new
        return out, TraceState(trace=new)

    return GradientTransformation(init, update)


# --------------------------------------------------------------------------------------------- Adagrad
class ScaleByRssState(NamedTuple):
    sum_of_squares: Any  # γ: running sum of squared updates, shaped like params


def scale_by_rss(initial_accumulator_value: Any = 0.1, eps: Any = 1e-7) -> GradientTransformation:
    """Adagrad's scaling by the root of the sum of squares (eps *inside* the square root).

        γ_t = γ_{t-1} + g_t²,           γ_0 = initial_accumulator_value
        u_t = g_t / sqrt(γ_t + eps)     where γ_t > 0, and 0 where γ_t == 0
    """
    _util.check_nonnegative("scale_by_rss", "initial_accumulator_value", initial_accumulator_value)
    _util.check_nonnegative("scale_by_rss", "eps", eps)

    def init(params):
        return ScaleByRssState(sum_of_squares=_full(params, initial_accumulator_value))

    def update(updates, state, params=None, **extra):
        old = _util.state_field("scale_by_rss", state, "sum_of_squares", updates)
        gamma = jax.tree.map(lambda g, s: _util.abs_sq(g) + s, updates, old)
        inv_root = jax.tree.map(lambda s: jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0), gamma)
        updates = jax.tree.map(lambda r, g: r * g, inv_root, updates)
        return updates, ScaleByRssState(sum_of_squares=gamma)

    return GradientTransformation(init, update)


# --------------------------------------------------------------------------------------------- RMSProp
class ScaleByRmsState(NamedTuple):
    nu: Any  # EMA of squared updates


class ScaleByRmsWithCountState(NamedTuple):
    count: jax.Array
    nu: Any


class ScaleByRStdDevState(NamedTuple):
    mu: Any  # EMA of updates
    nu: Any  # EMA of squared updates


class ScaleByRStdDevWithCountState(NamedTuple):
    count: jax.Array
    mu: Any
    nu: Any


def _inverse_root(x, eps, eps_in_sqrt):
    """1/sqrt(x + eps) (computed with rsqrt) or 1/(sqrt(x) + eps)."""
    return jax.lax.rsqrt(x + eps) if eps_in_sqrt else 1 / (jnp.sqrt(x) + eps)


def scale_by_rms(
    decay: Any = 0.9, eps: Any = 1e-8, initial_scale: Any = 0.0, eps_in_sqrt: bool = True, bias_correction: bool = False
) -> GradientTransformation:
    """RMSProp's scaling by the root of an exponential moving average of squares.

        ν_t = (1 - decay) g_t² + decay ν_{t-1},     ν_0 = initial_scale
        ν̂_t = ν_t / (1 - decay^t) if bias_correction else ν_t
        u_t = g_t / sqrt(ν̂_t + eps)   (eps_in_sqrt)   or   g_t / (sqrt(ν̂_t) + eps)
    The state gains a `count` when bias_correction is on.
    """
    _util.check_decay("scale_by_rms", "decay", decay)
    _util.check_nonnegative("scale_by_rms", "eps", eps)
    _util.check_nonnegative("scale_by_rms", "initial_scale", initial_scale)
    _util.check_flag("scale_by_rms", "eps_in_sqrt", eps_in_sqrt)
    _util.check_flag("scale_by_rms", "bias_correction", bias_correction)

    def init(params):
        nu = _full(params, initial_scale)
        return ScaleByRmsWithCountState(count=_count0(), nu=nu) if bias_correction else ScaleByRmsState(nu=nu)

    def update(updates, state, params=None, **extra):
        old = _util.state_field("scale_by_rms", state, "nu", updates)
        nu = jax.tree.map(lambda g, n: _util.ema(decay, _util.abs_sq(g), n), updates, old)
        if bias_correction:
            count = _util.safe_increment(state.count)
            nu_hat = _util.debias(nu, decay, count)
        else:
            nu_hat = nu
        updates = jax.tree.map(lambda n, g: _inverse_root(n, eps, eps_in_sqrt) * g, nu_hat, updates)
        new_state = ScaleByRmsWithCountState(count=count, nu=nu) if bias_correction else ScaleByRmsState(nu=nu)
        return updates, new_state

    return GradientTransformation(init, update)


def scale_by_stddev(
    decay: Any = 0.9, eps: Any = 1e-8, initial_scale: Any = 0.0, eps_in_sqrt: bool = True, bias_correction: bool = False
) -> GradientTransformation:
    """Centred RMSProp: scale by the root of an EMA estimate of the variance.

        μ_t = (1 - decay) g_t + decay μ_{t-1},      μ_0 = 0
        ν_t = (1 - decay) g_t² + decay ν_{t-1},     ν_0 = initial_scale
        (μ̂, ν̂) = (μ, ν) / (1 - decay^t) if bias_correction else (μ, ν)
        u_t = g_t / sqrt(ν̂_t - μ̂_t² + eps)   or   g_t / (sqrt(ν̂_t - μ̂_t²) + eps)
    """
    _util.check_decay("scale_by_stddev", "decay", decay)
    _util.check_nonnegative("scale_by_stddev", "eps", eps)
    _util.check_nonnegative("scale_by_stddev", "initial_scale", initial_scale)
    _util.check_flag("scale_by_stddev", "eps_in_sqrt", eps_in_sqrt)
    _util.check_flag("scale_by_stddev", "bias_correction", bias_correction)

    def init(params):
        mu, nu = _zeros(params), _full(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(count=_count0(), mu=mu, nu=nu)
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(updates, state, params=None, **extra):
        old_mu = _util.state_field("scale_by_stddev", state, "mu", updates)
        old_nu = _util.state_field("scale_by_stddev", state, "nu", updates)
        mu = jax.tree.map(lambda g, m: _util.ema(decay, g, m), updates, old_mu)
        nu = jax.tree.map(lambda g, n: _util.ema(decay, _util.abs_sq(g), n), updates, old_nu)
        if bias_correction:
            count = _util.safe_increment(state.count)
            mu_hat, nu_hat = _util.debias(mu, decay, count), _util.debias(nu, decay, count)
        else:
            mu_hat, nu_hat = mu, nu
        scaling = jax.tree.map(lambda m, n: _inverse_root(n - _util.abs_sq(m), eps, eps_in_sqrt), mu_hat, nu_hat)
        updates = jax.tree.map(lambda s, g: s * g, scaling, updates)
        if bias_correction:
            return updates, ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
        return updates, ScaleByRStdDevState(mu=mu, nu=nu)

    return GradientTransformation(init, update)


# --------------------------------------------------------------------------------------------- Adam
class ScaleByAdamState(NamedTuple):
    count: jax.Array  # int32 scalar t
    mu: Any  # first moment (EMA of updates)
    nu: Any  # second moment (EMA of squared updates)


def scale_by_adam(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0, *, nesterov: bool = False
) -> GradientTransformation:
    """Adam's direction (Kingma & Ba, Algorithm 1; eps outside the root, eps_root inside).

        μ_t = (1 - b1) g_t + b1 μ_{t-1}          ν_t = (1 - b2) g_t² + b2 ν_{t-1}       (μ_0 = ν_0 = 0)
        μ̂_t = μ_t / (1 - b1^t)                                                           (nesterov=False)
        μ̂_t = b1 μ_t / (1 - b1^(t+1)) + (1 - b1) g_t / (1 - b1^t)                        (nesterov=True)
        ν̂_t = ν_t / (1 - b2^t)
        u_t = μ̂_t / (sqrt(ν̂_t + eps_root) + eps)
    """
    where = "scale_by_adam"
    _util.check_decay(where, "b1", b1)
    _util.check_decay(where, "b2", b2)
    _util.check_nonnegative(where, "eps", eps)
    _util.check_nonnegative(where, "eps_root", eps_root)
    _util.check_flag(where, "nesterov", nesterov)

    def init(params):
        return ScaleByAdamState(count=_count0(), mu=_zeros(params), nu=_zeros(params))

    def update(updates, state, params=None, **extra):
        old_mu = _util.state_field(where, state, "mu", updates)
        old_nu = _util.state_field(where, state, "nu", updates)
        mu = jax.tree.map(lambda g, m: _util.ema(b1, g, m), updates, old_mu)
        nu = jax.tree.map(lambda g, n: _util.ema(b2, _util.abs_sq(g), n), updates, old_nu)
        count = _util.safe_increment(state.count)
        if nesterov:
            mu_next = _util.debias(mu, b1, _util.safe_increment(count))
            g_hat = _util.debias(updates, b1, count)
            mu_hat = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, mu_next, g_hat)
        else:
            mu_hat = _util.debias(mu, b1, count)
        nu_hat = _util.debias(nu, b2, count)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat)
        nu = jax.tree.map(lambda n, old: n.astype(old.dtype), nu, old_nu)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


__all__ = [
    "ScaleByAdamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "TraceState",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_stddev",
    "trace",
]
