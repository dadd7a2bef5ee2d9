"""Small synthetic datasets, deterministic given a seed: XOR, two spirals, sine regression.

Each returns a `Dataset`. `seed` is an int or a JAX PRNG key (typed or raw uint32); the same seed gives
the same arrays on every run. Inputs are float32 of shape (N, 2) (classification) or (N, 1) (sine).
"""
from __future__ import annotations

import numpy as np

from jaxnets.data.base import Dataset, check_dataset

_BINARY = ("0", "1")


def _rng(seed) -> np.random.Generator:
    """A numpy Generator seeded from an int or a JAX key."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative int or a JAX key, got {seed}")
        return np.random.default_rng(int(seed))
    import jax

    dtype = getattr(seed, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        seed = jax.random.key_data(seed)
    words = np.asarray(seed)
    if words.dtype.kind not in "ui" or words.size == 0:
        raise TypeError(f"seed must be a non-negative int or a JAX PRNG key, got {type(seed).__name__}")
    return np.random.default_rng([int(w) for w in words.astype(np.uint32).ravel()])


def _count(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{what} must be a positive int, got {n!r}")
    return int(n)


def _noise_level(noise) -> float:
    noise = float(noise)
    if not noise >= 0.0:
        raise ValueError(f"noise must be a non-negative float, got {noise}")
    return noise


def xor(n: int | None = None, *, noise: float = 0.1, seed=0, n_test: int | None = None) -> Dataset:
    """The XOR problem.

    n=None: the four truth-table points [[0,0],[0,1],[1,0],[1,1]] with labels [0,1,1,0], used as both train
    and test set (noise ignored). n given: n training and n_test (default n) test points, each a random
    corner of the unit square plus Gaussian noise of std `noise`, labelled by the XOR of the corner.
    """
    if n is None:
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
        y = np.array([0, 1, 1, 0], np.int32)
        return check_dataset(Dataset(x, y, x.copy(), y.copy(), _BINARY), "xor")
    n = _count(n, "n")
    n_test = n if n_test is None else _count(n_test, "n_test")
    noise = _noise_level(noise)
    rng = _rng(seed)

    def draw(m):
        corners = rng.integers(0, 2, size=(m, 2))
        x = corners + noise * rng.standard_normal((m, 2))
        return x.astype(np.float32), (corners[:, 0] ^ corners[:, 1]).astype(np.int32)

    x_train, y_train = draw(n)
    x_test, y_test = draw(n_test)
    return check_dataset(Dataset(x_train, y_train, x_test, y_test, _BINARY), "xor")


def spirals(n: int = 200, *, noise: float = 0.05, seed=0, turns: float = 1.5,
            n_test: int | None = None) -> Dataset:
    """Two interleaved spirals in the plane (classes 0 and 1, alternating, so balanced).

    A point at parameter t ~ U(0.05, 1) lies at radius t and angle 2π·turns·t (+ π for class 1), plus
    Gaussian noise of std `noise`; coordinates lie roughly in [-1, 1]. n training, n_test (default n) test.
    """
    n = _count(n, "n")
    n_test = n if n_test is None else _count(n_test, "n_test")
    noise = _noise_level(noise)
    rng = _rng(seed)

    def draw(m):
        y = np.arange(m) % 2
        t = rng.uniform(0.05, 1.0, size=m)
        angle = 2.0 * np.pi * turns * t + np.pi * y
        x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
        x = x + noise * rng.standard_normal((m, 2))
        return x.astype(np.float32), y.astype(np.int32)

    x_train, y_train = draw(n)
    x_test, y_test = draw(n_test)
    return check_dataset(Dataset(x_train, y_train, x_test, y_test, _BINARY), "spirals")


def sine(n: int = 200, *, noise: float = 0.0, seed=0, n_test: int | None = None) -> Dataset:
    """Regression of y = sin(x) on x ∈ [−π, π].

    Training: n points with x ~ U(−π, π) and y = sin x + Gaussian noise of std `noise`.
    Test: n_test (default n) evenly spaced points from −π to π with the noiseless y = sin x.
    Shapes (N, 1) for both x and y, float32; classes = ().
    """
    n = _count(n, "n")
    n_test = n if n_test is None else _count(n_test, "n_test")
    noise = _noise_level(noise)
    rng = _rng(seed)
    x_train = rng.uniform(-np.pi, np.pi, size=(n, 1))
    y_train = np.sin(x_train) + noise * rng.standard_normal((n, 1))
    x_test = np.linspace(-np.pi, np.pi, n_test).reshape(n_test, 1)
    y_test = np.sin(x_test)
    f32 = np.float32
    return check_dataset(
        Dataset(x_train.astype(f32), y_train.astype(f32), x_test.astype(f32), y_test.astype(f32), ()), "sine"
    )
