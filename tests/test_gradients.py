"""Manual backprop vs jax.grad vs finite differences, over activations × losses × penalties × architectures."""
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import jaxnets as jn
from jaxnets import gradcheck, gradients, losses

HIDDEN = {"Sigmoid": jn.Sigmoid, "Tanh": jn.Tanh, "Relu": jn.Relu, "Identity": jn.Identity}
# Output heads each loss accepts: losses on probabilities need outputs in (0, 1); logit losses take raw scores.
HEADS = {
    "quadratic": [jn.Sigmoid, jn.Tanh, jn.Identity, jn.Softmax],
    "binary_cross_entropy": [jn.Sigmoid, jn.Softmax],
    "sigmoid_cross_entropy": [jn.Identity],
    "softmax_cross_entropy": [jn.Identity],
}
PENALTIES = [None, ("l2", 0.7), ("l1", 0.3)]


def build(hidden, head, widths):
    layers = []
    for w in widths[:-1]:
        layers += [jn.Dense(w), hidden]
    layers += [jn.Dense(widths[-1]), head]
    return jn.serial(*layers)


def penalty_of(spec, n=50):
    if spec is None:
        return None
    kind, lmbda = spec
    return getattr(losses, kind)(lmbda, n)


def problem(seed, widths, n_in, batch, integer_labels):
    kx, ky = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (batch, n_in))
    k = widths[-1]
    if integer_labels and k > 1:
        y = jax.random.randint(ky, (batch,), 0, k)
    else:
        y = jax.random.uniform(ky, (batch, k))
        y = (y > 0.5).astype(x.dtype) if integer_labels else y
    return x, y


# Every hidden activation meets every loss, and every loss meets every penalty (cycled), on seeded random
# architectures of depth 1-4 and widths 1-16.
COMBOS = []
for i, (act, loss_name) in enumerate(itertools.product(HIDDEN, HEADS)):
    heads = HEADS[loss_name]
    COMBOS.append((act, loss_name, heads[i % len(heads)].name, PENALTIES[i % len(PENALTIES)], i))


def _arch(seed):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5))
    return [int(w) for w in rng.integers(1, 17, size=depth)], int(rng.integers(1, 9)), int(rng.integers(1, 7))


def _setup(act, loss_name, head_name, pen, seed):
    head = {h.name: h for hs in HEADS.values() for h in hs}[head_name]
    widths, n_in, batch = _arch(seed)
    if head_name == "Softmax" or loss_name == "softmax_cross_entropy":
        widths[-1] = max(widths[-1], 2)
    model = build(HIDDEN[act], head, widths)
    x, y = problem(seed, widths, n_in, batch, integer_labels=(seed % 2 == 0))
    _, params, state = model.init(jax.random.key(seed + 100), (n_in,))
    return model, losses.get(loss_name), penalty_of(pen), params, state, x, y


@pytest.mark.parametrize("act,loss_name,head_name,pen,seed", COMBOS)
def test_three_way_float64(x64, act, loss_name, head_name, pen, seed):
    model, loss, penalty, params, state, x, y = _setup(act, loss_name, head_name, pen, seed)
    assert jax.tree_util.tree_leaves(params)[0].dtype == jnp.float64
    report = gradcheck.compare(model, loss, params, state, x, y, jn.Ctx(train=True), penalty)
    report.assert_close(1e-10, fd_rtol=1e-6)


@pytest.mark.parametrize("act,loss_name,head_name,pen,seed", COMBOS)
def test_manual_vs_autodiff_float32(act, loss_name, head_name, pen, seed):
    model, loss, penalty, params, state, x, y = _setup(act, loss_name, head_name, pen, seed)
    ctx = jn.Ctx(train=True)
    manual = jax.jit(gradients.manual(model, loss, penalty))
    auto = jax.jit(gradients.autodiff(model, loss, penalty))
    (v_m, _), g_m = manual(params, state, x, y, ctx)
    (v_a, _), g_a = auto(params, state, x, y, ctx)
    # eager (un-jitted) manual backprop gives the same numbers as the compiled one
    (v_mj, _), g_mj = (gradients.manual(model, loss, penalty)(params, state, x, y, ctx) if seed % 4 == 0
                       else ((v_m, 0), g_m))
    for g in (g_a, g_mj):
        for a, b in zip(jax.tree_util.tree_leaves(g_m), jax.tree_util.tree_leaves(g)):
            scale = max(float(jnp.max(jnp.abs(b))), 1e-30)
            assert float(jnp.max(jnp.abs(a - b))) / scale <= 1e-5
    np.testing.assert_allclose(v_m, v_a, rtol=1e-6)
    np.testing.assert_allclose(v_m, v_mj, rtol=1e-6)


@settings(max_examples=12, deadline=None)
@given(depth=st.integers(1, 4), width=st.integers(1, 16), n_in=st.integers(1, 8), batch=st.integers(1, 6),
       act=st.sampled_from(sorted(HIDDEN)), seed=st.integers(0, 2**16))
def test_property_manual_equals_autodiff_float64(depth, width, n_in, batch, act, seed):
    with jax.enable_x64(True):
        model = build(HIDDEN[act], jn.Identity, [width] * depth + [3])
        x, y = problem(seed, [3], n_in, batch, integer_labels=True)
        _, params, state = model.init(jax.random.key(seed), (n_in,))
        ctx = jn.Ctx(train=True)
        (_, _), g_m = gradients.manual(model, losses.softmax_cross_entropy)(params, state, x, y, ctx)
        (_, _), g_a = gradients.autodiff(model, losses.softmax_cross_entropy)(params, state, x, y, ctx)
        chex.assert_trees_all_close(g_m, g_a, rtol=1e-10, atol=1e-14)


