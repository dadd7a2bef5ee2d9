"""The pure building blocks: make_step, make_epoch, make_eval/make_predict, TrainState under jit and vmap."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnets import apply, losses
from jaxnets.core import serial
from jaxnets.layers import Dense
from jaxnets.training import (TrainState, count_correct, make_epoch, make_eval, make_predict, make_step, stack,
                              unstack)
from test_training_common import blobs, counter_layer, hand_sgd, tiny_model, tiny_params, tiny_state

LOSS = losses.softmax_cross_entropy
MODEL = tiny_model()


@pytest.mark.parametrize("drop_last, expected_steps", [(False, 3), (True, 2)])
def test_epoch_equals_hand_loop_with_partial_batch(drop_last, expected_steps):
    x, y = blobs(10)
    ts = TrainState.create(tiny_params(), tiny_state(), optax.sgd(0.3))
    epoch = make_epoch(MODEL, LOSS, optax.sgd(0.3), batch_size=4, drop_last=drop_last, shuffle=False)
    ts, m = jax.jit(epoch)(ts, jnp.asarray(x), jnp.asarray(y), jax.random.key(0))
    batches = [np.arange(0, 4), np.arange(4, 8), np.arange(8, 10)][:expected_steps]
    want = hand_sgd(MODEL, LOSS, tiny_params(), x, y, 0.3, batches)
    chex.assert_trees_all_close(ts.params, want, rtol=1e-5, atol=1e-6)
    assert int(ts.step) == expected_steps
    assert int(m["count"]) == (8 if drop_last else 10)
    assert bool(m["finite"]) and int(m["first_bad_step"]) == -1


TX_M = optax.sgd(0.1, momentum=0.9)
PEN = losses.l2(0.1, 20)
EPOCHS = {source: make_epoch(MODEL, LOSS, TX_M, batch_size=5, gradients=source, penalty=PEN)
          for source in ("manual", "autodiff")}
JITTED = {source: jax.jit(fn) for source, fn in EPOCHS.items()}


def test_manual_and_autodiff_agree_float32():
    x, y = blobs(20)  # 4 batches of 5 (the remainder path is covered above)
    out = {}
    for source in ("manual", "autodiff"):
        ts = TrainState.create(tiny_params(), tiny_state(), TX_M)
        out[source], _ = JITTED[source](ts, jnp.asarray(x), jnp.asarray(y), jax.random.key(1))
    chex.assert_trees_all_close(out["manual"].params, out["autodiff"].params, rtol=1e-5, atol=1e-6)


def test_manual_and_autodiff_agree_float64(x64):
    x, y = blobs(20, dtype=np.float64)
    out = {}
    for source in ("manual", "autodiff"):
        ts = TrainState.create(tiny_params(dtype=np.float64), tiny_state(), optax.sgd(0.2, momentum=0.9))
        epoch = make_epoch(MODEL, LOSS, optax.sgd(0.2, momentum=0.9), batch_size=5, gradients=source,
                           penalty=losses.l1(0.05, 20))
        out[source], _ = jax.jit(epoch)(ts, jnp.asarray(x), jnp.asarray(y), jax.random.key(1))
    assert jax.tree_util.tree_leaves(out["manual"].params)[0].dtype == jnp.float64
    chex.assert_trees_all_close(out["manual"].params, out["autodiff"].params, rtol=1e-10, atol=1e-12)


def test_vmap_over_stacked_states_trains_an_ensemble():
    x, y = jnp.asarray(blobs(20)[0]), jnp.asarray(blobs(20)[1])
    members = [TrainState.create(tiny_params(seed=s), tiny_state(), TX_M) for s in range(3)]
    keys = jax.random.split(jax.random.key(7), 3)
    stacked, metrics = jax.jit(jax.vmap(EPOCHS["manual"], in_axes=(0, None, None, 0)))(stack(members), x, y, keys)
    assert metrics["loss"].shape == (3,)
    for got, ts, k in zip(unstack(stacked), members, keys):
        want, _ = JITTED["manual"](ts, x, y, k)
        chex.assert_trees_all_close(got.params, want.params, rtol=1e-5, atol=1e-6)


def test_vmap_over_traced_learning_rate():
    x, y = blobs(10)
    ts = TrainState.create(tiny_params(), tiny_state(), optax.sgd(0.1))

    def train(lr):
        tx = optax.sgd(lr)  # built from a traced hyper-parameter
        state = TrainState(ts.params, ts.state, tx.init(ts.params), ts.step)
        epoch = make_epoch(MODEL, LOSS, tx, batch_size=4, shuffle=False)
        return epoch(state, jnp.asarray(x), jnp.asarray(y), jax.random.key(0))[0]

    out = jax.jit(jax.vmap(train))(jnp.array([0.0, 0.3]))
    chex.assert_trees_all_equal(jax.tree_util.tree_map(lambda a: a[0], out.params),
                                jax.tree_util.tree_map(jnp.asarray, ts.params))
    want = hand_sgd(MODEL, LOSS, tiny_params(), x, y, 0.3, [np.arange(0, 4), np.arange(4, 8), np.arange(8, 10)])
    chex.assert_trees_all_close(jax.tree_util.tree_map(lambda a: a[1], out.params), want, rtol=1e-5, atol=1e-6)


def test_stateful_layer_state_is_threaded_keys_differ_and_augment_applies():
    # augment zeroes the inputs, so ∂C/∂W = xᵀδ = 0: the dense weights must not move while the bias does
    model = serial(counter_layer(), Dense(3))
    _, params, state = model.init(jax.random.key(0), (4,))
    x, y = blobs(10)
    tx = optax.sgd(0.5)
    epoch = jax.jit(make_epoch(model, LOSS, tx, batch_size=4, augment=lambda key, xb: xb * 0.0))
    ts0 = TrainState.create(params, state, tx)
    ts, _ = epoch(ts0, jnp.asarray(x), jnp.asarray(y), jax.random.key(1))
    assert int(ts.state[0]["calls"]) == 3  # 4 + 4 + 2
    np.testing.assert_array_equal(ts.params[1]["w"], ts0.params[1]["w"])
    assert not np.allclose(ts.params[1]["b"], ts0.params[1]["b"])
    first_draw = float(ts.state[0]["draw"])
    ts, _ = epoch(ts, jnp.asarray(x), jnp.asarray(y), jax.random.key(2))
    assert int(ts.state[0]["calls"]) == 6
    assert 0.0 <= first_draw < 1.0 and float(ts.state[0]["draw"]) != first_draw
    _, new_state = apply(model, ts.params, ts.state, jnp.asarray(x))  # evaluation mode leaves the count alone
    assert int(new_state[0]["calls"]) == 6


def test_step_skips_non_finite_update():
    ts = TrainState.create(tiny_params(), tiny_state(), optax.adam(0.1))
    step = jax.jit(make_step(MODEL, LOSS, optax.adam(0.1)))
    x, y = blobs(4)
    bad_x = jnp.asarray(x).at[0, 0].set(jnp.inf)
    new, m = step(ts, bad_x, jnp.asarray(y), jax.random.key(0))
    assert not bool(m["finite"])
    chex.assert_trees_all_equal(new, ts)
    good, m = step(ts, jnp.asarray(x), jnp.asarray(y), jax.random.key(0))
    assert bool(m["finite"]) and int(good.step) == 1
    assert 0 <= int(m["correct"]) <= 4


def test_eval_and_predict_in_chunks_match_whole_batch():
    x, y = blobs(10)
    params = jax.tree_util.tree_map(jnp.asarray, tiny_params())
    out, _ = apply(MODEL, params, tiny_state(), jnp.asarray(x))
    want_loss = float(LOSS.value(out, jnp.asarray(y)))
    want_correct = int(np.sum(np.argmax(np.asarray(out), axis=1) == y))
    for chunk in (None, 3):
        m = jax.jit(make_eval(MODEL, LOSS, batch_size=chunk))(params, tiny_state(), x, y)
        assert int(m["correct"]) == want_correct
        np.testing.assert_allclose(float(m["loss"]), want_loss, rtol=1e-6)
        np.testing.assert_allclose(float(m["accuracy"]), want_correct / 10)
        pred = jax.jit(make_predict(MODEL, batch_size=chunk))(params, tiny_state(), x)
        np.testing.assert_allclose(pred, out, rtol=1e-6, atol=1e-7)


def test_count_correct_and_task_detection():
    from jaxnets.training.validate import is_classification

    out = jnp.array([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0], [1.0, 4.0, 0.0]])
    labels = jnp.array([0, 2, 0])
    assert int(count_correct(out, labels, LOSS)) == 2
    assert int(count_correct(out, jax.nn.one_hot(labels, 3), LOSS)) == 2
    logits = jnp.array([[-1.0], [0.3], [2.0]])  # one output unit: threshold 0 for a loss on logits, 0.5 otherwise
    assert int(count_correct(logits, jnp.array([0, 1, 1]), losses.sigmoid_cross_entropy)) == 3
    assert int(count_correct(logits, jnp.array([[0.0], [1.0], [1.0]]), losses.quadratic)) == 2
    assert is_classification(np.array([0, 2, 1]), (3,))
    assert is_classification(np.eye(3, dtype=np.float32), (3,))
    assert not is_classification(np.array([[0.3], [1.2]], np.float32), (1,))  # regression (e.g. sine)
