"""The Layer protocol, serial composition, apply, and the errors a user sees for bad input."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn


def recording_layer(name, log):
    """A stateless identity layer that records the order of its forward and backward calls."""

    def init(key, shape):
        return shape, (), ()

    def forward(params, state, x, ctx):
        log.append(("fwd", name))
        return x, state, None

    def backward(params, cache, dy):
        log.append(("bwd", name))
        return (), dy

    return jn.Layer(init, forward, backward, name)


def test_serial_runs_backward_in_reverse_and_nests():
    log = []
    a, b, c = (recording_layer(n, log) for n in "abc")
    model = jn.serial(a, jn.serial(b, c))
    out_shape, params, state = model.init(jax.random.key(0), (3,))
    assert out_shape == (3,) and params == ((), ((), ())) and state == ((), ((), ()))
    y, new_state, cache = model.forward(params, state, jnp.ones((2, 3)), jn.Ctx())
    model.backward(params, cache, jnp.ones((2, 3)))
    assert log == [("fwd", "a"), ("fwd", "b"), ("fwd", "c"), ("bwd", "c"), ("bwd", "b"), ("bwd", "a")]


def test_dense_shapes_and_param_names():
    model = jn.serial(jn.Dense(5), jn.Sigmoid, jn.Dense(2))
    out_shape, params, state = model.init(jax.random.key(0), (3,))
    assert out_shape == (2,)
    chex.assert_shape(params[0]["w"], (3, 5))
    chex.assert_shape(params[0]["b"], (5,))
    chex.assert_shape(params[2]["w"], (5, 2))
    assert state == ((), (), ())
    y, new_state = jn.apply(model, params, state, jnp.ones((4, 3)))
    chex.assert_shape(y, (4, 2))
    np.testing.assert_array_equal(params[0]["b"], 0.0)  # zero biases


def test_dense_forward_is_the_affine_map():
    model = jn.Dense(2)
    _, params, state = model.init(jax.random.key(0), (3,))
    x = jnp.arange(6.0).reshape(2, 3)
    y, _ = jn.apply(model, params, state, x)
    np.testing.assert_allclose(y, np.asarray(x) @ np.asarray(params["w"]) + np.asarray(params["b"]), rtol=1e-6)


def test_dense_draws_weights_and_biases_from_independent_keys():
    # Both N(0, 1): with a shared key the biases would equal the first row of the weights.
    layer = jn.Dense(5, w_init=jn.initializers.normal(1.0), b_init=jn.initializers.normal(1.0))
    _, params, _ = layer.init(jax.random.key(0), (3,))
    assert not np.allclose(params["b"], params["w"][0])
    assert np.std(np.asarray(params["b"])) > 0.1


def test_dense_without_bias(x64):
    layer = jn.Dense(4, use_bias=False)
    _, params, _ = layer.init(jax.random.key(0), (3,))
    assert set(params) == {"w"} and layer.name == "Dense(4, use_bias=False)"
    x = jax.random.normal(jax.random.key(1), (2, 3))
    y, _ = jn.apply(layer, params, (), x)
    np.testing.assert_allclose(y, np.asarray(x) @ np.asarray(params["w"]), rtol=1e-12)
    jn.gradcheck.check_layer(layer, (3,), key=jax.random.key(2)).assert_close()
    assert layer.meta.bias is None and layer.meta.weights == ("w",)
    with pytest.raises(TypeError, match="use_bias"):
        jn.Dense(4, use_bias="no")


def test_ctx_children_get_independent_keys():
    ctx = jn.Ctx(train=True, key=jax.random.key(1))
    k0, k1 = ctx.child(0).key, ctx.child(1).key
    assert not np.array_equal(jax.random.key_data(k0), jax.random.key_data(k1))
    assert jn.Ctx().child(3).key is None


def test_input_shape_mismatch_names_layer_and_fix():
    model = jn.serial(jn.Dense(4), jn.Sigmoid)
    _, params, state = model.init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match=r"Dense\(4\): input has shape \(2, 5\).*expects \(batch, 3\)"):
        jn.apply(model, params, state, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="Flatten"):
        jn.Dense(3).init(jax.random.key(0), (4, 4))


def test_constructor_errors_are_clear():
    with pytest.raises(ValueError, match="positive int"):
        jn.Dense(0)
    with pytest.raises(TypeError, match="without calling it"):
        jn.serial(jn.Dense)
    with pytest.raises(ValueError, match="at least one layer"):
        jn.serial()
    with pytest.raises(ValueError, match="input_shape"):
        jn.init(jn.Dense(3), jax.random.key(0), (0,))


def test_params_of_another_model_are_rejected():
    model = jn.serial(jn.Dense(4), jn.Sigmoid, jn.Dense(2))
    other = jn.serial(jn.Dense(4), jn.Dense(2))
    _, params, state = other.init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match="one entry per layer"):
        jn.apply(model, params, state, jnp.ones((1, 3)))


def test_models_work_under_jit_and_vmap():
    model = jn.serial(jn.Dense(4), jn.Tanh, jn.Dense(2), jn.Softmax)
    _, params, state = model.init(jax.random.key(0), (3,))
    x = jax.random.normal(jax.random.key(1), (5, 3))
    eager, _ = jn.apply(model, params, state, x)
    jitted, _ = jax.jit(lambda p, x: jn.apply(model, p, state, x))(params, x)
    per_row = jax.vmap(lambda xi: jn.apply(model, params, state, xi[None])[0][0])(x)
    chex.assert_trees_all_close(eager, jitted, rtol=1e-6)
    chex.assert_trees_all_close(eager, per_row, rtol=1e-6)
    np.testing.assert_allclose(jnp.sum(eager, axis=1), 1.0, rtol=1e-6)


def test_ctx_crosses_jit_with_a_static_train_flag():
    # layers branch on ctx.train in Python, so it must stay a Python bool inside jitted functions
    model = jn.serial(jn.Dense(6), jn.Dropout(0.5), jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (3,))
    x = jnp.ones((4, 3))
    run = jax.jit(lambda p, c: model.forward(p, state, x, c)[0])
    train_out = run(params, jn.Ctx(True, jax.random.key(1)))
    eval_out = run(params, jn.Ctx(False, jax.random.key(1)))
    np.testing.assert_allclose(eval_out, jn.apply(model, params, state, x)[0], rtol=1e-6)
    assert not np.allclose(train_out, eval_out)
    assert jax.tree_util.tree_leaves(jn.Ctx(True)) == []
