"""jaxnets.fit: semantics, optimizers, early stopping, divergence, input validation, output, evaluate/predict.

Model, loss and optimizer objects are module constants so repeated fits reuse one compiled epoch."""
import csv
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets
import jaxnets.optim
import jaxnets.parallel
from jaxnets import losses
from jaxnets.core import serial
from jaxnets.layers import Dense
from jaxnets.training import (EarlyStopping, History, TrainingDivergedError, TrainState, evaluate, fit, make_step,
                              plot_history, predict)
from jaxnets.training.early_stopping import Tracker
from test_training_common import blobs, hand_sgd, leaves_equal, tiny_model, tiny_params, tiny_state

MODEL = tiny_model()
LOSS = losses.softmax_cross_entropy
TX = optax.adam(0.05)
TRAIN = blobs(40)
VAL = blobs(20, seed=1)
KEY = jax.random.key(0)


def run(**kw):
    args = dict(epochs=3, batch_size=8, key=KEY, params=tiny_params(), state=tiny_state(), progress=False)
    args.update(kw)
    return fit(MODEL, LOSS, args.pop("optimizer", TX), args.pop("train_data", TRAIN), **args)


def test_loss_decreases_history_and_best_epoch():
    r = run(epochs=6, val_data=VAL)
    h = r.history
    assert len(h) == 6 and h["epoch"] == [1, 2, 3, 4, 5, 6]
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["val_loss"][-1] < h["val_loss"][0]
    assert all(0.0 <= a <= 1.0 for a in h["train_accuracy"] + h["val_accuracy"])
    assert all(t > 0 for t in h["time"])
    assert r.best_epoch == int(np.argmin(h["val_loss"])) + 1
    assert r.stop_reason == "completed" and not r.stopped_early and not r.diverged and r.epochs_run == 6
    assert int(r.train_state.step) == 6 * 5
    # the reported validation metrics are those of the returned params
    ev = evaluate(MODEL, LOSS, r.params, r.state, VAL)
    assert ev["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-6)
    assert ev["accuracy"] == pytest.approx(h["val_accuracy"][-1])
    out = predict(MODEL, r.params, r.state, VAL[0])
    assert out.shape == (20, 3)


def test_fit_follows_documented_key_schedule_and_trains_the_partial_batch():
    x, y = blobs(10)
    tx = optax.sgd(0.3)
    r = fit(MODEL, LOSS, tx, (x, y), epochs=1, batch_size=4, key=KEY, params=tiny_params(), state=tiny_state(),
            progress=False)
    keys = jax.random.split(jax.random.fold_in(KEY, 0), 3 + 1)  # 3 steps: 4 + 4 + 2
    perm = np.asarray(jax.random.permutation(keys[0], 10))
    want = hand_sgd(MODEL, LOSS, tiny_params(), x, y, 0.3, [perm[0:4], perm[4:8], perm[8:10]])
    chex.assert_trees_all_close(r.params, want, rtol=1e-5, atol=1e-6)
    assert int(r.train_state.step) == 3


def test_optax_and_jaxnets_optimizers_both_train_alike():
    a = run(optimizer=TX)  # optax.adam(0.05)
    b = run(optimizer=jaxnets.optim.adam(0.05))
    assert a.history["train_loss"][-1] < a.history["train_loss"][0]
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-5, atol=1e-6)


def test_regression_reports_loss_only():
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(32, 1)).astype(np.float32)
    y = np.sin(x).astype(np.float32)
    model = serial(Dense(1))
    r = fit(model, losses.quadratic, optax.sgd(0.1), (x, y), epochs=2, batch_size=8, key=KEY, val_data=(x, y),
            progress=False)
    assert r.history.columns == ["epoch", "train_loss", "val_loss", "time"]
    ev = evaluate(model, losses.quadratic, r.params, r.state, (x, y))
    assert ev["accuracy"] is None and ev["loss"] > 0


def test_early_stopping_rule_on_a_constructed_sequence():
    rule = EarlyStopping(patience=3, min_delta=0.01)
    tracker = Tracker(rule)
    values = [1.0, 0.8, 0.795, 0.85, 0.7, 0.705, 0.71, 0.69, 0.9]
    stops = [tracker.update(e + 1, v)[1] for e, v in enumerate(values)]
    # 0.795 and 0.69 improve by less than min_delta; best is epoch 5 (0.7); three epochs without improvement
    assert stops.index(True) + 1 == 8 and tracker.best_epoch == 5
    acc = Tracker(EarlyStopping(patience=1, monitor="val_accuracy"))
    assert [acc.update(e, v) for e, v in enumerate([0.5, 0.6, 0.6], 1)] == [(True, False), (True, False), (False, True)]


def test_early_stopping_in_fit_stops_and_restores_best():
    # validation labels shifted by one class: fitting the training set makes validation loss rise
    val = (VAL[0], (VAL[1] + 1) % 3)
    r = run(epochs=30, val_data=val, early_stopping=EarlyStopping(patience=2))
    losses_seen = r.history["val_loss"]
    best = int(np.argmin(losses_seen)) + 1
    assert r.stopped_early and r.stop_reason == "early_stopping"
    assert r.best_epoch == best and len(r.history) == best + 2 < 30
    shorter = run(epochs=best, val_data=val)
    assert leaves_equal(r.params, shorter.params)  # the restored params are those after the best epoch
    assert not leaves_equal(r.train_state.params, shorter.params)


