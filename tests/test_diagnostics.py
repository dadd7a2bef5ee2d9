"""Gradient diagnostics: the vanishing gradient in a deep sigmoid net, norms recorded inside the compiled epoch,
dead ReLUs, per-example gradients."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import gradients, losses, optim
from jaxnets.core import Ctx, serial
from jaxnets.diagnostics import (dead_relu_fraction, gradient_norms, layer_names, learning_speed,
                                 per_example_grads, record_gradient_norms)
from jaxnets.initializers import normal
from jaxnets.layers import BatchNorm, Dense, Relu, Sigmoid, elementwise
from jaxnets.training import TrainState, make_epoch

DS = jn.data.load("digits")


def _mlp_params(sizes, seed):
    """Params of `mlp(sizes)` / serial(Dense, act, ..., Dense) drawn with numpy (N(0, 1/n_in) weights, zero
    biases): the tests need some params, and numpy avoids compiling an initialiser."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params += [{"w": jnp.asarray(rng.normal(size=(n_in, n_out)) / np.sqrt(n_in), jnp.float32),
                    "b": jnp.zeros(n_out, jnp.float32)}, ()]
    params = tuple(params[:-1])
    return params, tuple(() for _ in params)


def _grad(source, model, loss, penalty=None):
    fn = gradients.get(source)(model, loss, penalty)
    return jax.jit(lambda p, s, xb, yb: fn(p, s, xb, yb, Ctx(False, None))[1])


def _deep_sigmoid():
    """[64, 30, 30, 30, 30, 10] sigmoid with the textbook's N(0, 1) weights and biases (drawn with numpy here:
    the same distribution as Dense(n, w_init=normal(1.0), b_init=normal(1.0)), without compiling an init)."""
    sizes = [64, 30, 30, 30, 30, 10]
    model = serial(*[layer for n in sizes[1:-1] for layer in (Dense(n, w_init=normal(1.0)), Sigmoid)], Dense(10))
    rng = np.random.default_rng(0)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        params += [{"w": jnp.asarray(rng.normal(size=(n_in, n_out)), jnp.float32),
                    "b": jnp.asarray(rng.normal(size=n_out), jnp.float32)}, ()]
    params = tuple(params[:-1])
    return model, params, tuple(() for _ in params)


def test_earlier_layers_learn_slower_in_a_deep_sigmoid_net():
    """The textbook's observation (chapter 5): the first hidden layer learns slowest, ‖δ¹‖ < ‖δ⁴‖, both at
    initialisation (full-batch gradient over 1,000 images) and averaged over the first epoch's steps."""
    model, params, state = _deep_sigmoid()
    x, y = DS.x_train[:1000], DS.y_train[:1000]
    speed = learning_speed(model, losses.sigmoid_cross_entropy, optim.sgd(0.1), (x, y), epochs=1, batch_size=50,
                           key=jax.random.key(0), params=params, state=state)
    wide = "Dense(30, w_init=normal(std=1))"   # names show every non-default argument
    assert speed.layers == [f"0: {wide}", f"2: {wide}", f"4: {wide}", f"6: {wide}", "8: Dense(10)"]
    assert speed.delta.shape == (2, 5)
    for row in speed.delta:  # row 0: at init; row 1: mean over epoch 1
        hidden = row[:4]
        assert hidden[0] < hidden[3], row
        assert np.argmin(hidden) == 0, row
    assert np.all(speed.weight > 0) and np.isfinite(speed.train_loss).all()


def test_recorded_norms_equal_autodiff_norms_and_training_is_unchanged():
    """With one full batch per epoch the recorded ‖∂C/∂bˡ‖, ‖∂C/∂Wˡ‖ are those of jax.grad at the
    start params; the recording optimizer updates params exactly as the optimizer it wraps."""
    model = jn.models.mlp([64, 12, 10])
    x, y = jnp.asarray(DS.x_train[:64]), jnp.asarray(DS.y_train[:64])
    loss, opt, pen = losses.softmax_cross_entropy, optim.sgd(0.5, momentum=0.9), losses.l2(0.1, 64)
    params, state = _mlp_params([64, 12, 10], 1)
    recorded = record_gradient_norms(model, opt)
    diag = jax.jit(make_epoch(model, loss, recorded, batch_size=64, penalty=pen))
    plain = jax.jit(make_epoch(model, loss, opt, batch_size=64, penalty=pen))
    key = jax.random.key(2)
    ts_d, _ = diag(TrainState.create(params, state, recorded), x, y, key)
    ts_p, _ = plain(TrainState.create(params, state, opt), x, y, key)
    chex.assert_trees_all_equal(ts_d.params, ts_p.params)
    chex.assert_trees_all_equal_structs(ts_d.opt_state.inner, ts_p.opt_state)
    g = _grad("autodiff", model, loss, pen)(params, state, x, y)
    rec = ts_d.opt_state
    assert int(rec.count) == 1
    np.testing.assert_allclose(np.asarray(rec.delta_sum), [np.linalg.norm(g[0]["b"]), np.linalg.norm(g[2]["b"])],
                               rtol=1e-5)
    np.testing.assert_allclose(np.asarray(rec.weight_sum), [np.linalg.norm(g[0]["w"]), np.linalg.norm(g[2]["w"])],
                               rtol=1e-5)
    full = gradient_norms(model, loss, params, state, x, y, penalty=pen)
    np.testing.assert_allclose(full["delta"], np.asarray(rec.delta_sum), rtol=1e-5)
    assert full["layers"] == layer_names(model) == ["0: Dense(12)", "2: Dense(10)"]


