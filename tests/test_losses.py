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


# ------------------------------------------------------------------ open losses: new costs, aliases, from_function
def _relative_error(g, ref):
    """max|g − ref| / (max(max|g|, max|ref|) + 1e-2·max|ref|): the checker's rule, a scale floor for zeros."""
    g, ref = np.asarray(g), np.asarray(ref)
    scale = max(np.max(np.abs(g)), np.max(np.abs(ref)))
    return np.max(np.abs(g - ref)) / (scale + 1e-2 * np.max(np.abs(ref)) + 1e-300)


def _grad_error(loss, a, y):
    """The hand-written output gradient against jax.grad of the value (float64)."""
    return _relative_error(loss.grad(a, y), jax.grad(loss.value)(a, y))


def _cases():
    """(loss, outputs, targets) in float64: outputs where each loss is defined, dense targets and labels."""
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    z = jax.random.normal(k1, (6, 4), jnp.float64)
    p = jax.nn.softmax(z, axis=-1)
    y_real = jax.random.normal(k2, (6, 4), jnp.float64)
    y_dist = jax.nn.softmax(2 * jax.random.normal(k3, (6, 4), jnp.float64), axis=-1)
    labels = jnp.array([0, 3, 1, 2, 2, 0])
    out = []
    for loss in (losses.mean_squared_error, losses.mean_absolute_error, losses.huber(), losses.huber(0.3)):
        out += [(loss, z, y_real), (loss, z, labels)]
    for loss in (losses.categorical_cross_entropy, losses.kl_divergence):
        out += [(loss, p, y_dist), (loss, p, labels)]
    for loss in (losses.softmax_kl_divergence, losses.softmax_cross_entropy_with_label_smoothing(0.1),
                 losses.softmax_cross_entropy_with_label_smoothing(1.0)):
        out += [(loss, z, y_dist), (loss, z, labels)]
    y01 = jax.random.uniform(k2, (6, 4), jnp.float64)
    out += [(losses.get("bce"), jax.nn.sigmoid(z), y01), (losses.get("bce_with_logits"), z, y01)]
    return out


def test_new_losses_hand_written_gradients_equal_autodiff(x64):
    for loss, a, y in _cases():
        assert _grad_error(loss, a, y) < 1e-10, (loss.name, y.dtype)


def test_a_wrong_gradient_fails_the_same_check(x64):
    # the mutations a hand-written gradient typically suffers: a lost factor, a wrong threshold, the softmax sum
    def r(a, y):
        return a - losses.as_dense_targets(a, y)

    mutated = {
        "mean_squared_error": lambda a, y: r(a, y) / a.size,
        "mean_absolute_error": lambda a, y: jnp.sign(r(a, y)) / a.shape[0],
        "huber(delta=0.3)": lambda a, y: jnp.clip(r(a, y), -0.5, 0.5) / a.size,
        "kl_divergence": lambda a, y: -losses.as_dense_targets(a, y) / a,
        "softmax_cross_entropy_with_label_smoothing(0.1)":
            lambda z, y: (jax.nn.softmax(z) - losses.as_dense_targets(z, y)) / z.shape[0],
    }
    seen = set()
    for loss, a, y in _cases():
        if loss.name in mutated:
            seen.add(loss.name)
            assert _grad_error(loss, a, y) < 1e-10
            assert _grad_error(loss._replace(grad=mutated[loss.name]), a, y) > 1e-3, loss.name
    assert seen == set(mutated)


def test_new_losses_are_the_keras_and_pytorch_numbers(x64):
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    r = z - y
    np.testing.assert_allclose(losses.get("mse").value(jnp.asarray(z), y), np.mean(r ** 2), rtol=1e-13)
    np.testing.assert_allclose(losses.get("mae").value(jnp.asarray(z), y), np.mean(np.abs(r)), rtol=1e-13)
    for delta in (1.0, 0.5):
        rho = np.where(np.abs(r) <= delta, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta))
        np.testing.assert_allclose(losses.huber(delta).value(jnp.asarray(z), y), np.mean(rho), rtol=1e-13)
    smooth_l1 = np.where(np.abs(r) < 1, 0.5 * r ** 2, np.abs(r) - 0.5)   # torch SmoothL1Loss(beta=1)
    np.testing.assert_allclose(losses.get("smooth_l1").value(jnp.asarray(z), y), np.mean(smooth_l1), rtol=1e-13)
    # Keras binary_crossentropy / torch BCELoss: the mean over every entry; with one unit it is jaxnets' cost
    a, t = 1 / (1 + np.exp(-z)), rng.uniform(size=(5, 3))
    bce = -(t * np.log(a) + (1 - t) * np.log(1 - a))
    np.testing.assert_allclose(losses.get("binary_crossentropy").value(jnp.asarray(a), t), bce.mean(), rtol=1e-13)
    np.testing.assert_allclose(losses.get("bce_with_logits").value(jnp.asarray(z), t), bce.mean(), rtol=1e-12)
    np.testing.assert_allclose(losses.get("bce").value(jnp.asarray(a[:, :1]), t[:, :1]),
                               losses.binary_cross_entropy.value(jnp.asarray(a[:, :1]), t[:, :1]), rtol=1e-14)
    # cross-entropies and KL over classes: probabilities (Keras's default) and logits (PyTorch's)
    labels = np.array([0, 2, 1, 1, 0])
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    nll = -np.mean(np.log(p[np.arange(5), labels]))
    np.testing.assert_allclose(losses.get("sparse_categorical_crossentropy").value(jnp.asarray(p), labels), nll,
                               rtol=1e-13)
    np.testing.assert_allclose(losses.get("cross_entropy").value(jnp.asarray(z), labels), nll, rtol=1e-13)
    q = rng.dirichlet(np.ones(3), size=5)
    q[0] = [0.0, 0.4, 0.6]   # 0 ln 0 = 0
    kl = np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1) / p), 0)) / 5
    np.testing.assert_allclose(losses.get("kld").value(jnp.asarray(p), q), kl, rtol=1e-12)
    np.testing.assert_allclose(losses.softmax_kl_divergence.value(jnp.asarray(z), q), kl, rtol=1e-12)
    # label smoothing: y' = (1 − α) y + α/K, as Keras's label_smoothing and torch's CrossEntropyLoss(label_smoothing)
    onehot = np.eye(3)[labels]
    smoothed = 0.9 * onehot + 0.1 / 3
    expected = -np.sum(smoothed * np.log(p)) / 5
    ls = losses.softmax_cross_entropy_with_label_smoothing(0.1)
    np.testing.assert_allclose(ls.value(jnp.asarray(z), labels), expected, rtol=1e-13)
    np.testing.assert_allclose(losses.softmax_cross_entropy_with_label_smoothing(0).value(jnp.asarray(z), labels),
                               nll, rtol=1e-13)


