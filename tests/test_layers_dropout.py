"""Dropout: inverted scaling keeps the expectation, identity at evaluation, per-layer masks, the cached mask."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _layer_grad_helpers import init_model, three_way
from jaxnets import apply, losses
from jaxnets.core import Ctx, serial
from jaxnets.layers import Dense, Dropout, Sigmoid


def test_expectation_is_preserved_and_the_drop_rate_matches():
    rate, draws = 0.3, 4000
    layer = Dropout(rate)
    x = jnp.linspace(-2.0, 3.0, 40).reshape(1, 40)
    keys = jax.random.split(jax.random.PRNGKey(0), draws)
    ys = jax.vmap(lambda k: layer.forward((), (), x, Ctx(True, k))[0])(keys)[:, 0, :]
    # each draw is x·r/q with r ~ Bernoulli(q): mean x, standard deviation |x|·√((1 − q)/q)
    std_of_mean = np.abs(np.asarray(x[0])) * np.sqrt(rate / (1 - rate) / draws)
    assert np.all(np.abs(np.asarray(ys.mean(axis=0)) - np.asarray(x[0])) <= 5 * std_of_mean + 1e-6)
    dropped = float(jnp.mean(ys == 0))
    assert abs(dropped - rate) < 0.01
    ratios = np.asarray(ys) / np.asarray(x)          # x has no zeros: each ratio is 0 (dropped) or 1/q (kept)
    np.testing.assert_allclose(ratios[ratios != 0], 1 / (1 - rate), rtol=1e-6)


def test_evaluation_is_the_identity_whatever_the_key():
    model = serial(Dense(5), Dropout(0.5))
    _, params, state = model.init(jax.random.PRNGKey(0), (3,))
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    dense_only = x @ params[0]["w"] + params[0]["b"]
    y1, _ = apply(model, params, state, x, train=False)
    y2, _ = apply(model, params, state, x, train=False, key=jax.random.PRNGKey(7))
    np.testing.assert_array_equal(y1, dense_only)
    np.testing.assert_array_equal(y2, dense_only)
    y_train, _ = apply(model, params, state, x, train=True, key=jax.random.PRNGKey(7))
    assert np.any(np.asarray(y_train) == 0) and not np.array_equal(y_train, dense_only)


def test_rate_zero_is_the_identity_in_training():
    x = jnp.arange(6.0).reshape(2, 3)
    y, _, cache = Dropout(0.0).forward((), (), x, Ctx(True, jax.random.PRNGKey(0)))
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(Dropout(0.0).backward((), cache, x)[1], x)


def test_layers_in_a_serial_get_different_masks_and_keys_are_reproducible():
    model = serial(Dropout(0.5), Dropout(0.5))
    x = jnp.ones((8, 64))
    ctx = Ctx(True, jax.random.PRNGKey(3))
    _, _, ((mask_a, _), (mask_b, _)) = model.forward(((), ()), ((), ()), x, ctx)   # each cache: (mask, 1/keep)
    assert mask_a.shape == mask_b.shape == x.shape
    assert not np.array_equal(mask_a, mask_b)
    _, _, ((again_a, _), _) = model.forward(((), ()), ((), ()), x, ctx)
    np.testing.assert_array_equal(mask_a, again_a)
    _, _, ((other_a, _), _) = model.forward(((), ()), ((), ()), x, Ctx(True, jax.random.PRNGKey(4)))
    assert not np.array_equal(mask_a, other_a)


def test_backward_uses_the_forward_mask():
    layer = Dropout(0.25)
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 32)) + 5.0   # no zero inputs
    y, _, mask = layer.forward((), (), x, Ctx(True, jax.random.PRNGKey(1)))
    _, dx = layer.backward((), mask, jnp.ones_like(y))
    np.testing.assert_array_equal(np.asarray(dx) != 0, np.asarray(y) != 0)
    np.testing.assert_allclose(dx[np.asarray(y) != 0], 1 / 0.75, rtol=1e-6)


def test_three_way_gradients_with_a_fixed_key_float64(x64):
    model = serial(Dense(6), Sigmoid, Dropout(0.4), Dense(3))
    params, state = init_model(model, (5,), jnp.float64)
    x = jax.random.normal(jax.random.PRNGKey(2), (7, 5), jnp.float64)
    y = jnp.array([0, 1, 2, 0, 1, 2, 0])
    ctx = Ctx(True, jax.random.PRNGKey(9))
    three_way("dense-dropout-dense", model, params, state, x, y, losses.softmax_cross_entropy, ctx,
              rtol=1e-10, fd_rtol=1e-6)


def test_manual_matches_autodiff_float32():
    model = serial(Dropout(0.2), Dense(6), Sigmoid, Dropout(0.5), Dense(3))
    params, state = init_model(model, (5,), jnp.float32)
    x = jax.random.normal(jax.random.PRNGKey(2), (7, 5))
    three_way("dropout-dense-dropout-dense", model, params, state, x, jnp.array([0, 1, 2, 0, 1, 2, 0]),
              losses.softmax_cross_entropy, Ctx(True, jax.random.PRNGKey(5)), rtol=1e-5, fd=False)


def test_training_without_a_key_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Dropout\(0.5\).*PRNG key.*train=True, key="):
        Dropout(0.5).forward((), (), jnp.ones((2, 3)), Ctx(train=True))


@pytest.mark.parametrize("rate, error", [(-0.1, ValueError), (1.0, ValueError), (1.5, ValueError),
                                         ("0.5", TypeError), (None, TypeError), (True, TypeError),
                                         (jnp.asarray(1.0), ValueError), (jnp.asarray(-0.5), ValueError),
                                         (np.float32(1.0), ValueError), (np.asarray(float("nan")), ValueError),
                                         (jnp.asarray(1), ValueError)])
def test_rate_outside_the_unit_interval_is_rejected(rate, error):
    with pytest.raises(error, match=r"Dropout\(rate\).*\[0, 1\)"):
        Dropout(rate)


def test_a_concrete_jax_scalar_rate_is_a_float_and_a_traced_one_still_works():
    assert Dropout(jnp.asarray(0.25)).name == Dropout(0.25).name == "Dropout(0.25)"
    with pytest.raises(ValueError, match="a scalar rate is needed"):
        Dropout(jnp.asarray([0.1, 0.2]))
    x = jnp.ones((4, 50))

    def dropped(rate):     # a traced rate, as a sweep passes it
        layer = Dropout(rate)
        assert layer.name == "Dropout(traced rate)"
        return jnp.mean(layer.forward((), (), x, Ctx(True, jax.random.PRNGKey(0)))[0] == 0)

    fractions = jax.jit(jax.vmap(dropped))(jnp.asarray([0.0, 0.5]))
    assert float(fractions[0]) == 0.0 and 0.3 < float(fractions[1]) < 0.7
