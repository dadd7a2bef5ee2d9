"""Greedy layer-wise pretraining: each autoencoder lowers its reconstruction error, later layers train on the
frozen codes of earlier ones, and the stacked network fine-tunes to well above chance."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import losses, optim
from jaxnets.pretraining import Autoencoder, encoder, pretrain_layerwise

DS = jn.data.load("digits")
X, Y = DS.x_train[:1280], DS.y_train[:1280]  # 40 batches of 32


@pytest.fixture(scope="module")
def pre():
    return pretrain_layerwise([64, 24, 12, 10], X, y=Y, epochs=4, key=jax.random.key(0),
                              optimizer=optim.sgd(1.0, momentum=0.9))


def test_each_layer_lowers_its_reconstruction_error(pre):
    assert [(r.layer, r.n_in, r.n_hidden) for r in pre.layers] == [(1, 64, 24), (2, 24, 12)]
    for r in pre.layers:
        assert r.recon_after < 0.5 * r.recon_before, r
        assert len(r.history) == 4 and r.history[-1]["train_loss"] < r.history[0]["train_loss"]


def test_second_autoencoder_trains_on_frozen_first_layer_codes(pre):
    """Layer 2's 'before' error is that of its initial autoencoder on the codes of the trained, frozen layer 1:
    recompute it by hand from the returned encoder params."""
    w, b = (np.asarray(pre.encoder_params[0][k], np.float64) for k in ("w", "b"))
    codes = 1 / (1 + np.exp(-(np.asarray(X, np.float64) @ w + b)))
    ae = Autoencoder(24, 12)
    p0, s0 = jax.jit(lambda k: ae.init(k, (24,))[1:])(jax.random.fold_in(jax.random.key(0), 2))
    recon = np.asarray(jn.predict(ae, p0, s0, codes.astype(np.float32)), np.float64)
    assert pre.layers[1].recon_before == pytest.approx(0.5 * np.mean(np.sum((recon - codes) ** 2, axis=1)), rel=1e-4)


def test_fine_tuned_network_is_the_stacked_encoders(pre):
    assert pre.fine_tune is not None and len(pre.fine_tune.history) == 4
    acc = jn.evaluate(pre.model, losses.softmax_cross_entropy, pre.params, pre.state, (DS.x_test, DS.y_test))
    assert acc["accuracy"] > 0.5  # chance is 0.1
    # same structure as mlp([64, 24, 12, 10]): Dense, Sigmoid, Dense, Sigmoid, Dense
    shapes = [p["w"].shape for p in pre.params if p]
    assert shapes == [(64, 24), (24, 12), (12, 10)]


def test_autoencoder_shapes_and_errors():
    ae = Autoencoder(6, 3, activation="relu", output_activation="identity")
    params, state = jax.eval_shape(lambda k: ae.init(k, (6,))[1:], jax.random.key(0))
    assert params[0][0]["w"].shape == (6, 3) and params[1][0]["w"].shape == (3, 6)
    params = jax.tree_util.tree_map(lambda a: jnp.ones(a.shape, a.dtype), params)
    out, _ = jn.apply(ae, params, state, jnp.ones((2, 6)))
    assert out.shape == (2, 6)
    code, _ = jn.apply(encoder(ae), params[0], ((), ()), jnp.ones((2, 6)))
    assert code.shape == (2, 3)
    with pytest.raises(ValueError, match="n_hidden"):
        Autoencoder(6, 0)
    with pytest.raises(ValueError, match="sizes"):
        pretrain_layerwise([64, 10], X, epochs=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="shape"):
        pretrain_layerwise([32, 8, 10], X, epochs=1, key=jax.random.key(0))
