"""fit_ensemble (K members in one vmapped program) against fit alone; voting against a numpy vote."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import losses, optim
from jaxnets.ensembles import combine, ensemble_accuracy, fit_ensemble, member_outputs, vote
from jaxnets.training import EarlyStopping

DS = jn.data.load("digits")
X, Y = DS.x_train[:320], DS.y_train[:320]      # 10 batches of 32: no remainder step
XV, YV = DS.x_test[:120], DS.y_test[:120]
MODEL = jn.models.mlp([64, 16, 10])
LOSS = losses.softmax_cross_entropy
OPT = optim.sgd(0.3, momentum=0.9)
KEYS = jax.random.split(jax.random.key(42), 3)
EPOCHS = 3


@pytest.fixture(scope="module")
def ens():
    return fit_ensemble(MODEL, LOSS, OPT, (X, Y), epochs=EPOCHS, batch_size=32, keys=KEYS, val_data=(XV, YV),
                        progress=False)


def test_members_are_stacked(ens):
    assert ens.size == 3
    for leaf in jax.tree_util.tree_leaves(ens.params):
        assert leaf.shape[0] == 3
    assert [len(h) for h in ens.histories] == [EPOCHS] * 3
    assert list(ens.epochs_run) == [EPOCHS] * 3 and not ens.diverged.any() and not ens.stopped_early.any()
    w0 = ens.params[0]["w"]
    assert not jnp.allclose(w0[0], w0[1])  # different inits and data orders


def test_member_equals_fit_alone(ens):
    alone = jn.fit(MODEL, LOSS, OPT, (X, Y), epochs=EPOCHS, batch_size=32, key=KEYS[1], val_data=(XV, YV),
                   progress=False)
    member = ens.member(1)
    assert isinstance(member, jn.FitResult) and member.stop_reason == alone.stop_reason == "completed"
    chex.assert_trees_all_close(member.params, alone.params, rtol=0, atol=1e-6)
    assert member.history == ens.histories[1] and member.best_epoch == ens.best_epochs[1]
    for a, b in zip(alone.history, ens.histories[1]):
        for col in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(b[col], a[col], rtol=1e-6, atol=1e-7)
    assert ens.best_epochs[1] == alone.best_epoch


def test_votes_match_a_numpy_vote(ens):
    outs = np.stack([np.asarray(jn.predict(MODEL, ens.member(k).params, ens.member(k).state, XV))
                     for k in range(3)])  # (K, N, 10) logits
    labels = outs.argmax(-1)
    counts = np.stack([(labels == c).sum(0) for c in range(10)], -1)
    want_plurality = counts.argmax(-1)  # numpy's argmax: ties to the lowest class
    z = outs - outs.max(-1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    want_mean = probs.mean(0).argmax(-1)
    np.testing.assert_array_equal(np.asarray(vote(MODEL, ens.params, ens.state, XV, how="plurality")),
                                  want_plurality)
    np.testing.assert_array_equal(np.asarray(vote(MODEL, ens.params, ens.state, XV, how="mean")), want_mean)
    acc = ensemble_accuracy(MODEL, ens.params, ens.state, (XV, YV))
    np.testing.assert_allclose(acc["members"], (labels == YV).mean(1), atol=1e-6)
    assert acc["plurality"] == pytest.approx(float((want_plurality == YV).mean()))
    assert acc["mean"] > 0.5  # three 3-epoch members on digits are far above chance (0.1)
    np.testing.assert_allclose(np.asarray(member_outputs(MODEL, ens.params, ens.state, XV)), outs, atol=1e-5)


def test_combine_rules_by_hand():
    # 3 members, 2 examples, 3 classes (logits)
    out = jnp.array([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                     [[0.0, 2.0, 0.0], [0.0, 0.0, 1.0]],
                     [[0.0, 0.0, 9.0], [0.0, 1.0, 0.0]]])
    # example 0: one vote each -> tie -> class 0; example 1: class 1 twice
    np.testing.assert_array_equal(np.asarray(combine(out, "plurality")), [0, 1])
    # mean softmax: member 2's confident class 2 wins example 0
    np.testing.assert_array_equal(np.asarray(combine(out, "mean")), [2, 1])
    # probabilities are averaged as given (no softmax): 0.5+0.4+0.0 > ...
    p = jnp.array([[[0.5, 0.5, 0.0]], [[0.4, 0.0, 0.6]], [[0.0, 0.45, 0.55]]])
    np.testing.assert_array_equal(np.asarray(combine(p, "mean", probabilities=True)), [2])  # 1.15/3 for class 2
    # one output unit: logits threshold 0, probabilities 0.5
    z = jnp.array([[[1.0], [-1.0]], [[-0.5], [-2.0]], [[0.2], [3.0]]])
    np.testing.assert_array_equal(np.asarray(combine(z, "plurality")), [1, 0])
    np.testing.assert_array_equal(np.asarray(combine(z, "mean")), [1, 0])  # mean sigmoid: 0.55.., 0.42..
    with pytest.raises(ValueError, match="plurality"):
        combine(out, "median")


def test_early_stopping_per_member_freezes_it():
    """min_delta is huge, so no epoch after the first counts as an improvement: with patience 1 every member
    stops after epoch 2 (inside the program), keeps its epoch-1 params (restore_best) and is frozen."""
    res = fit_ensemble(MODEL, LOSS, OPT, (X, Y), epochs=EPOCHS + 2, batch_size=32, keys=KEYS, val_data=(XV, YV),
                       early_stopping=EarlyStopping(patience=1, min_delta=1e9), progress=False)
    assert list(res.epochs_run) == [2, 2, 2] and res.stopped_early.all()
    assert res.best_epochs == [1, 1, 1]
    one = jn.fit(MODEL, LOSS, OPT, (X, Y), epochs=1, batch_size=32, key=KEYS[1], val_data=(XV, YV), progress=False)
    chex.assert_trees_all_close(res.member(1).params, one.params, rtol=0, atol=1e-6)
    assert np.asarray(res.train_state.step).tolist() == [20, 20, 20]  # two epochs of 10 steps, then frozen


def test_bad_keys():
    with pytest.raises(ValueError, match="split"):
        fit_ensemble(MODEL, LOSS, OPT, (X, Y), epochs=1, batch_size=32, keys=jax.random.key(0), progress=False)


def test_voting_reads_the_last_layers_metadata_not_its_name():
    # A user's layer called "Softmax" that outputs unnormalised scores declares nothing: its outputs are logits.
    # A layer under any name that declares probability outputs is averaged as probabilities.
    from jaxnets.ensembles import outputs_are_probabilities

    scores = jn.layers.elementwise("Softmax", lambda z: 3 * z, lambda z: 3 * jnp.ones_like(z))
    probs = jn.layers.elementwise("Squash", jax.nn.sigmoid, lambda y: y * (1 - y), derivative_of="output",
                                  meta=jn.Meta(outputs="probabilities"))
    assert not outputs_are_probabilities(jn.serial(jn.Dense(3), scores))
    assert outputs_are_probabilities(jn.serial(jn.Dense(3), probs))
    assert outputs_are_probabilities(jn.serial(jn.Dense(3), jn.Softmax))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    for last, as_probabilities in ((scores, False), (probs, True)):
        model = jn.serial(jn.Dense(3), last)
        params, state = jax.vmap(lambda k: model.init(k, (4,))[1:])(jax.random.split(jax.random.key(0), 5))
        out = member_outputs(model, params, state, x)
        for how in ("plurality", "mean"):
            np.testing.assert_array_equal(vote(model, params, state, x, how=how),
                                          combine(out, how, probabilities=as_probabilities))
    # the two readings really differ on these outputs, so the test can tell them apart
    model = jn.serial(jn.Dense(3), scores)
    params, state = jax.vmap(lambda k: model.init(k, (4,))[1:])(jax.random.split(jax.random.key(0), 5))
    out = member_outputs(model, params, state, x)
    assert not np.array_equal(combine(out, "mean", probabilities=True), combine(out, "mean", probabilities=False))
