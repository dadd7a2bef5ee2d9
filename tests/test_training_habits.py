"""The habits users bring from Keras, Flax and optax: freezing (`trainable=`, `optim.freeze`), the `masked` trap,
plateaus judged per epoch, the learning rate in the history, `validation_split=`, one layer convention, and models
passed to `jax.jit`/`vmap`/`grad` as ordinary arguments."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets import optim

RNG = np.random.default_rng(0)
X = RNG.normal(size=(160, 6)).astype(np.float32)
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
MODEL = jn.serial(jn.Dense(8), jn.Relu(), jn.Dense(2))
KEY = jax.random.PRNGKey(0)


def _fit(optimizer, epochs=2, **kw):
    kw.setdefault("progress", False)
    return jn.fit(MODEL, "softmax_cross_entropy", optimizer, (X, Y), epochs=epochs, batch_size=32, key=KEY, **kw)


def _bits(a):
    return np.asarray(a).view(np.uint32)


# --------------------------------------------------------------------------------------------------- freezing
@pytest.mark.parametrize("optimizer", [optim.adam(1e-2), optim.adamw(1e-2, weight_decay=0.5), optim.sgd(0.1, 0.9)],
                         ids=["adam", "adamw", "sgd-momentum"])
def test_frozen_leaves_are_bit_identical_and_the_rest_trains(optimizer):
    _, p0, s0 = MODEL.init(KEY, (6,))
    r = _fit(optimizer, params=p0, state=s0, trainable=(False, True, True), penalty=jn.losses.l2(1.0, 160))
    for a, b in zip(jax.tree.leaves(r.params[0]), jax.tree.leaves(p0[0])):
        np.testing.assert_array_equal(_bits(a), _bits(b))
    assert not np.array_equal(r.params[2]["w"], p0[2]["w"])
    # the mutation: without trainable= the same layer moves (so the check above can fail)
    moved = _fit(optimizer, params=p0, state=s0, penalty=jn.losses.l2(1.0, 160))
    assert not np.array_equal(moved.params[0]["w"], p0[0]["w"])


def test_trainable_as_a_predicate_on_leaf_paths_freezes_the_biases():
    _, p0, s0 = MODEL.init(KEY, (6,))
    p0 = jax.tree.map(lambda a: a + 0.1, p0)   # non-zero biases, so "unchanged" means something
    r = _fit(optim.adamw(1e-2), params=p0, state=s0,
             trainable=lambda path, leaf: jax.tree_util.keystr(path).endswith("['w']"))
    for layer in (0, 2):
        np.testing.assert_array_equal(_bits(r.params[layer]["b"]), _bits(p0[layer]["b"]))
        assert not np.array_equal(r.params[layer]["w"], p0[layer]["w"])


def test_frozen_leaves_pay_no_penalty():
    from jaxnets.training import trainable

    _, p0, _ = MODEL.init(KEY, (6,))
    mask = trainable.resolve((False, True, True), p0)
    _, pen = trainable.apply(mask, optim.sgd(0.1), jn.losses.l2(1.0, 1))
    full = jn.losses.l2(1.0, 1).value(p0)
    only_last = 0.5 * float(jnp.sum(p0[2]["w"] ** 2))
    np.testing.assert_allclose(float(pen.value(p0)), only_last, rtol=1e-6)
    assert float(full) > only_last
    grad = pen.grad(p0)
    assert not np.any(grad[0]["w"]) and np.any(grad[2]["w"])


@pytest.mark.parametrize("mask, match", [((True, False), "structure"), ((1, True, True), "bool"),
                                         ((False, False, False), "nothing to train")])
def test_bad_trainable_is_refused_before_training(mask, match):
    with pytest.raises((TypeError, ValueError), match=match):
        _fit(optim.adam(1e-2), trainable=mask)


@pytest.mark.parametrize("make", [lambda: optim.masked(optim.adam(1e-2), lambda p: (False, True, True)),
                                  lambda: optax.masked(optax.adam(1e-2), (False, True, True))],
                         ids=["jaxnets", "optax"])
def test_masked_optimizer_that_would_ascend_is_warned_about(make):
    with pytest.warns(UserWarning, match=r"gradient ascent.*trainable="):
        _fit(make(), epochs=1)


def test_a_plain_optimizer_gets_no_ascent_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit(optim.adam(1e-2), epochs=1)
        _fit(optim.selective_transform(optim.adam(1e-2), freeze_mask=(True, False, False)), epochs=1)


def test_freeze_and_selective_transform_match_optax():
    _, params, _ = MODEL.init(KEY, (6,))
    grads = jax.tree.map(lambda p: jnp.ones_like(p) * 0.3, params)
    mask = (True, False, False)
    for ours, theirs in [
        (optim.chain(optim.freeze(mask), optim.sgd(0.1)), optax.chain(optax.transforms.freeze(mask), optax.sgd(0.1))),
        (optim.selective_transform(optim.adamw(0.1), freeze_mask=mask),
         optax.transforms.selective_transform(optax.adamw(0.1), freeze_mask=mask)),
    ]:
        s1, s2 = ours.init(params), theirs.init(params)
        for _ in range(3):
            u1, s1 = ours.update(grads, s1, params)
            u2, s2 = theirs.update(grads, s2, params)
            for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
        assert not any(np.any(a) for a in jax.tree.leaves(u1[0]))


# --------------------------------------------------------------------------------------------------- plateaus
def test_reduce_on_plateau_matches_optax_step_by_step():
    params = {"w": jnp.ones(3)}
    ours = optim.reduce_on_plateau(factor=0.5, patience=2, cooldown=1, accumulation_size=2)
    theirs = optax.contrib.reduce_on_plateau(factor=0.5, patience=2, cooldown=1, accumulation_size=2)
    s1, s2 = ours.init(params), theirs.init(params)
    values = [3.0, 2.0, 2.0, 2.5, 2.5, 2.6, 2.7, 2.7, 1.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    for v in values:
        u1, s1 = ours.update(params, s1, params, value=v)
        u2, s2 = theirs.update(params, s2, params, value=v)
        np.testing.assert_allclose(u1["w"], u2["w"])
        for a, b in zip(s1, s2):
            np.testing.assert_allclose(a, b)
    assert float(s1.scale) < 1.0   # the sequence did reach plateaus


def _replay_scales(values, factor, patience):
    """Expected scale per epoch from the documented rule (accumulation 1, no cooldown, rtol 1e-4)."""
    scale, best, count, out = 1.0, np.inf, 0, []
    for v in values:
        out.append(scale)
        if v < (1 - 1e-4) * best:
            best, count = v, 0
        else:
            count += 1
            if count == patience:
                scale, count = scale * factor, 0
    return out


@pytest.mark.parametrize("tx", [optim.reduce_on_plateau(factor=0.5, patience=1),
                                optax.contrib.reduce_on_plateau(factor=0.5, patience=1)], ids=["jaxnets", "optax"])
def test_plateau_is_judged_per_epoch_on_the_validation_loss(tx):
    opt = optim.chain(optim.adam(1e-2), tx)
    improving = _fit(opt, epochs=5, val_data=(X, Y))   # val loss keeps falling: the scale stays 1.0
    assert all(np.diff(improving.history["val_loss"]) < 0)
    assert improving.history["lr_scale"] == [1.0] * 5
    np.testing.assert_allclose(improving.history["lr"], [1e-2] * 5, rtol=1e-6)
    worsening = _fit(opt, epochs=5, val_data=(X, 1 - Y))   # val loss rises as the model learns: the scale falls
    expected = _replay_scales(worsening.history["val_loss"], 0.5, 1)
    assert worsening.history["lr_scale"] == expected and expected[-1] < 1.0


def test_plateau_with_checkpoints_an_accuracy_monitor_and_another_value_aware_transformation(tmp_path):
    opt = optim.chain(optim.adam(1e-2), optim.reduce_on_plateau(factor=0.5, patience=1))
    r = _fit(opt, epochs=3, val_data=(X, 1 - Y), checkpoint_dir=tmp_path / "run")   # the run's identity probes it
    assert r.history["lr_scale"][-1] < 1.0
    # an unchanged accuracy is no improvement: judged as the error rate 1 − accuracy, the scale must fall
    flat = jn.EarlyStopping(patience=100, monitor="val_accuracy")
    frozen = _fit(optim.chain(optax.sgd(0.0), optim.reduce_on_plateau(factor=0.5, patience=1)), epochs=3,
                  val_data=(X, Y), early_stopping=flat)
    assert len(set(frozen.history["val_accuracy"])) == 1 and frozen.history["lr_scale"] == [1.0, 1.0, 0.5]
    # a transformation that reads the cost itself (Polyak's step size) still gets the batch cost, not a sentinel
    polyak = optax.chain(optax.polyak_sgd(max_learning_rate=0.1), optax.contrib.reduce_on_plateau(patience=5))
    assert np.isfinite(_fit(polyak, epochs=2, val_data=(X, Y)).history["train_loss"]).all()


def test_per_step_plateau_is_still_available_and_shows_the_trap():
    opt = optim.chain(optim.adam(1e-2), optim.reduce_on_plateau(factor=0.5, patience=1))
    r = _fit(opt, epochs=2, plateau="step")
    assert r.history["lr_scale"][-1] < 0.1   # judged on every batch's cost, it collapses within two epochs
    with pytest.raises(ValueError, match="plateau must be one of"):
        _fit(opt, plateau="batch")


def test_learning_rate_column_follows_a_schedule():
    schedule = optim.exponential_decay(0.1, transition_steps=5, decay_rate=0.5)
    r = _fit(optim.sgd(schedule), epochs=3)
    steps = 160 // 32
    np.testing.assert_allclose(r.history["lr"], [float(schedule(e * steps - 1)) for e in (1, 2, 3)], rtol=1e-6)
    injected = _fit(optax.inject_hyperparams(optax.sgd)(learning_rate=0.05), epochs=1)
    np.testing.assert_allclose(injected.history["lr"], [0.05], rtol=1e-6)
    assert "lr" not in _fit(optax.sgd(0.05), epochs=1).history.columns   # unknowable: no column, not a guess


# --------------------------------------------------------------------------------------------- validation_split
def test_validation_split_holds_out_the_last_examples():
    a = _fit(optim.sgd(0.1), validation_split=0.25)
    b = jn.fit(MODEL, "softmax_cross_entropy", optim.sgd(0.1), (X[:120], Y[:120]), epochs=2, batch_size=32, key=KEY,
               val_data=(X[120:], Y[120:]), progress=False)
    assert a.history["val_loss"] == b.history["val_loss"]
    with pytest.raises(ValueError, match="pass one of them"):
        _fit(optim.sgd(0.1), validation_split=0.2, val_data=(X, Y))
    with pytest.raises(ValueError, match="validation_split"):
        _fit(optim.sgd(0.1), validation_split=1.5)


# --------------------------------------------------------------------------------------------- layers and JAX
def test_every_layer_is_written_as_a_call():
    for layer in (jn.Relu, jn.Sigmoid, jn.Tanh, jn.Softmax, jn.Identity, jn.Flatten, jn.GlobalAvgPool, jn.LogSoftmax):
        assert layer() is layer
    with pytest.raises(TypeError, match="already a layer"):
        jn.Relu(3)
    with pytest.raises(TypeError, match="without calling it"):
        jn.serial(jn.Dense)


def test_models_are_ordinary_arguments_to_jit_vmap_and_grad():
    _, params, state = MODEL.init(KEY, (6,))
    y_eager, _ = jn.apply(MODEL, params, state, X)
    y_jit, _ = jax.jit(jn.apply)(MODEL, params, state, X)
    np.testing.assert_allclose(y_jit, y_eager, rtol=1e-5, atol=1e-6)
    stacked = jax.tree.map(lambda p: jnp.stack([p, 2 * p]), params)
    ys = jax.vmap(lambda m, p: jn.apply(m, p, state, X)[0], in_axes=(None, 0))(MODEL, stacked)
    np.testing.assert_allclose(ys[0], y_eager, rtol=1e-5, atol=1e-6)

    def cost(model, p):
        return jnp.mean(jn.apply(model, p, state, X)[0] ** 2)

    g = jax.grad(cost, argnums=1)(MODEL, params)
    g_closed = jax.grad(lambda p: cost(MODEL, p))(params)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_closed)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------------- metrics=
def test_metrics_add_train_and_val_columns_measured_after_each_epoch():
    def mean_margin(out, y):
        return jnp.mean(out[:, 1] - out[:, 0])

    r = _fit(optim.adam(1e-2), epochs=2, val_data=(X[:50], Y[:50]), eval_batch_size=48,
             metrics={"margin": mean_margin, "sq": "quadratic"})
    for name in ("train_margin", "val_margin", "train_sq", "val_sq"):
        assert name in r.history.columns
    out, _ = jn.apply(MODEL, r.params, r.state, X)
    np.testing.assert_allclose(r.history["train_margin"][-1], float(mean_margin(out, Y)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.history["val_margin"][-1], float(mean_margin(out[:50], Y[:50])), rtol=1e-5, atol=1e-6)
    sq = jn.losses.get("quadratic").value(out[:50], Y[:50])
    np.testing.assert_allclose(r.history["val_sq"][-1], float(sq), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="already a column"):
        _fit(optim.adam(1e-2), metrics={"loss": mean_margin})
    with pytest.raises(TypeError, match="metrics"):
        _fit(optim.adam(1e-2), metrics={"m": 3})
    with pytest.raises(ValueError, match=r"metrics\['nope'\]: unknown loss"):
        _fit(optim.adam(1e-2), metrics=["nope"])
    r = _fit(optim.adam(1e-2), epochs=1, metrics={"q": jn.losses.quadratic})   # a Loss: its value
    assert r.history["train_q"][0] > 0


# --------------------------------------------------------------------------------------------- notebooks and logs
def test_compiling_notice_once_per_configuration(capsys):
    model = jn.serial(jn.Dense(5), jn.Tanh(), jn.Dense(2))   # a configuration no other test compiles

    def run(**kw):
        jn.fit(model, "softmax_cross_entropy", optim.sgd(0.0123), (X, Y), epochs=1, batch_size=40, key=KEY, **kw)
        return capsys.readouterr().err

    assert run(progress=False) == ""
    model = jn.serial(jn.Dense(5), jn.Tanh(), jn.Dense(3))
    assert "compiling the training programs" in run()
    assert "compiling" not in run()   # the same configuration again: compiled already


def test_progress_bar_is_shown_in_a_jupyter_kernel(monkeypatch):
    import sys
    import types

    from jaxnets.training import progress

    assert not progress.shows_bar(True)   # pytest's stderr is not a terminal
    kernel = type("ZMQInteractiveShell", (), {})
    for shell in (kernel(), type("Shell", (kernel,), {})()):   # Jupyter's kernel shell, and a subclass (Colab's)
        monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
        assert progress.shows_bar(True) and not progress.shows_bar(False)
    terminal = type("TerminalInteractiveShell", (), {"config": {}})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal))
    assert not progress.shows_bar(True)


def test_plot_history_returns_a_figure_without_a_path(tmp_path):
    pytest.importorskip("matplotlib")
    r = _fit(optim.sgd(0.1), epochs=2, val_data=(X, Y))
    fig = jn.plot_history(r)
    assert len(fig.axes) == 2 and fig.axes[0].get_xlabel() == "epoch"
    assert jn.plot_history(r.history, tmp_path / "h.png") == str(tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 0


def test_predict_on_one_example_suggests_a_batch_axis():
    _, params, state = MODEL.init(KEY, (6,))
    with pytest.raises(ValueError, match=r"x\[None\]"):
        jn.predict(MODEL, params, state, X[0])


def test_keep_checkpoints_is_an_argument(tmp_path):
    import os

    _fit(optim.sgd(0.1), epochs=4, checkpoint_dir=tmp_path / "run", keep_checkpoints=3)
    assert len([f for f in os.listdir(tmp_path / "run") if not f.startswith(".")]) == 3
    _fit(optim.sgd(0.1), epochs=4, checkpoint_dir=tmp_path / "run1", keep_checkpoints=1)
    assert len([f for f in os.listdir(tmp_path / "run1") if not f.startswith(".")]) == 1
    with pytest.raises(ValueError, match="keep_checkpoints"):
        _fit(optim.sgd(0.1), checkpoint_dir=tmp_path / "run2", keep_checkpoints=0)


def test_a_flax_or_equinox_module_in_serial_is_told_to_use_the_adapter():
    flax_nn = pytest.importorskip("flax.linen")
    eqx = pytest.importorskip("equinox")

    class MyLinen(flax_nn.Module):   # defined in the user's own module, as users do
        @flax_nn.compact
        def __call__(self, x):
            return flax_nn.Dense(3)(x)

    with pytest.raises(TypeError, match=r"Flax module; wrap it with jaxnets.interop.from_flax\(module\)"):
        jn.serial(MyLinen())
    with pytest.raises(TypeError, match="Equinox module; wrap it with jaxnets.interop.from_equinox"):
        jn.serial(eqx.nn.Linear(2, 3, key=KEY))