def test_step_unit_has_zero_gradient_both_ways(x64):
    model = jn.serial(jn.Dense(4), jn.Step, jn.Dense(2), jn.Sigmoid)
    _, params, state = model.init(jax.random.key(0), (3,))
    x, y = problem(1, [2], 3, 5, integer_labels=False)
    report = gradcheck.compare(model, losses.quadratic, params, state, x, y, finite_diff=False)
    report.assert_close(1e-12)
    (_, _), g = gradients.manual(model, losses.quadratic)(params, state, x, y, jn.Ctx(True))
    assert float(jnp.max(jnp.abs(g[0]["w"]))) == 0.0  # nothing flows back through the step
    assert float(jnp.max(jnp.abs(g[2]["w"]))) > 0.0


def test_per_example_gradients_by_vmap_are_the_batch_gradient_terms(x64):
    model = build(jn.Tanh, jn.Sigmoid, [7, 3])
    x, y = problem(3, [3], 5, 8, integer_labels=False)
    _, params, state = model.init(jax.random.key(3), (5,))
    for source in (gradients.manual, gradients.autodiff):
        grad_fn = source(model, losses.quadratic)
        (_, _), batch_grad = grad_fn(params, state, x, y, jn.Ctx(True))
        per_example = jax.vmap(lambda xi, yi: grad_fn(params, state, xi[None], yi[None], jn.Ctx(True))[1])(x, y)
        assert jax.tree_util.tree_leaves(per_example)[0].shape[0] == 8
        mean = jax.tree_util.tree_map(lambda g: jnp.mean(g, axis=0), per_example)
        chex.assert_trees_all_close(mean, batch_grad, rtol=1e-12, atol=1e-15)


def test_as_custom_vjp_passes_check_grads(x64):
    from jax.test_util import check_grads

    model = build(jn.Sigmoid, jn.Softmax, [6, 4])
    _, params, state = model.init(jax.random.key(5), (3,))
    x, _ = problem(5, [4], 3, 4, integer_labels=True)
    f = gradients.as_custom_vjp(model)
    check_grads(lambda p, xx: f(p, state, xx)[0], (params, x), order=1, modes=["rev"])
    # and the manual backward really is the one used: its VJP equals model.backward's output
    y, vjp = jax.vjp(lambda p, xx: f(p, state, xx)[0], params, x)
    dy = jnp.ones_like(y)
    dparams, dx = vjp(dy)
    _, _, cache = model.forward(params, state, x, jn.Ctx())
    exp_dparams, exp_dx = model.backward(params, cache, dy)
    chex.assert_trees_all_equal(dparams, exp_dparams)
    chex.assert_trees_all_equal(dx, exp_dx)


def test_as_custom_vjp_inside_a_larger_program(x64):
    model = build(jn.Tanh, jn.Identity, [5, 2])
    _, params, state = model.init(jax.random.key(8), (4,))
    x, y = problem(8, [2], 4, 6, integer_labels=True)
    f = gradients.as_custom_vjp(model)

    def loss_with_extra(p):  # the network inside an outer program with its own terms
        out, _ = f(p, state, x)
        return losses.softmax_cross_entropy.value(out, y) + 0.1 * jnp.sum(p[0]["w"] ** 2)

    def reference(p):
        out, _ = jn.apply(model, p, state, x)
        return losses.softmax_cross_entropy.value(out, y) + 0.1 * jnp.sum(p[0]["w"] ** 2)

    chex.assert_trees_all_close(jax.jit(jax.grad(loss_with_extra))(params), jax.grad(reference)(params), rtol=1e-12)


def test_gradcheck_report_names_the_leaf_that_disagrees(x64):
    def broken_backward(params, cache, dy):  # drops the bias gradient's batch sum
        dparams, dx = jn.Dense(3).backward(params, cache, dy)
        return {"w": dparams["w"], "b": dparams["b"] * 0.5}, dx

    good = jn.Dense(3)
    bad = jn.Layer(good.init, good.forward, broken_backward, "BrokenDense")
    model = jn.serial(jn.Dense(4), jn.Tanh, bad)
    _, params, state = model.init(jax.random.key(0), (2,))
    x, y = problem(0, [3], 2, 5, integer_labels=False)
    report = gradcheck.compare(model, losses.quadratic, params, state, x, y)
    with pytest.raises(AssertionError, match=r"at 2/b \(layer BrokenDense"):
        report.assert_close(1e-8)
    text = str(report)
    assert "BrokenDense" in text and "worst" in text
    assert report.per_layer()["BrokenDense"]["manual_vs_autodiff"] > 0.1


def test_finite_differences_of_a_known_function(x64):
    params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    fd = gradcheck.finite_differences(lambda p: jnp.sum(p["a"] ** 3) + jnp.sin(p["b"]), params)
    chex.assert_trees_all_close(fd, {"a": 3 * params["a"] ** 2, "b": jnp.cos(params["b"])}, rtol=1e-9)


def test_relu_derivative_at_exact_zero_matches_autodiff(x64):
    # A dead layer makes the next pre-activation exactly b = 0: both sources must take ReLU'(0) = 0.
    model = jn.serial(jn.Dense(3, w_init=jn.initializers.zeros), jn.Relu, jn.Dense(2))
    _, params, state = model.init(jax.random.key(0), (2,))
    x, y = problem(0, [2], 2, 4, integer_labels=False)
    gradcheck.compare(model, losses.quadratic, params, state, x, y, finite_diff=False).assert_close(1e-12)
