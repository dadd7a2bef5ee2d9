"""Nothing trained is lost: an error raised after training started carries the result so far (`err.result`), equal
to an uninterrupted run stopped at the last finished epoch; and the building blocks refuse what `fit` refuses."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import losses, optim
from jaxnets.training import FitResult, fit, make_epoch, make_step
from test_training_common import blobs, leaves_equal, tiny_model

LOSS = losses.softmax_cross_entropy
KEY = jax.random.key(0)
X, Y = blobs(48)


def _batches(epoch_breakage=None):
    """A function returning each epoch's 6 batches of 8; `epoch_breakage(epoch, i, batch)` may replace one."""
    def epoch(number):
        out = []
        for i in range(6):
            batch = (X[8 * i:8 * i + 8], Y[8 * i:8 * i + 8])
            out.append(batch if epoch_breakage is None else epoch_breakage(number, i + 1, batch))
        return out
    return epoch


def _fit(train, epochs=3, **kw):
    return fit(tiny_model(), LOSS, optim.sgd(0.3, momentum=0.9), train, epochs=epochs, key=KEY, progress=False,
               **kw)


def _assert_result_is_the_run_stopped_after(result, epochs, reference_train=None, **kw):
    assert isinstance(result, FitResult)
    straight = _fit(reference_train or _batches(), epochs=epochs, **kw)
    assert result.epochs_run == epochs
    assert leaves_equal(result.train_state, straight.train_state)
    assert [r["train_loss"] for r in result.history] == [r["train_loss"] for r in straight.history]


def _in_epoch_2_batch_3(replacement):
    return _batches(lambda epoch, i, batch: replacement(batch) if (epoch, i) == (2, 3) else batch)


@pytest.mark.parametrize("replacement, error, message", [
    (lambda b: (np.ones((8, 5), np.float32), b[1]), ValueError, r"epoch 2, batch 3 has per-example shapes \(5,\)"),
    (lambda b: (b[0].astype(np.int32), b[1]), TypeError, "epoch 2, batch 3 has inputs of dtype int32"),
    (lambda b: (b[0], b[1][:5]), ValueError, "epoch 2, batch 3 has xb of shape .* and yb of shape"),
    (lambda b: b[0], TypeError, "epoch 2, batch 3 is ndarray, not an .xb, yb. pair"),
    (lambda b: (b[0], np.full(8, 7, np.int32)), ValueError, "epoch 2, batch 3 has labels outside"),
    (lambda b: (np.where(np.arange(8)[:, None] == 2, np.nan, b[0]).astype(np.float32), b[1]), ValueError,
     "epoch 2, batch 3 has .*NaN/Inf"),
], ids=["another width", "integer inputs", "x and y of different lengths", "not a pair", "label out of range",
        "NaN input"])
def test_a_bad_streamed_batch_is_named_and_carries_the_finished_epochs(replacement, error, message):
    with pytest.raises(error, match=message) as info:
        _fit(_in_epoch_2_batch_3(replacement))
    _assert_result_is_the_run_stopped_after(info.value.result, 1)


def test_an_exception_from_the_users_stream_carries_the_result():
    def flaky(epoch):
        for i in range(6):
            if (epoch, i) == (3, 2):
                raise ConnectionError("the data server went away")
            yield X[8 * i:8 * i + 8], Y[8 * i:8 * i + 8]

    with pytest.raises(ConnectionError, match="went away") as info:
        _fit(flaky, epochs=4)
    _assert_result_is_the_run_stopped_after(info.value.result, 2)


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_a_failing_callback_carries_the_epoch_it_was_called_after(loop):
    def callback(epoch, row, ts):
        if epoch == 2:
            raise RuntimeError("my logger broke")

    with pytest.raises(RuntimeError, match="my logger broke") as info:
        fit(tiny_model(), LOSS, optim.sgd(0.3, momentum=0.9), (X, Y), epochs=4, batch_size=8, key=KEY,
            progress=False, loop=loop, callbacks=[callback])
    straight = fit(tiny_model(), LOSS, optim.sgd(0.3, momentum=0.9), (X, Y), epochs=2, batch_size=8, key=KEY,
                   progress=False, loop=loop)
    assert info.value.result.epochs_run == 2
    assert leaves_equal(info.value.result.train_state, straight.train_state)


