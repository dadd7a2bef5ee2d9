"""No false alarms at kinks, no pass outside the bracket; magnitudes; the failing index named.

At a kink (ReLU/LeakyReLU at 0, |x| at 0, a clip at its bound, a max-pooling window with tied maxima) a value inside
the bracket of the one-sided finite differences is correct, whichever side the hand-written rule picks, and the
report says where the rule applied; a value outside fails. Correct layers pass at large (1e6) and tiny (1e-6)
magnitudes in float32. A failing row names the index of its worst entry and the values there, also when the check
was directional (the failing leaf is re-checked per coordinate)."""
import jax
import jax.numpy as jnp
import pytest

import jaxnets as jn
from jaxnets import gradcheck, losses
from jaxnets.core import Layer
from jaxnets.layers import Conv2D, Flatten, MaxPool, elementwise

LOSS = losses.softmax_cross_entropy


def relu_with(derivative_at_zero):
    """ReLU whose backward takes relu′(0) = derivative_at_zero (0 and 1 are both valid, 2 is not)."""
    return elementwise(f"Relu'(0)={derivative_at_zero}", lambda z: jnp.maximum(z, 0),
                       lambda z: jnp.where(z > 0, 1.0, jnp.where(z < 0, 0.0, derivative_at_zero)))


def leaky_with(derivative_at_zero):
    return elementwise(f"Leaky'(0)={derivative_at_zero}", lambda z: jnp.where(z > 0, z, 0.1 * z),
                       lambda z: jnp.where(z > 0, 1.0, jnp.where(z < 0, 0.1, derivative_at_zero)))


def _at_zero(activation):
    """A model whose activation sees exact zeros: zero biases, and examples 0 and 2 of x are zero."""
    model = jn.serial(jn.Dense(4), activation, jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (5,))
    x = jax.random.normal(jax.random.key(1), (4, 5)).at[0].set(0.0).at[2].set(0.0)
    return model, params, state, x, jnp.array([0, 1, 2, 0])


@pytest.mark.parametrize("activation", [relu_with(1.0), relu_with(0.0), relu_with(0.5), leaky_with(1.0),
                                        leaky_with(0.1)], ids=lambda a: a.name)
def test_valid_one_sided_choices_at_zero_pass_and_are_reported(x64, activation):
    model, params, state, x, y = _at_zero(activation)
    report = gradcheck.check_model(model, LOSS, params, state, x, y)
    report.assert_close()
    assert {r.where for r in report.rows if r.check == "in place" and r.kinks} == {"1"}
    assert "kink rule applied" in report.header()[-1] or any("kink rule applied" in h for h in report.header())


@pytest.mark.parametrize("activation", [relu_with(2.0), leaky_with(-0.5)], ids=lambda a: a.name)
def test_a_value_outside_the_bracket_fails(x64, activation):
    model, params, state, x, y = _at_zero(activation)
    with pytest.raises(AssertionError) as err:
        gradcheck.check_model(model, LOSS, params, state, x, y).assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith(f"gradient mismatch in layer {activation.name} (at 1 of the model, checked in place): "
                            "its input gradient dx"), first
    assert "(one-sided: a kink)" in first and "worst at input[0, " in first, first


def _quantised():
    """Pixels on a grid of 1/2: flat regions make exact ties inside 2×2 pooling windows."""
    x = jnp.round(jax.random.uniform(jax.random.key(1), (3, 6, 6, 1)) * 2) / 2
    return x, jnp.array([0, 1, 2])


def naive_max_pool():
    """The common hand-written max-pooling backward: every entry equal to the window's maximum gets dy. Right
    without ties; with ties each entry is inside its own bracket, but the window's sum is not."""
    pool = MaxPool(2)

    def backward(params, cache, dy):
        x, y = cache
        up = jnp.repeat(jnp.repeat(y, 2, axis=1), 2, axis=2)
        return (), jnp.where(x == up, jnp.repeat(jnp.repeat(dy, 2, axis=1), 2, axis=2), 0.0)

    return Layer(pool.init, pool.forward, backward, "NaiveMaxPool")


@pytest.mark.parametrize("finite_diff", ["coordinates", "directions"])
def test_jaxnets_max_pool_passes_on_exact_ties(x64, finite_diff):
    x, y = _quantised()
    model = jn.serial(MaxPool(2), Flatten, jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (6, 6, 1))
    report = gradcheck.check_model(model, LOSS, params, state, x, y, finite_diff=finite_diff)
    report.assert_close()
    pool = next(r for r in report.rows if r.check == "in place" and r.where == "0")
    assert pool.kinks > 0
    if finite_diff == "directions":    # kink directions are left to the per-coordinate re-check
        assert pool.note.startswith("re-checked 108 of 108 entries") or pool.manual_vs_fd[1] <= 1e-6


def test_the_naive_max_pool_fails_on_ties(x64):
    x, y = _quantised()
    model = jn.serial(naive_max_pool(), Flatten, jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (6, 6, 1))
    with pytest.raises(AssertionError) as err:
        gradcheck.check_model(model, LOSS, params, state, x, y).assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith("gradient mismatch in layer NaiveMaxPool (at 0 of the model, checked in place)"), first
    assert "along the translation of input" in first


