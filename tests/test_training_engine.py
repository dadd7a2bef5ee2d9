"""The one training engine: the scan and step drivers give the same params, streamed batches train like arrays,
`loop="auto"`, optax value-aware optimizers, callbacks that keep the train state, progress within epochs,
and the divergence guard on the update itself."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets import losses, optim
from jaxnets.core import serial
from jaxnets.data import augment
from jaxnets.layers import BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool, Relu, Sigmoid, Tanh
from jaxnets.training import TrainingDivergedError, fit, loops, progress
from test_training_common import blobs, leaves_equal, tiny_model, tiny_params, tiny_state

LOSS = losses.softmax_cross_entropy
KEY = jax.random.key(0)
TRAIN, VAL = blobs(41), blobs(20, seed=1)


def _fit(model=None, train=TRAIN, **kw):
    args = dict(epochs=3, batch_size=8, key=KEY, progress=False)
    args.update(kw)
    return fit(model or tiny_model(), LOSS, args.pop("optimizer", optim.sgd(0.3, momentum=0.9)), train, **args)


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, n).astype(np.int32)


CNN = serial(Conv2D(3, 3), Relu, MaxPool(2), Flatten, Dropout(0.2), Dense(3))
MLP = serial(Dense(8), BatchNorm(), Sigmoid, Dropout(0.3), Dense(3))


@pytest.mark.parametrize("name", ["mlp with batch norm and dropout", "cnn with augmentation"])
def test_scan_and_step_drivers_give_bit_identical_params_in_float64(x64, name):
    if name.startswith("mlp"):
        model, data, extra = MLP, blobs(37, dtype=np.float64), {}
    else:
        x, y = _images(29)
        model, data, extra = CNN, (x.astype(np.float64), y), {"augment": augment.random_shift(1)}
    runs = {loop: _fit(model, data, loop=loop, val_data=data, **extra) for loop in ("scan", "step")}
    assert jax.tree_util.tree_leaves(runs["scan"].params)[0].dtype == jnp.float64
    assert leaves_equal(runs["scan"].train_state, runs["step"].train_state)   # params, layer state, optimizer state
    for a, b in zip(runs["scan"].history, runs["step"].history):   # reported metrics: float32 sums, to rounding
        for col in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert a[col] == pytest.approx(b[col], rel=1e-6)


def test_tanh_nets_agree_to_rounding(x64):
    # XLA:CPU evaluates tanh with a vectorised approximation whose result for one input can depend on how the
    # surrounding ops were fused (the vector loop or its scalar tail); a tanh net with dropout, fused differently
    # in the two drivers, then differs by an ulp here and there. Measured: 4.4e-16 after 3 epochs.
    model, data = serial(Dense(8), Tanh, Dropout(0.3), Dense(3)), blobs(37, dtype=np.float64)
    scan, step = (_fit(model, data, loop=loop) for loop in ("scan", "step"))
    for a, b in zip(jax.tree_util.tree_leaves(scan.train_state), jax.tree_util.tree_leaves(step.train_state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-15)


def test_auto_picks_the_step_driver_for_convolutions_on_the_cpu():
    _, params, state = CNN.init(KEY, (8, 8, 1))
    assert loops.resolve("auto", CNN, params, state, (8, 8, 1), backend="cpu") == "step"
    assert loops.resolve("auto", CNN, params, state, (8, 8, 1), backend="gpu") == "scan"
    _, params, state = MLP.init(KEY, (4,))
    assert loops.resolve("auto", MLP, params, state, (4,), backend="cpu") == "scan"
    assert "conv_general_dilated" in loops.primitives_of(CNN, *CNN.init(KEY, (8, 8, 1))[1:], (8, 8, 1))
    with pytest.raises(ValueError, match="loop='sideways'"):
        _fit(loop="sideways")


def _batches(x, y, size):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def test_streamed_batches_train_exactly_like_the_same_arrays():
    x, y = TRAIN
    arrays = _fit(train=(x, y), shuffle=False, loop="step", val_data=VAL)
    as_list = _fit(train=_batches(x, y, 8), batch_size=None, val_data=VAL)
    factory = _fit(train=lambda: iter(_batches(x, y, 8)), batch_size=None, val_data=VAL)

    def endless():
        while True:
            yield from _batches(x, y, 8)

    iterator = _fit(train=endless(), batch_size=None, steps_per_epoch=6, val_data=VAL)
    for other in (as_list, factory, iterator):
        assert leaves_equal(arrays.train_state, other.train_state)
        assert [r["val_loss"] for r in other.history] == arrays.history["val_loss"]
    scanned = _fit(train=(x, y), shuffle=False, loop="scan", val_data=VAL)   # the scan driver: same numbers too
    assert leaves_equal(arrays.params, scanned.params)


def test_long_streams_train_in_scanned_chunks_exactly_like_the_same_arrays(monkeypatch):
    from jaxnets.training.drivers import STREAM_CHUNK, StepDriver

    runs, original = [], StepDriver._stream

    def spy(self, carry, chunk, *args):
        runs.append(len(chunk.batches))
        return original(self, carry, chunk, *args)

    monkeypatch.setattr(StepDriver, "_stream", spy)

    x, y = blobs(5 * (2 * STREAM_CHUNK + 3) + 3, seed=2)   # two full chunks, 3 single batches, an odd last batch
    batches = _batches(x, y, 5)
    assert len(batches) > 2 * STREAM_CHUNK and len(batches[-1][0]) == 3
    arrays = _fit(train=(x, y), batch_size=5, shuffle=False, loop="step", val_data=VAL, epochs=2)
    streamed = _fit(train=batches, batch_size=None, val_data=VAL, epochs=2)
    assert runs[:4] == [STREAM_CHUNK, STREAM_CHUNK, 3, 1]   # two chunks, the rest, the odd-sized last batch
    assert leaves_equal(arrays.train_state, streamed.train_state)
    assert streamed.history["train_loss"] == arrays.history["train_loss"]
    def refilled():   # a loader that reuses one buffer for every batch must still train on each batch
        buffer_x, buffer_y = np.empty((5, x.shape[1]), x.dtype), np.empty(5, y.dtype)
        for xb, yb in batches:
            if len(xb) != 5:
                yield xb.copy(), yb.copy()
                continue
            buffer_x[:], buffer_y[:] = xb, yb
            yield buffer_x, buffer_y

    reused = _fit(train=refilled, batch_size=None, val_data=VAL, epochs=2)
    assert leaves_equal(arrays.train_state, reused.train_state)
    bad = list(batches)
    bad[STREAM_CHUNK + 4] = (np.full_like(bad[STREAM_CHUNK + 4][0], np.nan), bad[STREAM_CHUNK + 4][1])
    with pytest.raises(ValueError, match=f"epoch 1, batch {STREAM_CHUNK + 5} has"):   # inside the second chunk
        _fit(train=bad, batch_size=None, epochs=2)


def test_streaming_from_a_memmap_with_early_stopping_checkpoints_and_resume(tmp_path):
    x, y = TRAIN
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")

    def batches():
        for i in range(0, len(y), 8):
            yield np.asarray(mm[i:i + 8]), y[i:i + 8]

    val = (VAL[0], (VAL[1] + 1) % 3)   # validation labels shifted: early stopping triggers
    rule = jn.EarlyStopping(patience=2)
    straight = _fit(train=batches, batch_size=None, epochs=30, val_data=val, early_stopping=rule)
    assert straight.stop_reason == "early_stopping"
    stop = len(straight.history)
    _fit(train=batches, batch_size=None, epochs=stop - 1, val_data=val, early_stopping=rule,
         checkpoint_dir=tmp_path / "ckpt")
    resumed = _fit(train=batches, batch_size=None, epochs=30, val_data=val, early_stopping=rule,
                   checkpoint_dir=tmp_path / "ckpt", resume=True)
    assert resumed.resumed_from == stop - 1 and len(resumed.history) == stop
    assert leaves_equal(resumed.params, straight.params)


def test_streams_are_checked_and_diverge_like_arrays():
    x, y = TRAIN
    with pytest.raises(ValueError, match="iterator.*steps_per_epoch"):
        _fit(train=iter(_batches(x, y, 8)), batch_size=None)
    with pytest.raises(ValueError, match="yielded no batch"):
        _fit(train=[], batch_size=None)
    with pytest.raises(TypeError, match="epoch 1, batch 2 is int"):
        _fit(train=[(x[:8], y[:8]), 3], batch_size=None)
    with pytest.raises(ValueError, match="streamed batches bring their own size"):
        _fit(train=_batches(x, y, 8), batch_size=16)
    with pytest.raises(ValueError, match=r"labels span \[5, 5\]"):
        _fit(train=[(x[:8], np.full(8, 5, np.int32))], batch_size=None)
    with pytest.raises(ValueError, match="loop='scan' needs"):
        _fit(train=_batches(x, y, 8), batch_size=None, loop="scan")
    bad = _batches(x, y, 8)
    bad[3] = (np.full_like(bad[3][0], np.inf), bad[3][1])   # a corrupt batch in the middle of epoch 1
    with pytest.raises(ValueError, match="epoch 1, batch 4 has .*NaN/Inf inputs") as info:   # the data, not the loss
        _fit(train=bad, batch_size=None)
    assert info.value.result.epochs_run == 0


def test_value_aware_optax_transformations_receive_the_cost():
    tx = optax.chain(optax.sgd(0.3), optax.contrib.reduce_on_plateau(patience=1, factor=0.5, cooldown=0))
    r = _fit(optimizer=tx, epochs=4, plateau="step")   # each batch's cost (the per-epoch default: test_training_habits)
    state = r.opt_state[1]   # without value= its update raises TypeError; with it, the plateaus cut the scale
    assert float(state.scale) < 1.0 and np.isfinite(r.history["train_loss"]).all()
    assert np.isfinite(float(state.best_value))


def test_callbacks_keep_train_states_that_stay_valid():
    kept = []
    r = _fit(epochs=3, callbacks=[lambda epoch, row, ts: kept.append(ts)])
    assert len(kept) == 3
    for ts in kept:   # each epoch's state is intact after fit returned (not donated away)
        assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree_util.tree_leaves(ts.params))
    assert leaves_equal(kept[-1].params, r.params)
    assert int(kept[0].step) < int(kept[-1].step)
    leaves = []   # keeping a single array (or a dict inside the params) works too
    _fit(epochs=2, callbacks=[lambda epoch, row, ts: leaves.append((ts.params[0]["w"], ts.opt_state[0]))])
    assert all(np.isfinite(np.asarray(w)).all() for w, _ in leaves)
    assert {a.shape for a in jax.tree_util.tree_leaves(leaves[0][1])} == {(4, 6), (6,), (6, 3), (3,)}


def test_shuffle_false_keeps_the_data_order():
    x, y = TRAIN
    a = _fit(train=(x, y), shuffle=False, epochs=1, batch_size=41, optimizer=optim.sgd(0.1))
    grads = jn.gradients.manual(tiny_model(), LOSS)
    _, g = grads(a.train_state.params, tiny_state(), x, y)  # (any point: only the order matters below)
    b = _fit(train=(x[::-1], y[::-1]), shuffle=False, epochs=1, batch_size=8, optimizer=optim.sgd(0.1))
    c = _fit(train=(x, y), shuffle=False, epochs=1, batch_size=8, optimizer=optim.sgd(0.1))
    assert not leaves_equal(b.params, c.params) and g is not None


class _Terminal:
    """A stand-in for a terminal stderr (tqdm writes to it)."""

    def __init__(self):
        self.text = []

    def isatty(self):
        return True

    def write(self, s):
        self.text.append(s)

    def flush(self):
        pass

    def fileno(self):
        raise OSError


def test_progress_advances_within_slow_epochs(monkeypatch):
    monkeypatch.setattr(progress, "SLOW_EPOCH_SECONDS", 0.0)
    reporter = progress.Reporter(2, 0, 10, progress=True, verbose=False, stream=_Terminal())
    reporter.begin_epoch()
    reporter.step(5)
    assert reporter.bar.n == pytest.approx(0.5)
    reporter.epoch({"epoch": 1, "train_loss": 1.0})
    assert reporter.bar.n == pytest.approx(1.0)
    reporter.close()
    # a scanned epoch reports from inside the compiled program (jax.debug.callback every k steps)
    seen = []
    monkeypatch.setattr(progress, "_on_step", lambda i: seen.append(int(i)))
    monkeypatch.setattr(progress, "shows_bar", lambda *a, **k: True)
    import importlib
    monkeypatch.setattr(importlib.import_module("jaxnets.training.run"), "shows_bar", lambda *a, **k: True)
    _fit(epochs=1, batch_size=4, loop="scan", train=blobs(40))   # 10 steps; about 50 ticks per epoch: every step
    jax.effects_barrier()
    assert seen == list(range(10))


def _diverging_problem():
    rng = np.random.default_rng(0)
    x = np.full((8, 2), 1e4, np.float32)
    y = np.full((8, 1), -1e6, np.float32)
    return serial(Dense(1)), (x, y), ({"w": np.zeros((2, 1), np.float32), "b": np.zeros(1, np.float32)},), rng


@pytest.mark.parametrize("optimizer", [
    pytest.param(optim.sgd(1e36), id="huge learning rate"),
    # jaxnets' own sgd refuses an infinite learning rate when it is built; optax's takes it, and fit must cope
    pytest.param(optax.sgd(jnp.float32(np.inf)), id="infinite array learning rate (optax)"),
    pytest.param(optim.sgd(lambda count: jnp.where(count >= 2, jnp.nan, 1e-9)), id="schedule returning NaN"),
])
def test_a_non_finite_update_is_never_applied(optimizer):
    model, data, params, _ = _diverging_problem()
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, losses.quadratic, optimizer, data, epochs=2, batch_size=4, key=KEY, params=params,
            state=((),), progress=False)
    err = info.value
    assert "last finite params" in str(err)
    for leaf in jax.tree_util.tree_leaves((err.params, err.opt_state, err.result.train_state)):
        assert np.isfinite(np.asarray(leaf)).all()


def test_bad_kinds_of_arguments_get_clear_errors_before_compiling():
    model = tiny_model()
    with pytest.raises(TypeError, match="optimizer is the function 'adam'.*call it, e.g. adam"):
        _fit(optimizer=optim.adam)
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'; choose one of sgd, adam"):
        _fit(optimizer="adamm")
    with pytest.raises(ValueError, match="unknown loss 'cross_entropyy'"):
        fit(model, "cross_entropyy", optim.sgd(0.1), TRAIN, epochs=1, batch_size=8, key=KEY)
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh.*got str 'cpu'"):
        _fit(mesh="cpu")
    with pytest.raises(TypeError, match="augment must be a function"):
        _fit(augment=3)
    with pytest.raises(TypeError, match=r"callbacks\[0\] is int"):
        _fit(callbacks=[3])
    with pytest.raises(TypeError, match="model must be a jaxnets Layer"):
        fit("mlp", LOSS, optim.sgd(0.1), TRAIN, epochs=1, batch_size=8, key=KEY)
    params = tiny_params()
    with pytest.raises(TypeError, match=r"params\[0\]\['w'\] has dtype int32; params must be floating point"):
        _fit(params=({"w": params[0]["w"].astype(np.int32), "b": params[0]["b"]}, (), params[2]),
             state=tiny_state())
    with pytest.raises(ValueError, match=r"params\[2\]\['b'\] contains NaN"):
        _fit(params=(params[0], (), {"w": params[2]["w"], "b": np.full(3, np.nan, np.float32)}), state=tiny_state())
    with pytest.raises(ValueError, match=r"do not have the structure.*missing \[\"\[2\]\['b'\]\"\]"):
        _fit(params=(params[0], (), {"w": params[2]["w"]}), state=tiny_state())
    # by name, they work
    r = fit(model, "softmax_cross_entropy", "adam", TRAIN, epochs=1, batch_size=8, key=KEY, progress=False)
    assert r.epochs_run == 1


def test_loss_and_model_combinations_that_cannot_learn_are_refused():
    x, y = TRAIN
    one_unit = serial(Dense(1))
    with pytest.raises(ValueError, match="1 output unit.*identically 0"):
        fit(one_unit, LOSS, optim.sgd(0.1), (x, (y > 0).astype(np.int32)), epochs=1, batch_size=8, key=KEY)
    with pytest.raises(ValueError, match=r"BatchNorm.*batch of 1 value per feature"):
        _fit(serial(Dense(4), BatchNorm(), Dense(3)), train=blobs(33), batch_size=32)   # the remainder batch: 1
    _fit(serial(Dense(4), BatchNorm(), Dense(3)), train=blobs(33), batch_size=32, drop_last=True, epochs=1)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        fit(serial(Dense(3)), losses.sigmoid_cross_entropy, optim.sgd(0.1), (x, np.full((41, 3), 2.0, np.float32)),
            epochs=1, batch_size=8, key=KEY)
    with pytest.raises(ValueError, match="probability distributions"):
        fit(tiny_model(), LOSS, optim.sgd(0.1), (x, np.full((41, 3), 0.5, np.float32)), epochs=1, batch_size=8,
            key=KEY)
    with pytest.raises(ValueError,
                       match=r"binary_cross_entropy is nan.*takes probabilities in \(0, 1\): end the model"):
        fit(serial(Dense(3)), losses.binary_cross_entropy, optim.sgd(0.1), (x, np.eye(3, dtype=np.float32)[y]),
            epochs=1, batch_size=8, key=KEY)
    nchw = np.random.default_rng(0).random((6, 1, 12, 12), dtype=np.float32)
    with pytest.warns(UserWarning, match=r"look channels-first \(NCHW"):
        fit(serial(Flatten, Dense(3)), LOSS, optim.sgd(0.1), (nchw, np.arange(6) % 3), epochs=1, batch_size=3,
            key=KEY, progress=False)


def test_evaluate_and_predict_validate_like_fit():
    r = _fit(epochs=1)
    with pytest.raises(ValueError, match=r"labels span \[3, 5\]"):
        jn.evaluate(tiny_model(), LOSS, r.params, r.state, (VAL[0], VAL[1] + 3))
    with pytest.raises(ValueError, match=r"labels span \[-1, 1\]"):
        jn.evaluate(tiny_model(), LOSS, r.params, r.state, (VAL[0], VAL[1] - 1))
    with pytest.raises(TypeError, match="loss must be a jaxnets Loss.*The order is model, loss"):
        jn.evaluate(tiny_model(), r.params, r.state, VAL, LOSS)      # the old argument order
    with pytest.raises(ValueError, match="NaN"):
        jn.predict(tiny_model(), r.params, r.state, np.full((2, 4), np.nan, np.float32))
    scan = jn.evaluate(tiny_model(), LOSS, r.params, r.state, VAL, loop="scan", batch_size=7)
    step = jn.evaluate(tiny_model(), LOSS, r.params, r.state, VAL, loop="step", batch_size=7)
    assert scan["loss"] == pytest.approx(step["loss"], rel=1e-6) and scan["accuracy"] == step["accuracy"]
    np.testing.assert_allclose(jn.predict(tiny_model(), r.params, r.state, VAL[0], loop="step", batch_size=7),
                               jn.predict(tiny_model(), r.params, r.state, VAL[0], loop="scan"), rtol=1e-5, atol=1e-6)


def test_fit_result_flags_follow_from_the_stop_reason():
    r = _fit(epochs=2)
    assert (r.stop_reason, r.stopped_early, r.diverged, r.epochs_run) == ("completed", False, False, 2)
    with pytest.raises(AttributeError):
        r.stopped_early = True


def test_an_exhausted_iterator_ends_training_and_keeps_what_it_trained():
    x, y = TRAIN
    batches = iter(_batches(x, y, 16))   # 3 batches: 16, 16, 9
    with pytest.warns(RuntimeWarning, match="train_data ran out in epoch 2 .1 of 2 batches, 3 in all"):
        r = _fit(train=batches, batch_size=None, steps_per_epoch=2, epochs=5)
    assert r.stop_reason == "data_exhausted" and r.stopped_early and r.epochs_run == 2
    assert int(r.train_state.step) == 3
    with pytest.raises(ValueError, match="one-pass iterator cannot be rewound"):
        _fit(train=iter(_batches(x, y, 16)), batch_size=None, steps_per_epoch=2, checkpoint_dir="/tmp/unused-dir",
             resume=True)


def test_a_factory_taking_the_epoch_gets_it_and_resumes_bit_for_bit(tmp_path):
    x, y = TRAIN
    seen = []

    def per_epoch(epoch):   # a different, reproducible order every epoch
        seen.append(epoch)
        order = np.random.default_rng(epoch).permutation(len(x))
        return _batches(x[order], y[order], 8)

    straight = _fit(train=per_epoch, batch_size=None, epochs=4)
    assert seen == [1, 2, 3, 4]
    _fit(train=per_epoch, batch_size=None, epochs=2, checkpoint_dir=tmp_path)
    seen.clear()
    resumed = _fit(train=per_epoch, batch_size=None, epochs=4, checkpoint_dir=tmp_path, resume=True)
    assert seen[-2:] == [3, 4] and resumed.resumed_from == 2
    assert leaves_equal(resumed.train_state, straight.train_state)


def test_resume_refuses_another_model_loss_or_penalty(tmp_path):
    from jaxnets.training import CheckpointDirError

    sigmoid = jn.models.mlp([4, 6, 3], "sigmoid")
    _fit(sigmoid, epochs=1, checkpoint_dir=tmp_path)
    for change, what in ((dict(model=jn.models.mlp([4, 6, 3], "relu")), "different model"),
                         (dict(loss=losses.quadratic), "different loss"),
                         (dict(penalty=losses.l2(5.0, 41)), "different penalty"),
                         (dict(augment=lambda key, xb: xb), "settings")):
        model = change.pop("model", sigmoid)
        loss = change.pop("loss", LOSS)
        with pytest.raises(CheckpointDirError, match=what):
            fit(model, loss, optim.sgd(0.3, momentum=0.9), TRAIN, epochs=2, batch_size=8, key=KEY, progress=False,
                checkpoint_dir=tmp_path, resume=True, **change)
