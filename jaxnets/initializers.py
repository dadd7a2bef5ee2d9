"""Weight initializers: `init(key, shape, dtype=None) -> array`.

Dense kernels have shape (fan_in, fan_out); convolution kernels (kh, kw, c_in, c_out), whose fans are
multiplied by the receptive-field size kh·kw. `dtype=None` means JAX's default float (float32, or float64 when
`jax_enable_x64` is on).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _dtype(dtype):
    return jnp.zeros((), dtype if dtype is not None else float).dtype


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel: the last two axes are (in, out), earlier axes the receptive field."""
    if len(shape) < 1:
        raise ValueError(f"cannot compute fans of a scalar shape {shape}")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def zeros(key, shape, dtype=None):
    """All zeros (the textbook's choice for biases)."""
    del key
    return jnp.zeros(shape, _dtype(dtype))


def normal(std: float = 1.0):
    """N(0, std²) — the textbook's first ("large weight") initializer with std = 1."""
    if not std > 0:
        raise ValueError(f"normal(std): std must be > 0, got {std}")

    def init(key, shape, dtype=None):
        return std * jax.random.normal(key, shape, _dtype(dtype))

    return init


def glorot_uniform(key, shape, dtype=None):
    """U[−b, b] with b = √6 / √(fan_in + fan_out) (Glorot & Bengio 2010)."""
    fan_in, fan_out = fans(shape)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, _dtype(dtype), -bound, bound)


def nielsen_normal(key, shape, dtype=None):
    """N(0, 1/fan_in): the textbook's improved initializer (weights ~ 1/√n_in)."""
    fan_in, _ = fans(shape)
    return jax.random.normal(key, shape, _dtype(dtype)) / math.sqrt(fan_in)


lecun_normal = nielsen_normal  # same distribution, the name used in the literature (LeCun et al. 1998)


def he_normal(key, shape, dtype=None):
    """N(0, 2/fan_in) (He et al. 2015), for ReLU layers."""
    fan_in, _ = fans(shape)
    return jax.random.normal(key, shape, _dtype(dtype)) * math.sqrt(2.0 / fan_in)


__all__ = ["zeros", "normal", "glorot_uniform", "nielsen_normal", "lecun_normal", "he_normal", "fans"]