def test_callback_can_stop_training():
    seen = []
    r = run(epochs=5, callbacks=[lambda epoch, row, ts: seen.append(row["epoch"]) or epoch == 2])
    assert seen == [1, 2] and r.stop_reason == "callback" and len(r.history) == 2


def _diverging_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 2)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0]], np.float32)
    params = ({"w": np.zeros((2, 1), np.float32), "b": np.zeros(1, np.float32)},)
    return serial(Dense(1)), x, y, params


def test_nan_stops_with_epoch_and_step_and_keeps_last_good_params():
    model, x, y, params = _diverging_problem()
    tx = optax.sgd(100.0)  # far beyond 2 / largest curvature: the iterates grow until the cost overflows
    with pytest.raises(TrainingDivergedError) as info:
        fit(model, losses.quadratic, tx, (x, y), epochs=5, batch_size=2, key=KEY, params=params, state=((),),
            progress=False)
    err = info.value
    assert f"epoch {err.epoch}, step {err.step} of 8" in str(err)
    assert err.result.diverged and len(err.history) == err.epoch - 1
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(err.params))
    # replay step by step with the documented schedule; stop at the first non-finite step
    step = jax.jit(make_step(model, losses.quadratic, tx))
    ts = TrainState.create(params, ((),), tx)
    found = None
    for e in range(5):
        keys = jax.random.split(jax.random.fold_in(KEY, e), 9)
        perm = np.asarray(jax.random.permutation(keys[0], 16))
        for i in range(8):
            idx = perm[2 * i:2 * i + 2]
            new, m = step(ts, x[idx], y[idx], keys[1 + i])
            if not bool(m["finite"]):
                found = (e + 1, i + 1)
                break
            ts = new
        if found:
            break
    assert found == (err.epoch, err.step)
    assert int(err.result.train_state.step) == int(ts.step)
    chex.assert_trees_all_close(err.params, ts.params, rtol=1e-5)


X, Y = TRAIN


@pytest.mark.parametrize("change, error, match", [
    (dict(gradients="manaul"), ValueError, "gradients='manaul'"),
    (dict(epochs=0), ValueError, "epochs must be a positive int"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive int"),
    (dict(batch_size=41), ValueError, "larger than the 40 training examples"),
    (dict(train_data=(X, Y[:-1])), ValueError, "same leading length"),
    (dict(train_data=(X[:0], Y[:0])), ValueError, "empty"),
    (dict(train_data=(np.where(np.arange(40)[:, None] == 3, np.nan, X), Y)), ValueError, "NaN"),
    (dict(train_data=(X, Y + 1)), ValueError, r"labels span \[1, 3\].*3 output unit"),
    (dict(train_data=(X[:, :3], Y)), ValueError, r"params\[0\]\['w'\] has shape \(4, 6\) but .* expects \(3, 6\)"),
    (dict(train_data=(X, np.ones((40, 2), np.float32))), ValueError, "do not match the model's output shape"),
    (dict(train_data=X), TypeError, r"\(x, y\) tuple"),
    (dict(train_data=(X[:, 0], Y)), ValueError, "needs a batch axis"),
    (dict(val_data=(X[:, :3], Y)), ValueError, "validation inputs must look like training inputs"),
    (dict(early_stopping=EarlyStopping(2)), ValueError, "no val_data was given"),
    (dict(key=0), TypeError, "PRNG key"),
    (dict(resume=True), ValueError, "resume=True needs checkpoint_dir"),
])
def test_bad_input_is_rejected_before_training(change, error, match):
    with pytest.raises(error, match=match):
        run(**change)


def test_early_stopping_arguments_are_checked():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)
    with pytest.raises(ValueError, match="monitor"):
        EarlyStopping(2, monitor="val_los")


def test_output_progress_and_verbose(capsys):
    run(epochs=1, progress=False)  # compiled now, so the next call has no "compiling" notice to give
    run(epochs=2, progress=True)   # stderr is not a terminal under pytest: no bar, nothing printed
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    run(epochs=2, progress=False, verbose=True, val_data=VAL)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "val_acc" in lines[1]


def test_mesh_path_matches_single_device():
    mesh = jaxnets.parallel.make_mesh(jax.devices()[:1])
    a, b = run(epochs=1), run(epochs=1, mesh=mesh)
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-6, atol=1e-7)


def test_history_json_csv_and_plot(tmp_path):
    h = History()
    h.append({"epoch": 1, "train_loss": 1.5, "train_accuracy": 0.5, "val_loss": 1.6, "val_accuracy": 0.4, "time": 0.1})
    h.append({"epoch": 2, "train_loss": 0.9, "train_accuracy": 0.7, "val_loss": float("nan"), "time": 0.05})
    assert History.from_json(h.to_json(tmp_path / "h.json")) == h
    data = json.loads((tmp_path / "h.json").read_text())
    assert data["rows"][1]["val_loss"] is None and data["columns"][0] == "epoch"
    with open(h.to_csv(tmp_path / "h.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "time"]
    assert rows[2] == ["2", "0.9", "0.7", "", "", "0.05"]
    assert h["train_loss"] == [1.5, 0.9] and h["val_accuracy"] == [0.4, None]
    with pytest.raises(KeyError, match="no column"):
        h["test_loss"]
    png = plot_history(h, tmp_path / "curves.png", best_epoch=1)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