def test_ctrl_c_during_training_keeps_the_result():
    def interrupt(epoch, row, ts):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        _fit(_batches(), callbacks=[interrupt])
    _assert_result_is_the_run_stopped_after(info.value.result, 1)


@pytest.mark.parametrize("chunk_size", [None, 2], ids=["one-program", "chunks-of-2"])
def test_ctrl_c_during_an_ensemble_keeps_the_members_trained_so_far(monkeypatch, chunk_size):
    from jaxnets import EnsembleResult
    from jaxnets.training import progress

    calls = []
    original = progress.Reporter.epoch

    def epoch(self, row, note=""):   # Ctrl-C arrives while the second epoch report is written
        calls.append(row["epoch"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, row, note)

    keys = jax.random.split(KEY, 3)
    run = dict(epochs=3, batch_size=8, keys=keys, progress=False, chunk_size=chunk_size)
    monkeypatch.setattr(progress.Reporter, "epoch", epoch)
    with pytest.raises(KeyboardInterrupt) as info:
        jn.fit_ensemble(tiny_model(), LOSS, optim.sgd(0.3), (X, Y), **run)
    monkeypatch.undo()
    result = info.value.result
    assert isinstance(result, EnsembleResult)
    # one program: all 3 members after 2 epochs; chunks of 2: the first chunk's 2 members after 2 epochs (the
    # second chunk never started)
    expected_members = 3 if chunk_size is None else 2
    assert len(result.histories) == expected_members
    assert all(len(h) == 2 for h in result.histories)
    straight = jn.fit_ensemble(tiny_model(), LOSS, optim.sgd(0.3), (X, Y), **{**run, "epochs": 2})
    for k in range(expected_members):
        assert [r["train_loss"] for r in result.histories[k]] == [r["train_loss"] for r in straight.histories[k]]
        assert leaves_equal(jax.tree_util.tree_map(lambda a: a[k], result.params),
                            jax.tree_util.tree_map(lambda a: a[k], straight.params))


def test_callbacks_are_checked_before_training():
    with pytest.raises(TypeError, match=r"callbacks\[0\] is the class CSVLogger, not an instance: pass CSVLogger"):
        _fit(_batches(), callbacks=[jn.CSVLogger])
    with pytest.raises(TypeError, match="the class CSVLogger"):
        _fit(_batches(), callbacks=jn.CSVLogger)
    with pytest.raises(TypeError, match=r"callbacks\[0\] \(<lambda>\) cannot be called as fn\(epoch, row, "
                                        r"train_state\)"):
        _fit(_batches(), callbacks=[lambda epoch: None])
    _fit(_batches(), epochs=1, callbacks=[lambda epoch, row, ts, extra=None: None])   # a valid neighbour


def test_the_first_streamed_batch_is_checked_like_arrays_and_names_the_data():
    bad = [(np.full((8, 4), np.nan, np.float32), Y[:8])]
    with pytest.raises(ValueError, match=r"train_data \(epoch 1, batch 1\): x contains NaN"):
        _fit(bad)


def test_streams_given_the_wrong_way_round():
    with pytest.raises(TypeError, match=r"pair of iterables .* pass zip\(x_batches, y_batches\)"):
        _fit((iter([X[:8]]), iter([Y[:8]])), steps_per_epoch=1)
    with pytest.raises(TypeError, match=r"returned NoneType for epoch 1.*missing return"):
        _fit(lambda epoch: None)


def test_a_model_with_several_outputs_is_refused_clearly():
    model = jn.serial(jn.Dense(3), jn.FanOut(2))
    with pytest.raises(ValueError, match="outputs a tuple of 2 arrays, not one array.*FanInSum"):
        fit(model, LOSS, "sgd", (X, Y), epochs=1, batch_size=8, key=KEY, progress=False)
    _, params, state = model.init(KEY, (4,))
    with pytest.raises(ValueError, match="outputs a tuple of 2 arrays"):
        jn.predict(model, params, state, X)


def test_a_penalty_by_name_is_refused_with_the_fix():
    with pytest.raises(TypeError, match=r"penalty='l2' is a name.*losses.l2\(lmbda, n\)"):
        _fit(_batches(), penalty="l2")
    with pytest.raises(TypeError, match="penalty must be a Penalty"):
        make_step(tiny_model(), LOSS, optim.sgd(0.1), penalty=0.1)
    with pytest.raises(TypeError, match=r"fit_ensemble: penalty='l2' is a name"):
        jn.fit_ensemble(tiny_model(), LOSS, "sgd", (X, Y), epochs=1, batch_size=8, keys=jax.random.split(KEY, 2),
                        penalty="l2", progress=False)


@pytest.mark.parametrize("build", [
    lambda **kw: make_step(tiny_model(), LOSS, optim.sgd(0.1), **kw),
    lambda **kw: make_epoch(tiny_model(), LOSS, optim.sgd(0.1), batch_size=8, **kw),
], ids=["make_step", "make_epoch"])
def test_building_blocks_check_their_arguments_like_fit(build):
    with pytest.raises(ValueError, match="compute_dtype=int32 is not supported"):
        build(compute_dtype=jnp.int32)
    with pytest.raises(ValueError, match="gradients"):
        build(gradients="magic")
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        build(mesh=2)
    build(compute_dtype=jnp.bfloat16)   # a valid neighbour


def test_make_step_and_make_epoch_take_names_as_fit_does():
    step = make_step(tiny_model(), "softmax_cross_entropy", "sgd")
    epoch = make_epoch(tiny_model(), "softmax_cross_entropy", "sgd", batch_size=8)
    assert callable(step) and callable(epoch)
    with pytest.raises(TypeError, match="drop_last must be True or False"):
        make_epoch(tiny_model(), LOSS, "sgd", batch_size=8, drop_last="yes")


def test_a_float16_loss_scale_overflow_is_blamed_on_the_scale():
    x = np.full((16, 4), 3.0, np.float32)
    y = np.arange(16) % 3
    with pytest.raises(jn.TrainingDivergedError, match="lower loss_scale first"):
        fit(tiny_model(), LOSS, optim.sgd(0.1), (x, y), epochs=1, batch_size=8, key=KEY, progress=False,
            compute_dtype=jnp.float16, loss_scale=1e30)


def test_fit_gives_the_checkers_structure_diagnosis_before_training():
    from jaxnets.core import Layer

    dense = jn.Dense(3)
    no_dx = Layer(dense.init, dense.forward, lambda p, c, dy: (dense.backward(p, c, dy)[0], None), "NoDx")
    renamed = Layer(dense.init, dense.forward,
                    lambda p, c, dy: ({"W": dense.backward(p, c, dy)[0]["w"], "b": dense.backward(p, c, dy)[0]["b"]},
                                      dense.backward(p, c, dy)[1]), "Renamed")
    for layer, message in ((no_dx, r"layer NoDx \(at 2 of the model, in fit\): dx is None"),
                           (renamed, r"layer Renamed \(at 2 of the model, in fit\).*'W'")):
        model = jn.serial(jn.Dense(4), jn.Tanh, layer)
        with pytest.raises(ValueError, match=message):
            fit(model, LOSS, "sgd", (X, Y), epochs=1, batch_size=8, key=KEY, progress=False)
        # the forward is sound, so autodiff trains it while the backward is being written
        fit(model, LOSS, "sgd", (X, Y), epochs=1, batch_size=8, key=KEY, progress=False, gradients="autodiff")
