"""layers.from_function: a layer from plain JAX code, its backward jax.vjp of its forward, marked as such by
summary and the checker, and refused where a hand-written backward is what is tested."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets
from jaxnets import gradcheck, losses, serial
from jaxnets.core import Ctx, Meta
from jaxnets.layers import Dense, Relu, from_function
from jaxnets.testing import assert_layer_gradients, assert_model_gradients


def _affine(p, x):
    return x @ p["w"] + p["b"]


def _affine_init(key, shape):
    return {"w": 0.5 * jax.random.normal(key, (shape[0], 3)), "b": jnp.zeros(3)}


def test_stateless_and_parametrised_layers(x64):
    swish = from_function(lambda x: x * jax.nn.sigmoid(x), name="swish")
    affine = from_function(_affine, init=_affine_init)
    assert swish.meta.autodiff_backward and affine.meta.autodiff_backward
    assert swish.name == "swish" and affine.name == "from_function(_affine)"
    assert swish() is swish   # the call style of every layer
    out, params, state = affine.init(jax.random.key(0), (4,))
    assert out == (3,) and set(params) == {"w", "b"} and state == ()
    assert swish.init(jax.random.key(0), (2, 5)) == ((2, 5), (), ())
    x = jax.random.normal(jax.random.key(1), (6, 4))
    y, _, cache = affine.forward(params, state, x, Ctx())
    np.testing.assert_allclose(y, x @ params["w"] + params["b"], rtol=1e-14)
    dy = jax.random.normal(jax.random.key(2), y.shape)
    dparams, dx = affine.backward(params, cache, dy)
    np.testing.assert_allclose(dparams["w"], x.T @ dy, rtol=1e-13)
    np.testing.assert_allclose(dparams["b"], dy.sum(0), rtol=1e-13)
    np.testing.assert_allclose(dx, dy @ params["w"].T, rtol=1e-13)


def test_meta_and_context_reach_the_function(x64):
    def drop_half(x, ctx):
        if not ctx.train or ctx.key is None:
            return x
        return jnp.where(jax.random.bernoulli(ctx.key, 0.5, x.shape), 2 * x, 0.0)

    layer = from_function(drop_half, uses_ctx=True, meta=Meta(outputs="probabilities"))
    assert layer.meta == Meta(outputs="probabilities", autodiff_backward=True)
    x = jnp.ones((3, 8))
    assert jnp.all(layer.forward((), (), x, Ctx(False, None))[0] == x)
    y, _, cache = layer.forward((), (), x, Ctx(True, jax.random.key(0)))
    _, dx = layer.backward((), cache, jnp.ones_like(y))
    np.testing.assert_array_equal(dx, jnp.where(y > 0, 2.0, 0.0))   # the backward reuses the forward's mask


def test_arguments_are_checked():
    with pytest.raises(TypeError, match=r"from_function\(fn\): a function of the batch.*got the layer Dense\(3\)"):
        from_function(Dense(3))
    with pytest.raises(TypeError, match=r"from_function\(init\)"):
        from_function(_affine, init=3)
    with pytest.raises(TypeError, match=r"from_function\(uses_ctx\)"):
        from_function(jnp.tanh, uses_ctx=1)
    with pytest.raises(TypeError, match=r"from_function\(meta\)"):
        from_function(jnp.tanh, meta={})


def test_summary_marks_autodiff_layers():
    model = serial(Dense(5), from_function(jnp.tanh), Dense(2))
    table = jaxnets.summary(model, (4,))
    assert [r.autodiff_backward for r in table.rows] == [False, False, True, False]
    text = str(table)
    assert text.splitlines()[0].rstrip().endswith("backward")
    assert "from_function(tanh)" in text and "autodiff backward: 1 layer whose backward is jax.vjp" in text
    plain = str(jaxnets.summary(serial(Dense(5), Relu()), (4,)))
    assert "backward" not in plain and "autodiff" not in plain


def test_check_model_marks_rows_and_catches_a_wrong_neighbour(x64):
    model = serial(Dense(5), from_function(lambda x: x * jax.nn.sigmoid(x), name="swish"),
                   from_function(_affine, init=_affine_init))
    _, params, state = model.init(jax.random.key(0), (4,))
    x, y = jax.random.normal(jax.random.key(1), (6, 4)), jnp.array([0, 1, 2, 0, 1, 2])
    report = assert_model_gradients(model, losses.softmax_cross_entropy, params, state, x, y)
    marked = [r for r in report.rows if r.note.startswith("autodiff backward")]
    assert {r.layer for r in marked} == {"swish", "from_function(_affine)"}
    assert all(r.check == "in place" for r in marked)
    assert any("autodiff backward (jax.vjp of the forward, not hand-written): swish at 1" in n for n in report.notes)
    # a hand-written layer next to it is still blamed when its backward is wrong
    bad_dense = Dense(5)._replace(backward=lambda p, a, d: ({"w": 2 * a.T @ d, "b": d.sum(0)}, d @ p["w"].T),
                                  name="BadDense")
    bad = serial(bad_dense, *model.children[1:])
    with pytest.raises(AssertionError, match="gradient mismatch in layer BadDense"):
        assert_model_gradients(bad, losses.softmax_cross_entropy, params, state, x, y)


def test_check_model_labels_an_autodiff_loss(x64):
    model = serial(Dense(3))
    _, params, state = model.init(jax.random.key(0), (4,))
    x, y = jax.random.normal(jax.random.key(1), (5, 4)), jax.random.normal(jax.random.key(2), (5, 3))
    loss = losses.from_function(lambda a, t: jnp.mean(jnp.abs(a - t) ** 3), name="cubic")
    report = gradcheck.check_model(model, loss, params, state, x, y)
    assert report.passed
    (row,) = [r for r in report.rows if r.check == "loss"]
    assert row.note == "autodiff grad: man=auto by construction"
    assert any(n.startswith("loss cubic: gradient by autodiff") for n in report.notes)
    assert "(autodiff grad: man=auto by construction)" in str(report)


def test_check_layer_refuses_an_autodiff_backward_unless_allowed(x64):
    layer = from_function(_affine, init=_affine_init)
    with pytest.raises(ValueError, match=r"check_layer\(from_function\(_affine\)\): this layer's backward is "
                                         r"jax.vjp of its forward.*allow_autodiff=True"):
        gradcheck.check_layer(layer, (4,), key=jax.random.key(0))
    with pytest.raises(ValueError, match="allow_autodiff=True"):
        assert_layer_gradients(layer, (4,))
    reports = assert_layer_gradients(layer, (4,), allow_autodiff=True)
    assert all(r.note.startswith("autodiff backward") for rep in reports for r in rep.rows)
    with pytest.raises(TypeError, match="allow_autodiff must be True or False"):
        gradcheck.check_layer(layer, (4,), key=jax.random.key(0), allow_autodiff="yes")
    # a hand-written layer is checked as before, with no such note
    (plain,) = assert_layer_gradients(Dense(3), (4,), train=True)
    assert not any(r.note for r in plain.rows) and not any("autodiff" in n for n in plain.notes)


def test_finite_differences_still_catch_a_wrong_rule_inside(x64):
    # autodiff of the forward is only as right as the derivative rules it uses: a wrong custom_vjp inside fails
    # the finite-difference columns even though manual~autodiff is 0
    @jax.custom_vjp
    def cube(x):
        return x ** 3

    cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (2 * x * x * g,))   # should be 3x²
    report = gradcheck.check_layer(from_function(cube), (3,), key=jax.random.key(0), allow_autodiff=True)
    assert report.worst("manual_vs_autodiff") == 0.0 and not report.passed


def test_jit_and_fit_train_a_model_with_a_function_layer():
    model = serial(Dense(16), from_function(lambda x: x * jax.nn.sigmoid(x), name="swish"), Dense(3))
    x = jax.random.normal(jax.random.key(0), (96, 4))
    y = jnp.argmax(x[:, :3] + 0.1 * x[:, 3:], axis=1)
    _, params, state = jaxnets.init(model, jax.random.key(1), (4,))
    out, _ = jax.jit(jaxnets.apply)(model, params, state, x)
    assert out.shape == (96, 3)
    result = jaxnets.fit(model, losses.softmax_cross_entropy, jaxnets.optim.adam(1e-2), (x, y), epochs=6,
                         batch_size=32, key=jax.random.key(2), progress=False)
    assert result.history["train_loss"][-1] < result.history["train_loss"][0]
