"""Weight initializers: `init(key, shape, dtype=None) -> array`.

Dense kernels have shape (fan_in, fan_out); convolution kernels (kh, kw, c_in, c_out), whose fans are
multiplied by the receptive-field size kh·kw. `dtype=None` means JAX's default float (float32, or float64 when
`jax_enable_x64` is on).

Relation to `jax.nn.initializers` (which Flax uses): `zeros`, `ones`, `normal(std)` and `glorot_uniform` draw
the same distributions as jax's `zeros`, `ones`, `normal(std)` and `glorot_uniform()` (the same fans; from the
same key the samples agree up to float rounding, tested). `he_normal` and `lecun_normal` (= `nielsen_normal`) are
*untruncated* normals N(0, 2/fan_in) and N(0, 1/fan_in), as in He et al. and the textbook; jax's and Flax's
`he_normal`/`lecun_normal` are truncated at two standard deviations (and rescaled to keep the variance).
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


def ones(key, shape, dtype=None):
    """All ones (e.g. the initial scale γ of a normalisation layer)."""
    del key
    return jnp.ones(shape, _dtype(dtype))


def normal(std: float = 1.0):
    """N(0, std²) — the textbook's first ("large weight") initializer with std = 1."""
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not (std > 0 and math.isfinite(std)):
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
    """N(0, 1/fan_in), untruncated: the textbook's improved initializer (weights ~ 1/√n_in)."""
    fan_in, _ = fans(shape)
    return jax.random.normal(key, shape, _dtype(dtype)) / math.sqrt(fan_in)


lecun_normal = nielsen_normal  # the same (untruncated) distribution, the literature's name (LeCun et al. 1998)


def he_normal(key, shape, dtype=None):
    """N(0, 2/fan_in), untruncated (He et al. 2015), for ReLU layers (jax's he_normal is truncated)."""
    fan_in, _ = fans(shape)
    return jax.random.normal(key, shape, _dtype(dtype)) * math.sqrt(2.0 / fan_in)


__all__ = ["zeros", "ones", "normal", "glorot_uniform", "nielsen_normal", "lecun_normal", "he_normal", "fans"]