def test_abs_and_clip_at_their_kinks(x64):
    x = jnp.array([0.0, 1.5, -2.0, 1.0, -1.0, 0.3])
    gradcheck.check_grad(lambda v: jnp.sum(jnp.abs(v) * jnp.arange(1.0, 7.0)), x).assert_close()
    report = gradcheck.check_grad(lambda v: jnp.sum(jnp.clip(v, -1.0, 1.0) ** 3), x)   # at both bounds
    report.assert_close()
    assert report.rows[0].kinks == 2     # x = 1 and x = -1 sit on the bounds

    def abs_rule(slope_at_zero):
        @jax.custom_vjp
        def my_abs(v):
            return jnp.abs(v)

        my_abs.defvjp(lambda v: (jnp.abs(v), v),
                      lambda v, g: (g * jnp.where(v > 0, 1.0, jnp.where(v < 0, -1.0, slope_at_zero)),))
        return my_abs

    for ok in (0.0, 1.0, -1.0, 0.3):
        gradcheck.check_vjp(abs_rule(ok), x).assert_close()
    with pytest.raises(AssertionError) as err:
        gradcheck.check_vjp(abs_rule(1.5), x).assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith("gradient mismatch in the custom rule of my_abs: argument v: ") and "worst at v[0]" in first


@pytest.mark.parametrize("scale", [1e6, 1e-6], ids=["1e6", "1e-6"])
def test_correct_models_pass_in_float32_at_large_and_tiny_magnitudes(scale):
    model = jn.serial(jn.Dense(5), jn.Tanh, jn.layers.LayerNorm(), jn.Dense(4), jn.Relu, jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (6,))
    x = scale * jax.random.normal(jax.random.key(1), (4, 6))
    report = gradcheck.check_model(model, LOSS, params, state, x, jnp.array([0, 1, 2, 0]))
    assert report.manual_dtype == "float32"
    report.assert_close()


@pytest.mark.parametrize("scale", [1e6, 1e-6], ids=["1e6", "1e-6"])
def test_custom_rules_pass_at_large_and_tiny_magnitudes(scale):
    @jax.custom_vjp
    def softplus(v):
        return jnp.logaddexp(v, 0.0)

    softplus.defvjp(lambda v: (softplus(v), v), lambda v, g: (g * jax.nn.sigmoid(v),))
    x = scale * jax.random.normal(jax.random.key(0), (3, 4))
    gradcheck.check_vjp(softplus, x).assert_close()


# ----------------------------------------------------------------------------------- the failing index named
def dense_wrong_at(index, factor=1.5, n=3):
    good = jn.Dense(n)

    def backward(params, cache, dy):
        dp, dx = good.backward(params, cache, dy)
        return {"w": dp["w"].at[index].multiply(factor), "b": dp["b"]}, dx

    return Layer(good.init, good.forward, backward, "DenseOneEntry")


def test_the_worst_entry_and_its_three_values_are_named():
    report = gradcheck.check_layer(dense_wrong_at((2, 1)), (6,), key=jax.random.key(0))
    with pytest.raises(AssertionError) as err:
        report.assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith("gradient mismatch in layer DenseOneEntry (checked alone): its parameter gradient 'w': ")
    assert "; worst at w[2, 1]: manual " in first and ", autodiff " in first and ", finite differences " in first
    w = next(r for r in report.rows if r.leaf == "w")
    for column in ("manual_vs_autodiff", "manual_vs_fd"):
        entry = w.entry(column)
        assert entry.index == (2, 1) and entry.manual == pytest.approx(1.5 * entry.autodiff, rel=1e-9)
        assert entry.fd == pytest.approx(entry.autodiff, rel=1e-6)


def test_a_failing_directional_check_names_the_coordinate():
    # w has 100·50 = 5,000 entries (above the re-check limit of 4,096): re-checked worst-first, named exactly
    report = gradcheck.check_layer(dense_wrong_at((37, 4), 1.01, n=50), (100,), key=jax.random.key(0),
                                   finite_diff="directions", batch_size=2)
    assert report.fd == "4 directions"
    w = next(r for r in report.rows if r.leaf == "w")
    assert w.note == "re-checked 4096 of 5000 entries"
    assert w.entry("manual_vs_autodiff").index == (37, 4) and w.entry("manual_vs_fd").index == (37, 4)
    with pytest.raises(AssertionError, match=r"worst at w\[37, 4\]: manual "):
        report.assert_close()


def test_conv_in_place_names_the_kernel_entry(x64):
    conv = Conv2D(3, 2)

    def backward(params, cache, dy):
        dp, dx = conv.backward(params, cache, dy)
        return {"w": dp["w"].at[1, 0, 1, 2].multiply(1.3), "b": dp["b"]}, dx

    model = jn.serial(Conv2D(2, 3), jn.Tanh, Layer(conv.init, conv.forward, backward, "ConvBug"), Flatten,
                      jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (6, 6, 1))
    x = jax.random.normal(jax.random.key(1), (2, 6, 6, 1))
    with pytest.raises(AssertionError) as err:
        gradcheck.check_model(model, LOSS, params, state, x, jnp.array([0, 1])).assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith("gradient mismatch in layer ConvBug (at 2 of the model, checked in place): its parameter "
                            "gradient 'w': "), first
    assert "worst at w[1, 0, 1, 2]: manual " in first, first