def test_kinks_take_the_subgradient_autodiff_takes(x64):
    a = jnp.array([[0.0, 1.0, -2.0, 0.3]])
    y = jnp.array([[0.0, 0.0, -1.7, 0.0]])   # residuals 0, 1 (= delta), -0.3, 0.3
    for loss in (losses.mean_absolute_error, losses.huber(1.0), losses.huber(0.3)):
        np.testing.assert_array_equal(loss.grad(a, y), jax.grad(loss.value)(a, y))
    assert float(losses.mean_absolute_error.grad(a, y)[0, 0]) == 0.0


def test_new_losses_declare_what_they_take():
    assert losses.categorical_cross_entropy.on_probabilities and losses.kl_divergence.on_probabilities
    assert losses.softmax_kl_divergence.on_logits and losses.get("bce_with_logits").on_logits
    assert losses.get("binary_crossentropy").on_probabilities
    assert losses.softmax_cross_entropy_with_label_smoothing(0.2).on_logits
    with pytest.raises(ValueError, match="kl_divergence: float targets must be probability distributions"):
        losses.kl_divergence.check((3,), np.array([[0.5, 0.6, 0.0]]))
    with pytest.raises(ValueError, match=r"huber\(delta\): a finite number in \(0, inf\]"):
        losses.huber(0)
    with pytest.raises(ValueError, match=r"label_smoothing\(alpha\): a finite number in \[0, 1\]"):
        losses.softmax_cross_entropy_with_label_smoothing(1.5)
    with pytest.raises(TypeError, match="mean_over_units"):
        losses.mean_over_units("bce")
    assert losses.get("huber") is losses.get("smooth_l1") and losses.get("bce") is losses.get("binary_crossentropy")
    assert all(not loss.autodiff_grad for loss in list(losses.NAMES.values()) + list(losses.ALIASES.values()))
    assert losses.Loss(lambda a, y: 0.0, lambda a, y: a, "old").autodiff_grad is False


def test_unknown_name_lists_names_and_aliases():
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*names: .*quadratic.*aliases.*mse \(mean_squared_"):
        losses.get("hinge")


def test_from_function_gradient_is_autodiff_and_marked(x64):
    def my_mse(a, y):
        return jnp.mean((a - y) ** 2)

    loss = losses.from_function(my_mse)
    assert loss.autodiff_grad and loss.name == "my_mse" and not loss.on_logits
    a, y = jax.random.normal(jax.random.key(0), (4, 3)), jnp.ones((4, 3))
    np.testing.assert_allclose(loss.value(a, y), losses.mean_squared_error.value(a, y), rtol=1e-14)
    np.testing.assert_allclose(loss.grad(a, y), losses.mean_squared_error.grad(a, y), rtol=1e-13)
    assert losses.from_function(lambda a, y: jnp.sum(a), name="total").name == "total"
    per_example = losses.from_function(lambda a, y: jnp.sum((a - y) ** 2, axis=-1), name="per_example")
    with pytest.raises(ValueError, match=r"per_example \(from_function\): returned shape \(4,\), not a scalar"):
        per_example.value(a, y)
    with pytest.raises(TypeError, match="already a Loss"):
        losses.from_function(losses.quadratic)
    with pytest.raises(TypeError, match=r"from_function\(f\): a function"):
        losses.from_function(3)


def test_resolve_accepts_a_loss_a_name_an_alias_or_a_function():
    from jaxnets.layers import Dense

    assert losses.resolve(losses.quadratic, "fit") is losses.quadratic
    assert losses.resolve("cross_entropy", "fit") is losses.softmax_cross_entropy
    made = losses.resolve(lambda a, y: jnp.mean(a), "fit")
    assert made.autodiff_grad and made.name == "<lambda>"
    with pytest.raises(ValueError, match=r"^fit: unknown loss 'hinge'"):
        losses.resolve("hinge", "fit")
    with pytest.raises(TypeError, match=r"^evaluate: loss is the layer Dense\(3\), not a loss"):
        losses.resolve(Dense(3), "evaluate")
    with pytest.raises(TypeError, match=r"^fit: loss must be a jaxnets Loss.*got int"):
        losses.resolve(3, "fit")
    with pytest.raises(TypeError, match=r"got the function len, which cannot take \(outputs, targets\)"):
        losses.resolve(len, "fit")
    with pytest.raises(TypeError, match=r"from_function\(f\): len cannot be called as f\(outputs, targets\)"):
        losses.from_function(len)
