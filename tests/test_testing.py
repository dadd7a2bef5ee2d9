"""jaxnets.testing: the pytest-facing assertions pass on correct code, and fail with the report's verdict as the
first line and the table below it."""
import jax
import jax.numpy as jnp
import pytest

import jaxnets as jn
from jaxnets import losses, testing
from jaxnets.core import Layer


def test_public_names():
    assert set(testing.__all__) == {"assert_layer_gradients", "assert_model_gradients", "assert_vjp", "assert_grad",
                                    "assert_report", "check_grads"}


def test_assert_layer_gradients_checks_both_modes_with_batched_and_reentrant():
    reports = testing.assert_layer_gradients(jn.layers.Dropout(0.3), (5,))
    assert len(reports) == 2
    for report in reports:
        assert any(n.startswith("batched: ") for n in report.notes)
        assert any(n.startswith("reentrant: ") for n in report.notes)


def test_assert_layer_gradients_fails_with_the_verdict_then_the_table():
    good = jn.Dense(3)
    bad = Layer(good.init, good.forward, lambda p, c, dy: (lambda g: ({"w": g[0]["w"], "b": 2 * g[0]["b"]}, g[1]))(
        good.backward(p, c, dy)), "DenseBias2")
    with pytest.raises(AssertionError) as err:
        testing.assert_layer_gradients(bad, (4,), train=True)
    message = err.value.args[0]
    assert message.splitlines()[0].startswith("gradient mismatch in layer DenseBias2 (checked alone): its parameter "
                                              "gradient 'b'")
    assert "\n\ngradient check (relative errors)" in message and "FAILED at the default tolerances" in message


def test_assert_model_gradients_vjp_and_grad():
    model = jn.serial(jn.Dense(4), jn.Tanh, jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (3,))
    x, y = jax.random.normal(jax.random.key(1), (5, 3)), jnp.arange(5) % 2
    testing.assert_model_gradients(model, losses.softmax_cross_entropy, params, state, x, y, finite_diff=False)

    @jax.custom_vjp
    def cube(v):
        return v ** 3

    cube.defvjp(lambda v: (v ** 3, v), lambda v, g: (3 * v * v * g,))
    testing.assert_vjp(cube, x)
    testing.assert_grad(lambda v: jnp.sum(cube(v)), x)
    cube.defvjp(lambda v: (v ** 3, v), lambda v, g: (2 * v * v * g,))
    with pytest.raises(AssertionError, match=r"^gradient mismatch in the custom rule of cube: argument v: "):
        testing.assert_vjp(cube, x, batched=False, reentrant=False)
    with pytest.raises(AssertionError, match=r"^gradient mismatch in <lambda>: argument v: "):
        testing.assert_grad(lambda v: jnp.sum(cube(v)), x)
