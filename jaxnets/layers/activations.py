"""Activation layers σ with their derivatives written out.

Each backward implements the ⊙ σ′(z) factor of the backprop equations: δ = ∂C/∂a ⊙ σ′(z) (BP1 at the
output layer, BP2 inside the network). Activations have no params and no state (both are `()`).

    LeakyRelu = elementwise("LeakyRelu", lambda z: jnp.where(z > 0, z, 0.01 * z),
                            lambda z: jnp.where(z > 0, 1.0, 0.01))

is all a new elementwise activation needs: its function and its derivative (see docs/custom-layers.md).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from jaxnets.core import Layer, Meta

_DERIVATIVE_OF = ("input", "output")


def _same_shape_init(key, input_shape):
    return tuple(input_shape), (), ()


def _unit(name: str, fn, vjp, cache_output: bool, meta: Meta) -> Layer:
    """A parameter-free unit y = fn(z) whose backward is `vjp(cache, dy)`; the cache is z or y = fn(z)."""

    def forward(params, state, z, ctx):
        y = fn(z)
        return y, state, (y if cache_output else z)

    def backward(params, cache, dy):
        return (), vjp(cache, dy)

    return Layer(_same_shape_init, forward, backward, name, meta=meta)


def elementwise(name: str, fn, dfn, *, derivative_of: str = "input", meta: Meta | None = None) -> Layer:
    """An activation applied entry by entry, y = σ(z), from σ and its derivative.

    fn:  σ, elementwise on arrays (e.g. `jnp.tanh`).
    dfn: σ′ as a function of z (`derivative_of="input"`, the default) or of the output y = σ(z)
         (`derivative_of="output"`, e.g. σ′ = y(1 − y) for the sigmoid, which saves keeping z).
    The backward is ∂C/∂z = ∂C/∂y ⊙ σ′ (BP1/BP2). Shapes are unchanged: any (m, ...) batch. `meta` is the
    layer's `jaxnets.core.Meta` (e.g. `Meta(outputs="probabilities")` for an output unit).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"elementwise(name, fn, dfn): name must be a non-empty str, got {name!r}")
    if not callable(fn) or not callable(dfn):
        raise TypeError(f"elementwise({name!r}, fn, dfn): fn and dfn must be functions of an array (σ and σ′), got "
                        f"{type(fn).__name__} and {type(dfn).__name__}")
    if derivative_of not in _DERIVATIVE_OF:
        raise ValueError(f"elementwise({name!r}): derivative_of must be 'input' (dfn(z)) or 'output' (dfn(σ(z))), "
                         f"got {derivative_of!r}")
    if meta is not None and not isinstance(meta, Meta):
        raise TypeError(f"elementwise({name!r}): meta must be a jaxnets.core.Meta, got {type(meta).__name__}")
    return _unit(name, fn, lambda cache, dy: dy * dfn(cache), derivative_of == "output", meta or Meta())


# σ(z) = 1/(1+e⁻ᶻ);  σ′(z) = σ(z)(1 − σ(z)), computed from the cached output.
Sigmoid = elementwise("Sigmoid", jax.nn.sigmoid, lambda y: y * (1 - y), derivative_of="output",
                      meta=Meta(outputs="probabilities"))

# tanh′(z) = 1 − tanh²(z), from the cached output.
Tanh = elementwise("Tanh", jnp.tanh, lambda y: 1 - y * y, derivative_of="output")

# ReLU(z) = max(0, z);  ReLU′(z) = 1[z > 0]. At z = 0 the derivative is taken as 0; the forward is written as
# a `where` so that jax.grad makes the same choice (jnp.maximum would split the tie as ½). A unit "fires" when
# z > 0 (the dead-unit diagnostics count units that never do).
Relu = elementwise("Relu", lambda z: jnp.where(z > 0, z, 0), lambda z: (z > 0).astype(z.dtype),
                   meta=Meta(fires=lambda z: z > 0))

# Linear unit: σ(z) = z, σ′ = 1.
Identity = elementwise("Identity", lambda z: z, lambda z: jnp.ones_like(z))

# The perceptron's threshold unit: 1 if z > 0 else 0. Its derivative is 0 wherever it exists, so gradient
# descent cannot train it; perceptrons learn with the Rosenblatt rule instead (jaxnets.perceptron).
Step = elementwise("Step", lambda z: (z > 0).astype(z.dtype), jnp.zeros_like)

