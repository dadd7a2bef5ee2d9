"""Cost values against their textbook formulas (numpy), target handling, and weight-only penalties."""
import chex
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
    params = ({"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([5.0, 5.0])}, (),
              {"w": jnp.array([[3.0]]), "b": jnp.array([7.0])})
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
    with pytest.raises(ValueError, match="lmbda must be a finite number >= 0"):
        losses.l2(-1.0, 10)
    with pytest.raises(ValueError, match="training-set size"):
        losses.l1(0.1, 0)


def test_masked_penalty_regularises_a_weight_stored_under_another_key(x64):
    # A user's layer that keeps its kernel under "kernel": the default mask ("w" leaves) misses it, a mask
    # (predicate or pytree of bools) picks it up, and the manual gradient equals jax.grad of the value.
    params = {"kernel": jnp.array([[1.0, -2.0]]), "bias": jnp.array([3.0])}
    assert float(losses.l2(0.5, 10).value(params)) == 0.0
    by_name = losses.l2(0.5, 10, mask=lambda path, leaf: path[-1].key == "kernel")
    by_tree = losses.l2(0.5, 10, mask={"kernel": True, "bias": False})
    for pen in (by_name, by_tree):
        np.testing.assert_allclose(pen.value(params), 0.5 / 20 * 5)
        g = pen.grad(params)
        np.testing.assert_allclose(g["kernel"], 0.05 * params["kernel"])
        np.testing.assert_array_equal(g["bias"], 0.0)
        chex.assert_trees_all_close(g, jax.grad(pen.value)(params), rtol=1e-12)
    l1 = losses.l1(1.0, 2, mask={"kernel": False, "bias": True})
    np.testing.assert_allclose(l1.value(params), 1.5)
    with pytest.raises(ValueError, match="pytree of bools with the params' structure"):
        losses.l2(0.5, 10, mask={"kernel": True}).value(params)
    assert by_name.name == "l2(0.5, 10, masked)"


def test_losses_declare_logits_and_check_targets():
    assert losses.softmax_cross_entropy.on_logits and losses.sigmoid_cross_entropy.on_logits
    assert not losses.quadratic.on_logits and not losses.binary_cross_entropy.on_logits
    with pytest.raises(ValueError, match="1 output unit.*identically 0"):
        losses.softmax_cross_entropy.check((1,), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="probability distributions"):
        losses.softmax_cross_entropy.check((3,), np.array([[0.5, 0.6, 0.0]], np.float32))
    losses.softmax_cross_entropy.check((3,), np.array([[0.2, 0.3, 0.5]], np.float32))
    for loss in (losses.binary_cross_entropy, losses.sigmoid_cross_entropy):
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
            loss.check((2,), np.array([[0.0, 2.0]], np.float32))
        loss.check((2,), np.array([[0.0, 0.7]], np.float32))
