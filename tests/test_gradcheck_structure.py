"""Structure before numbers, and the checks' arguments: a backward (or custom_vjp rule) that returns the wrong tree,
shape, dtype or count fails with a first line naming the layer and what is wrong, before any value is compared;
and every argument is checked as elsewhere in jaxnets (the error names the argument, the value, the fix)."""
import jax
import jax.numpy as jnp
import pytest

import jaxnets as jn
from jaxnets import gradcheck, losses
from jaxnets.core import Layer


def dense_returning(change, name):
    """Dense(3) whose backward returns change(dparams, dx) instead of (dparams, dx)."""
    good = jn.Dense(3)

    def backward(params, cache, dy):
        return change(*good.backward(params, cache, dy))

    return Layer(good.init, good.forward, backward, name)


# name -> (what the backward returns, what the first line says; {x}: the float dtype of the check, {shape}: x's shape)
MUTANTS = {
    "dx None": (lambda dp, dx: (dp, None), "dx is None where x is an array of shape {shape}"),
    "three values": (lambda dp, dx: (dp, dx, dx), "backward returns a tuple of 3 values, not the pair (dparams, dx)"),
    "W for w": (lambda dp, dx: ({"W": dp["w"], "b": dp["b"]}, dx), "dparams names a leaf 'W' where params has 'w'"),
    "bias missing": (lambda dp, dx: ({"w": dp["w"]}, dx), "dparams is missing 'b' (params['b'] is an array of shape"),
    "extra leaf": (lambda dp, dx: ({**dp, "c": dp["b"]}, dx),
                   "dparams has an extra leaf 'c' that params does not have"),
    "dparams None": (lambda dp, dx: (None, dx), "dparams is None where params is a dict with keys ['b', 'w']"),
    "bias None": (lambda dp, dx: ({"w": dp["w"], "b": None}, dx), "dparams['b'] is None where params['b'] is an array"),
    "kernel transposed": (lambda dp, dx: ({"w": dp["w"].T, "b": dp["b"]}, dx),
                          "dparams['w'] has shape (3, 6) but params['w'] has shape (6, 3)"),
    "integer dx": (lambda dp, dx: (dp, dx.astype(jnp.int32)), "dx has integer dtype int32; a gradient is floating"),
    "float16 dx": (lambda dp, dx: (dp, dx.astype(jnp.float16)), "dx has dtype float16 but x is {x}"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_check_layer_reports_the_structure_first(name):
    change, problem = MUTANTS[name]
    layer = dense_returning(change, name)
    report = gradcheck.check_layer(layer, (6,), key=jax.random.key(0))
    assert not report.passed and report.rows == ()
    with pytest.raises(AssertionError) as err:
        report.assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith(f"wrong gradient structure from layer {name} (checked alone): "), first
    assert problem.format(x="float64", shape=(4, 6)) in first, first
    assert "STRUCTURE: " in str(report)


@pytest.mark.parametrize("name", ["dx None", "W for w", "three values", "float16 dx"])
def test_check_model_compare_and_model_problems_give_the_same_diagnosis(name):
    change, problem = MUTANTS[name]
    model = jn.serial(jn.Dense(6), dense_returning(change, name), jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (4,))
    x, y = jax.random.normal(jax.random.key(1), (5, 4)), jnp.arange(5) % 2
    expected = (f"wrong gradient structure from layer {name} (at 1 of the model, checked in place): "
                + problem.format(x="float32", shape=(5, 6)))
    for check in (gradcheck.check_model, gradcheck.compare):
        with pytest.raises(AssertionError) as err:
            check(model, losses.softmax_cross_entropy, params, state, x, y).assert_close()
        assert err.value.args[0].splitlines()[0].startswith(expected), err.value.args[0]
    # what fit runs: shapes only (nothing compiled), a ShapeDtypeStruct batch, its own position word
    batch = jax.ShapeDtypeStruct((32, 4), jnp.float32)
    found = gradcheck.model_problems(model, params, state, batch, jn.Ctx(True, jax.random.key(2)), where="in fit")
    assert len(found) == 1 and found[0].startswith(f"wrong gradient structure from layer {name} (at 1 of the model, "
                                                   "in fit): "), found


def test_sound_models_have_no_structure_problems():
    model = jn.serial(jn.layers.Conv2D(2, 3), jn.Relu, jn.layers.MaxPool(2), jn.layers.Flatten,
                      jn.layers.BatchNorm(), jn.layers.Dropout(0.2), jn.Dense(3), jn.Softmax)
    _, params, state = model.init(jax.random.key(0), (6, 6, 1))
    batch = jax.ShapeDtypeStruct((4, 6, 6, 1), jnp.float32)
    assert gradcheck.model_problems(model, params, state, batch, jn.Ctx(True, jax.random.key(1))) == []
    assert gradcheck.model_problems(model, params, state, batch, jn.Ctx(False)) == []


def test_a_backward_that_raises_is_named():
    good = jn.Dense(3)
    bad = Layer(good.init, good.forward, lambda p, cache, dy: (p, dy @ jnp.ones((7, 2))), "Raises")
    report = gradcheck.check_layer(bad, (6,), key=jax.random.key(0))
    assert report.problems[0].startswith("wrong gradient structure from layer Raises (checked alone): backward raised "
                                         "TypeError"), report.problems


def test_a_wrong_loss_gradient_shape_is_named():
    wrong = losses.Loss(losses.quadratic.value, lambda a, y: jnp.sum(a - y, axis=0), "summed quadratic")
    model = jn.serial(jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (4,))
    x, y = jnp.ones((5, 4)), jnp.zeros((5, 3))
    report = gradcheck.check_model(model, wrong, params, state, x, y)
    assert report.problems == ("wrong gradient structure from loss summed quadratic: grad(outputs, y) has shape (3,) "
                               "but outputs has shape (5, 3); grad(outputs, y) must be shaped like the outputs",)


# ------------------------------------------------------------------------------------------------ arguments
@pytest.fixture(scope="module")
def small():
    model = jn.serial(jn.Dense(3), jn.Tanh, jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (4,))
    return model, params, state, jax.random.normal(jax.random.key(1), (5, 4)), jnp.arange(5) % 2


@pytest.mark.parametrize("step", [0, -1e-5, float("nan"), float("inf"), True, "1e-5"])
def test_step_must_be_positive_and_finite(small, step):
    model, params, state, x, y = small
    with pytest.raises(ValueError, match=r"step must be a finite number > 0 .* got"):
        gradcheck.check_layer(jn.Dense(3), (4,), key=jax.random.key(0), step=step)
    with pytest.raises(ValueError, match=r"check_model: step must be a finite number > 0"):
        gradcheck.check_model(model, losses.softmax_cross_entropy, params, state, x, y, step=step)


@pytest.mark.parametrize("directions", [0, -1, 2.5, True, None])
def test_directions_must_be_a_positive_int(small, directions):
    model, params, state, x, y = small
    with pytest.raises(ValueError, match=r"compare: directions must be an int >= 1 .* got"):
        gradcheck.compare(model, losses.softmax_cross_entropy, params, state, x, y, finite_diff="directions",
                          directions=directions)
    with pytest.raises(ValueError, match="directions must be an int >= 1"):
        gradcheck.check_layer(jn.Dense(3), (4,), key=jax.random.key(0), directions=directions)


def test_ctx_loss_penalty_compute_dtype_and_tolerances_are_checked(small):
    model, params, state, x, y = small
    with pytest.raises(TypeError, match=r"check_model: ctx must be a jaxnets.Ctx, e.g. Ctx\(train=True.*got bool True"):
        gradcheck.check_model(model, losses.softmax_cross_entropy, params, state, x, y, True)
    with pytest.raises(ValueError, match="unknown loss 'softmax'"):
        gradcheck.check_model(model, "softmax", params, state, x, y)
    with pytest.raises(TypeError, match="loss must be a jaxnets Loss"):
        gradcheck.compare(model, len, params, state, x, y)
    with pytest.raises(ValueError, match=r"a penalty by name reads 'l2\(lmbda, n\)'"):
        gradcheck.check_model(model, "quadratic", params, state, x, jnp.zeros((5, 2)), penalty="l2")
    with pytest.raises(TypeError, match="penalty must be None, a jaxnets Penalty"):
        gradcheck.compare(model, "quadratic", params, state, x, jnp.zeros((5, 2)), penalty=0.1)
    for bad in (jnp.int32, "int8", bool):
        with pytest.raises(ValueError, match="compare: compute_dtype must be a floating dtype"):
            gradcheck.compare(model, losses.softmax_cross_entropy, params, state, x, y, compute_dtype=bad)
    with pytest.raises(TypeError, match="key must be one JAX PRNG key"):
        gradcheck.compare(model, losses.softmax_cross_entropy, params, state, x, y, key=0)
    report = gradcheck.Report((), "float32", None)
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match=r"assert_close\(atol\): a tolerance must be a number >= 0 and finite"):
            report.assert_close(atol=bad)


def test_loss_and_penalty_by_name_give_the_same_report(small):
    model, params, state, x, _ = small
    y = jax.random.normal(jax.random.key(2), (5, 2))
    by_object = gradcheck.check_model(model, losses.quadratic, params, state, x, y, penalty=losses.l2(0.1, 100),
                                      finite_diff=False)
    by_name = gradcheck.check_model(model, "quadratic", params, state, x, y, penalty="l2(0.1, 100)",
                                    finite_diff=False)
    assert [(r.check, r.layer, r.path, r.manual_vs_autodiff) for r in by_name.rows] == \
        [(r.check, r.layer, r.path, r.manual_vs_autodiff) for r in by_object.rows]
    assert {r.layer for r in by_name.rows if r.check == "penalty"} == {"l2(0.1, 100)"}
    by_name.assert_close()