# Softplus(z) = ln(1 + eᶻ) (as logaddexp(0, z): stable for large |z|);  Softplus′(z) = σ(z), the sigmoid.
Softplus = elementwise("Softplus", lambda z: jnp.logaddexp(0, z), jax.nn.sigmoid)


def LeakyRelu(slope: float = 0.01) -> Layer:
    """LeakyReLU(z) = z for z > 0, slope·z otherwise;  derivative 1[z > 0] + slope·1[z ≤ 0] (slope at z = 0)."""
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope):
        raise ValueError(f"LeakyRelu(slope): a finite number (the slope for z ≤ 0, e.g. 0.01), got {slope!r}")
    slope = float(slope)
    return elementwise(f"LeakyRelu({slope:g})", lambda z: jnp.where(z > 0, z, slope * z),
                       lambda z: jnp.where(z > 0, 1, slope).astype(z.dtype))


def Elu(alpha: float = 1.0) -> Layer:
    """ELU(z) = z for z > 0, α(eᶻ − 1) otherwise;  derivative 1 for z > 0, α eᶻ otherwise (α at z = 0)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha < 0:
        raise ValueError(f"Elu(alpha): a finite number >= 0 (the saturation value −α), got {alpha!r}")
    alpha = float(alpha)
    return elementwise(f"Elu({alpha:g})", lambda z: jnp.where(z > 0, z, alpha * jnp.expm1(jnp.minimum(z, 0))),
                       lambda z: jnp.where(z > 0, 1, alpha * jnp.exp(jnp.minimum(z, 0))).astype(z.dtype))


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715


def _gelu_tanh_derivative(z):
    # u = √(2/π)(z + 0.044715 z³), GELU(z) = ½ z (1 + tanh u):
    # GELU′(z) = ½(1 + tanh u) + ½ z (1 − tanh² u) · √(2/π)(1 + 3·0.044715 z²)
    t = jnp.tanh(_SQRT_2_OVER_PI * (z + _GELU_CUBIC * z ** 3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * z * z)


def _gelu_exact_derivative(z):
    # GELU(z) = z Φ(z) with Φ the standard normal CDF:  GELU′(z) = Φ(z) + z φ(z),  φ(z) = e^{−z²/2} / √(2π)
    return 0.5 * (1 + erf(z / math.sqrt(2))) + z * jnp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def Gelu(approximate: bool = True) -> Layer:
    """GELU(z) = z Φ(z) (`approximate=False`) or its tanh approximation (the default, as `jax.nn.gelu`)."""
    if not isinstance(approximate, bool):
        raise TypeError(f"Gelu(approximate): True (tanh approximation) or False (exact, with erf), got {approximate!r}")
    return elementwise("Gelu" if approximate else "Gelu(exact)",
                       lambda z: jax.nn.gelu(z, approximate=approximate),
                       _gelu_tanh_derivative if approximate else _gelu_exact_derivative)


def _softmax_vjp(y, dy):
    # Jacobian of softmax: ∂yᵢ/∂zⱼ = yᵢ(1[i=j] − yⱼ), so (Jᵀ dy)ⱼ = yⱼ (dyⱼ − Σᵢ dyᵢ yᵢ).
    return y * (dy - jnp.sum(dy * y, axis=-1, keepdims=True))


# Softmax over the last axis, yⱼ = e^{zⱼ} / Σₖ e^{zₖ} (shifted by max z for stability).
Softmax = _unit("Softmax", lambda z: jax.nn.softmax(z, axis=-1), _softmax_vjp, cache_output=True,
                meta=Meta(outputs="probabilities"))


def _log_softmax_vjp(y, dy):
    # yⱼ = zⱼ − ln Σₖ e^{zₖ}:  ∂yᵢ/∂zⱼ = 1[i=j] − softmax(z)ⱼ,
    # so (Jᵀ dy)ⱼ = dyⱼ − softmax(z)ⱼ Σᵢ dyᵢ,
    # with softmax(z) = e^y recovered from the cached output.
    return dy - jnp.exp(y) * jnp.sum(dy, axis=-1, keepdims=True)


# Log-softmax over the last axis, computed stably as z − logsumexp(z) (log-probabilities).
LogSoftmax = _unit("LogSoftmax", lambda z: jax.nn.log_softmax(z, axis=-1), _log_softmax_vjp, cache_output=True,
                   meta=Meta(outputs="log_probabilities"))
