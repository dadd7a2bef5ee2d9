"""Cost values against their textbook formulas (numpy), target handling, and weight-only penalties."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import losses


def test_values_match_textbook_formulas(x64):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3))
    a = 1 / (1 + np.exp(-z))
    y = rng.uniform(size=(5, 3))
    np.testing.assert_allclose(losses.quadratic.value(jnp.asarray(a), y), 0.5 * np.sum((a - y) ** 2) / 5, rtol=1e-13)
    bce = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / 5
    np.testing.assert_allclose(losses.binary_cross_entropy.value(jnp.asarray(a), y), bce, rtol=1e-13)
    np.testing.assert_allclose(losses.sigmoid_cross_entropy.value(jnp.asarray(z), y), bce, rtol=1e-12)
    labels = np.array([0, 2, 1, 1, 0])
    log_softmax = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    nll = -np.mean(log_softmax[np.arange(5), labels])
    np.testing.assert_allclose(losses.softmax_cross_entropy.value(jnp.asarray(z), labels), nll, rtol=1e-13)


def test_logit_losses_are_stable_and_fuse_a_minus_y(x64):
    z = jnp.array([[1000.0, -1000.0, 0.0]])
    y = jnp.array([[1.0, 0.0, 0.0]])
    assert np.isfinite(float(losses.sigmoid_cross_entropy.value(z, y)))
    assert np.isfinite(float(losses.softmax_cross_entropy.value(z, y)))
    np.testing.assert_allclose(losses.sigmoid_cross_entropy.grad(z, y), jax.nn.sigmoid(z) - y, atol=1e-15)
    np.testing.assert_allclose(losses.softmax_cross_entropy.grad(z, y), jax.nn.softmax(z) - y, atol=1e-15)


def test_integer_labels_equal_one_hot(x64):
    z = jax.random.normal(jax.random.key(0), (4, 3))
    labels = jnp.array([2, 0, 1, 2])
    onehot = jax.nn.one_hot(labels, 3, dtype=z.dtype)
    for loss in (losses.quadratic, losses.softmax_cross_entropy, losses.sigmoid_cross_entropy):
        np.testing.assert_allclose(loss.value(z, labels), loss.value(z, onehot), rtol=1e-14)
        np.testing.assert_allclose(loss.grad(z, labels), loss.grad(z, onehot), rtol=1e-14)
    # a single output unit takes 0/1 labels as a column
    col = jax.random.normal(jax.random.key(1), (4, 1))
    np.testing.assert_allclose(losses.sigmoid_cross_entropy.value(col, jnp.array([0, 1, 1, 0])),
                               losses.sigmoid_cross_entropy.value(col, jnp.array([[0.0], [1.0], [1.0], [0.0]])))


def test_target_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"targets of shape \(4, 2\).*outputs of shape \(4, 3\)"):
        losses.quadratic.value(jnp.zeros((4, 3)), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="one unit per class"):
        losses.softmax_cross_entropy.grad(jnp.zeros((4, 3)), jnp.zeros((5,), jnp.int32))
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("hinge")


def test_penalties_touch_weights_only(x64):
    params = ({"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([5.0, 5.0])}, (), {"w": jnp.array([[3.0]]), "b": jnp.array([7.0])})
    l2 = losses.l2(0.5, 10)
    np.testing.assert_allclose(l2.value(params), 0.5 / 20 * (1 + 4 + 9))
    g = l2.grad(params)
    np.testing.assert_allclose(g[0]["w"], 0.05 * params[0]["w"])
    np.testing.assert_array_equal(g[0]["b"], 0.0)
    np.testing.assert_array_equal(g[2]["b"], 0.0)
    l1 = losses.l1(0.5, 10)
    np.testing.assert_allclose(l1.value(params), 0.05 * (1 + 2 + 3))
    np.testing.assert_allclose(l1.grad(params)[0]["w"], [[0.05, -0.05]])
    np.testing.assert_array_equal(l1.grad(params)[2]["b"], 0.0)


def test_penalty_arguments_are_validated():
    with pytest.raises(ValueError, match="lmbda must be >= 0"):
        losses.l2(-1.0, 10)
    with pytest.raises(ValueError, match="training-set size"):
        losses.l1(0.1, 0)