def test_learning_speed_runs_through_fit_and_reports_batch_norm_shifts():
    """learning_speed trains with fit itself (same params as fit), and measures every layer that declares a bias:
    a bias-free Dense reports NaN for ‖δ‖, BatchNorm its ‖∂C/∂β‖."""
    model = serial(Dense(12, use_bias=False), BatchNorm(), Sigmoid, Dense(10))
    x, y = DS.x_train[:200], DS.y_train[:200]
    args = dict(epochs=2, batch_size=50, key=jax.random.key(0))
    speed = learning_speed(model, losses.softmax_cross_entropy, optim.sgd(0.1), (x, y), **args)
    alone = jn.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), (x, y), progress=False, **args)
    chex.assert_trees_all_close(speed.params, alone.params, rtol=1e-6)
    assert speed.layers == ["0: Dense(12, use_bias=False)", "1: BatchNorm(0.9)", "3: Dense(10)"]
    assert np.isnan(speed.delta[:, 0]).all() and (speed.delta[:, 1:] > 0).all()
    assert speed.delta.shape == (3, 3) and speed.weight[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_a_users_layer_named_relu_does_not_change_the_diagnostics():
    # A custom activation that happens to be called "Relu" (a softplus, with its own derivative) declares no
    # firing rule: it is not counted as a ReLU. The built-in Relu is, and so is any layer declaring `fires`.
    impostor = elementwise("Relu", lambda z: jnp.logaddexp(0, z), jax.nn.sigmoid)
    own_relu = elementwise("MyRectifier", lambda z: jnp.maximum(z, 0), lambda z: (z > 0).astype(z.dtype),
                           meta=jn.Meta(fires=lambda z: z > 0))
    params, state = _mlp_params([5, 3, 2], 0)
    x = np.random.default_rng(0).random((20, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="no layer declares when its units fire"):
        dead_relu_fraction(serial(Dense(3), impostor, Dense(2)), params, state, x)
    real = dead_relu_fraction(serial(Dense(3), Relu, Dense(2)), params, state, x)
    mine = dead_relu_fraction(serial(Dense(3), own_relu, Dense(2)), params, state, x)
    assert [r["path"] for r in real["layers"]] == ["1"] and real["units"] == mine["units"] == 3
    assert real["dead"] == mine["dead"] and mine["layers"][0]["name"] == "MyRectifier"
    # and the gradient norms do not care about names either
    assert layer_names(serial(Dense(3), impostor, Dense(2))) == ["0: Dense(3)", "2: Dense(2)"]


def test_dead_relu_units_are_counted():
    model = serial(Dense(3), Relu, Dense(4), Relu, Dense(2))
    params, state = _mlp_params([5, 3, 4, 2], 0)
    params = list(params)
    w = np.asarray(params[0]["w"]).copy()
    w[:, 1] = -1.0  # unit 1 of the first layer: z = -Σx - 10 < 0 for x ≥ 0, dead
    params[0] = {"w": jnp.asarray(w), "b": jnp.array([5.0, -10.0, 5.0])}
    params[2] = {"w": params[2]["w"], "b": jnp.array([-1e3, -1e3, 100.0, 100.0])}  # two dead, two alive
    x = np.random.default_rng(0).random((50, 5), dtype=np.float32)
    out = dead_relu_fraction(model, tuple(params), state, x, batch_size=16)
    assert [(r["units"], r["dead"]) for r in out["layers"]] == [(3, 1), (4, 2)]
    assert out["fraction"] == pytest.approx(3 / 7)
    # cross-check against the activations themselves
    z1 = x @ np.asarray(params[0]["w"]) + np.asarray(params[0]["b"])
    assert (~(z1 > 0).any(axis=0)).sum() == 1
    with pytest.raises(ValueError, match="as Relu does"):
        dead_relu_fraction(serial(Dense(2), Sigmoid), ({"w": jnp.ones((5, 2)), "b": jnp.zeros(2)}, ()), ((), ()), x)


def test_per_example_grads_average_to_the_batch_gradient():
    model = jn.models.mlp([64, 8, 10])
    loss = losses.softmax_cross_entropy
    params, state = _mlp_params([64, 8, 10], 3)
    x, y = jnp.asarray(DS.x_train[:12]), jnp.asarray(DS.y_train[:12])
    per = per_example_grads(model, loss, params, state, x, y, batch_size=5)  # chunks of 5, 5, 2
    assert per[0]["w"].shape == (12, 64, 8)
    batch = _grad("manual", model, loss)(params, state, x, y)
    chex.assert_trees_all_close(jax.tree_util.tree_map(lambda a: a.mean(axis=0), per), batch, rtol=1e-5, atol=1e-7)
    one = _grad("autodiff", model, loss)
    for i in (0, 7):  # each row is that example's own gradient (autodiff, one example at a time)
        gi = one(params, state, x[i:i + 1], y[i:i + 1])
        chex.assert_trees_all_close(jax.tree_util.tree_map(lambda a: a[i], per), gi, rtol=1e-5, atol=1e-7)
