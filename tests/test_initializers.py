"""Initializer distributions: Glorot's bound, the 1/√fan_in scalings, zero biases."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import initializers as init


def test_glorot_uniform_bound_and_spread():
    w = init.glorot_uniform(jax.random.key(0), (300, 200))
    b = math.sqrt(6 / 500)
    assert float(jnp.max(jnp.abs(w))) <= b
    assert float(jnp.max(jnp.abs(w))) > 0.99 * b  # it fills the interval
    np.testing.assert_allclose(float(jnp.std(w)), b / math.sqrt(3), rtol=0.02)  # std of U[-b, b]


def test_conv_kernel_fans_include_receptive_field():
    assert init.fans((5, 5, 3, 20)) == (75, 500)
    w = init.glorot_uniform(jax.random.key(1), (5, 5, 3, 20))
    assert float(jnp.max(jnp.abs(w))) <= math.sqrt(6 / 575)


@pytest.mark.parametrize("fn,var", [(init.nielsen_normal, 1 / 400), (init.lecun_normal, 1 / 400),
                                    (init.he_normal, 2 / 400)])
def test_normal_scalings(fn, var):
    w = fn(jax.random.key(2), (400, 300))
    np.testing.assert_allclose(float(jnp.var(w)), var, rtol=0.02)
    assert abs(float(jnp.mean(w))) < 0.01 * math.sqrt(var) * 10


def test_normal_std_and_zeros_and_dtype(x64):
    w = init.normal(1.0)(jax.random.key(3), (500, 400))
    np.testing.assert_allclose(float(jnp.std(w)), 1.0, rtol=0.01)
    assert w.dtype == jnp.float64
    assert init.zeros(None, (3,), jnp.float32).dtype == jnp.float32
    np.testing.assert_array_equal(init.zeros(None, (3,)), 0.0)
    with pytest.raises(ValueError, match="std must be > 0"):
        init.normal(0.0)


def test_the_initializers_jax_also_has_draw_the_same_samples():
    import jax.nn.initializers as jinit

    key = jax.random.key(3)
    for shape in ((30, 20), (3, 3, 4, 8)):
        np.testing.assert_allclose(init.glorot_uniform(key, shape), jinit.glorot_uniform()(key, shape),
                                   rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(init.normal(0.3)(key, shape), jinit.normal(0.3)(key, shape), rtol=1e-6)
        np.testing.assert_array_equal(init.zeros(key, shape), jinit.zeros(key, shape))
        np.testing.assert_array_equal(init.ones(key, shape), jinit.ones(key, shape))
    # he_normal / lecun_normal are untruncated (jax's are truncated at 2σ): same variance, different tails
    w = np.asarray(init.he_normal(key, (784, 2000)))
    assert np.std(w) == pytest.approx(np.sqrt(2 / 784), rel=0.01)
    assert np.max(np.abs(w)) > 2.5 * np.sqrt(2 / 784)        # beyond 2σ: not truncated
    t = np.asarray(jinit.he_normal()(key, (784, 2000)))
    assert np.max(np.abs(t)) <= 2 * np.sqrt(2 / 784) / 0.87962566 + 1e-6
