"""The gradient checker itself: mutation tests (deliberately wrong backward passes written here must be caught
and blamed on the right layer), no false alarms on correct models, parameter-free layers, directional finite
differences, the error rule and the report."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import gradcheck, losses
from jaxnets.core import Layer
from jaxnets.layers import BatchNorm, Conv2D, Dropout, Flatten, MaxPool, elementwise

LOSS = losses.softmax_cross_entropy


# ------------------------------------------------------------------------ layers with a deliberately wrong backward
def leaky(slope_in_backward):
    return elementwise(f"Leaky(bwd slope {slope_in_backward})", lambda z: jnp.where(z > 0, z, 0.01 * z),
                       lambda z: jnp.where(z > 0, 1.0, slope_in_backward))


def with_backward(layer, backward, name):
    return Layer(layer.init, layer.forward, backward, name)


def dense_dx_untransposed(n):
    good = jn.Dense(n)

    def backward(params, a, delta):
        grads, _ = good.backward(params, a, delta)
        return grads, delta @ params["w"]            # should be delta @ Wᵀ (W is square here)

    return with_backward(good, backward, "DenseNoTranspose")


def dense_dx_scaled(n):
    good = jn.Dense(n)

    def backward(params, a, delta):
        grads, dx = good.backward(params, a, delta)
        return grads, 2.0 * dx

    return with_backward(good, backward, "DenseDxTwice")


def dense_bias_averaged(n):
    good = jn.Dense(n)

    def backward(params, a, delta):
        grads, dx = good.backward(params, a, delta)
        return {"w": grads["w"], "b": jnp.mean(delta, axis=0)}, dx

    return with_backward(good, backward, "DenseBiasMean")


def softmax_diagonal_only():
    good = jn.Softmax
    return with_backward(good, lambda params, y, dy: ((), dy * y * (1 - y)), "SoftmaxDiagonal")


def standardise(mean_term: bool):
    """x̂ = (x − mean(x)) / √(var(x) + ε) per example; the correct backward is
    (dx̂ − mean(dx̂) − x̂·mean(dx̂ ⊙ x̂)) / σ; the mutant drops the mean(dx̂) term."""
    eps = 1e-5

    def init(key, shape):
        return tuple(shape), (), ()

    def forward(params, state, x, ctx):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        inv = jax.lax.rsqrt(jnp.mean((x - mu) ** 2, axis=-1, keepdims=True) + eps)
        xhat = (x - mu) * inv
        return xhat, state, (xhat, inv)

    def backward(params, cache, dy):
        xhat, inv = cache
        centred = dy - jnp.mean(dy, axis=-1, keepdims=True) if mean_term else dy
        return (), inv * (centred - xhat * jnp.mean(dy * xhat, axis=-1, keepdims=True))

    return Layer(init, forward, backward, "Standardise" if mean_term else "StandardiseNoMean")


def dropout_wrong_in_eval(rate=0.3):
    good = Dropout(rate)

    def backward(params, mask, dy):
        if mask is None:                             # evaluation mode: the forward is the identity
            return (), dy / (1 - rate)               # wrong: scales as in training
        return good.backward(params, mask, dy)

    return with_backward(good, backward, "DropoutEvalBug")


MUTANTS = {  # name -> (layer, width it needs in serial(Dense(w), it, Dense(3)), train mode where it is wrong)
    "wrong derivative": (leaky(0.02), 6, True),
    "missing transpose in dx": (dense_dx_untransposed(6), 6, True),
    "dx off by a factor": (dense_dx_scaled(6), 6, True),
    "bias gradient averaged": (dense_bias_averaged(6), 6, True),
    "softmax Jacobian diagonal only": (softmax_diagonal_only(), 6, True),
    "normalisation missing its mean term": (standardise(False), 6, True),
    "wrong only in eval mode": (dropout_wrong_in_eval(), 6, False),
}
CORRECT = {
    "leaky": (leaky(0.01), 6),
    "dense": (jn.Dense(6), 6),
    "softmax": (jn.Softmax, 6),
    "standardise": (standardise(True), 6),
    "dropout": (Dropout(0.3), 6),
    "batch norm": (BatchNorm(), 6),
}


def _data(n_in=6, batch=5, seed=0):
    x = jax.random.normal(jax.random.key(seed), (batch, n_in))
    return x, jnp.arange(batch) % 3


def _sandwich(layer, width):
    model = jn.serial(jn.Dense(width), layer, jn.Dense(3))
    _, params, state = model.init(jax.random.key(1), (width,))
    return model, params, state


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_check_layer_catches_each_mutant(name):
    layer, width, train = MUTANTS[name]
    report = gradcheck.check_layer(layer, (width,), key=jax.random.key(3), train=train)
    assert not report.passed
    with pytest.raises(AssertionError) as err:
        report.assert_close()
    assert err.value.args[0].splitlines()[0].startswith(f"gradient mismatch in layer {layer.name} (checked alone)")


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_check_model_blames_each_mutant_in_place(x64, name):
    layer, width, train = MUTANTS[name]
    model, params, state = _sandwich(layer, width)
    x, y = _data(width)
    report = gradcheck.check_model(model, LOSS, params, state, x, y, jn.Ctx(train, jax.random.key(4)))
    with pytest.raises(AssertionError) as err:
        report.assert_close()
    first = err.value.args[0].splitlines()[0]
    assert first.startswith(f"gradient mismatch in layer {layer.name} (at 1 of the model, checked in place)"), first
    # the Dense layers around it pass in place: only the mutant's own rows fail there
    failing_in_place = {r.where for r, _, _ in report.failures() if r.check == "in place"}
    assert failing_in_place == {"1"}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_layers_pass_alone_and_in_place(x64, name, train):
    layer, width = CORRECT[name]
    gradcheck.check_layer(layer, (width,), key=jax.random.key(3), train=train).assert_close()
    model, params, state = _sandwich(layer, width)
    x, y = _data(width)
    gradcheck.check_model(model, LOSS, params, state, x, y, jn.Ctx(train, jax.random.key(4))).assert_close()


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_no_false_alarm_for_zero_true_gradients(x64, train):
    # The Dense bias before BatchNorm has a true gradient of exactly 0 in training (the batch mean removes it);
    # both witnesses give round-off of ~1e-17 there, which the scale floor must not call a mismatch.
    model = jn.serial(jn.Dense(6), BatchNorm(), jn.Relu, jn.Dense(3))
    _, params, state = model.init(jax.random.key(1), (4,))
    x, y = _data(4, batch=6)
    report = gradcheck.check_model(model, LOSS, params, state, x, y, jn.Ctx(train))
    report.assert_close()
    bias = next(r for r in report.rows if r.check == "model" and r.path == "0/b")
    assert bias.manual_vs_autodiff[1] < 1e-10
    # Step has a zero derivative everywhere: still a pass
    gradcheck.check_layer(jn.Step, (5,), key=jax.random.key(0)).assert_close()


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_conv_maxpool_nets_pass(x64, train):
    x = jax.random.normal(jax.random.key(1), (3, 6, 6, 1))
    y = jnp.array([0, 1, 2])
    model = jn.serial(Conv2D(3, 3), MaxPool(2), Flatten, jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (6, 6, 1))
    report = gradcheck.check_model(model, LOSS, params, state, x, y, jn.Ctx(train))
    report.assert_close()
    assert {r.where for r in report.rows if r.check == "in place"} == {"0", "1", "2", "3"}
    assert not any(r.note for r in report.rows)
    # With a ReLU before the pooling, windows of exact zeros are ties (four maxima): the pooling layer's entries
    # there are judged by the bracket of the one-sided differences (jaxnets' first-maximum rule and jax.grad's
    # shared one are both inside it), and the report says where; nothing fails.
    model = jn.serial(Conv2D(3, 3), jn.Relu, MaxPool(2), Flatten, jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (6, 6, 1))
    report = gradcheck.check_model(model, LOSS, params, state, x, y, jn.Ctx(train))
    report.assert_close()
    assert {r.where for r in report.rows if r.check == "in place" and r.kinks} == {"2"}
    assert "kink rule applied" in str(report) and not any(r.note == "nearby input" for r in report.rows)


def test_a_wrong_pooling_backward_fails_at_the_nearby_input_too(x64):
    pool = MaxPool(2)
    bad = Layer(pool.init, pool.forward, lambda p, cache, dy: pool.backward(p, cache, 1.5 * dy), "MaxPoolBug")
    model = jn.serial(Conv2D(3, 3), jn.Relu, bad, Flatten, jn.Dense(3))
    _, params, state = model.init(jax.random.key(0), (6, 6, 1))
    x = jax.random.normal(jax.random.key(1), (3, 6, 6, 1))
    with pytest.raises(AssertionError) as err:
        gradcheck.check_model(model, LOSS, params, state, x, jnp.array([0, 1, 2])).assert_close()
    assert err.value.args[0].startswith("gradient mismatch in layer MaxPoolBug (at 2 of the model")


@pytest.mark.parametrize("layer", [jn.Relu, jn.Tanh, jn.Softmax, leaky(0.01), Flatten], ids=lambda l: l.name)
def test_parameter_free_layers_alone(x64, layer):
    report = gradcheck.check_layer(layer, (4,), key=jax.random.key(0))
    assert [r.leaf for r in report.rows] == ["input"]
    report.assert_close()
    model = jn.serial(layer)
    x, _ = _data(4)
    y = jax.random.normal(jax.random.key(5), (5, 4))
    for fd in (True, False):
        r = gradcheck.compare(model, losses.quadratic, ((),), ((),), x, y, finite_diff=fd)
        assert [row.leaf for row in r.rows] == ["input"]
        r.assert_close()
    bad = gradcheck.compare(jn.serial(leaky(0.5)), losses.quadratic, ((),), ((),), -jnp.abs(x), y, finite_diff=False)
    with pytest.raises(AssertionError, match="input"):
        bad.assert_close()


def test_nested_serial_is_walked_to_the_leaves(x64):
    inner = jn.serial(jn.Dense(6), leaky(0.02), name="block")
    model = jn.serial(jn.Dense(6), jn.Tanh, inner, jn.Dense(3))
    _, params, state = model.init(jax.random.key(1), (4,))
    x, y = _data(4)
    report = gradcheck.check_model(model, LOSS, params, state, x, y)
    with pytest.raises(AssertionError) as err:
        report.assert_close()
    assert err.value.args[0].startswith("gradient mismatch in layer Leaky(bwd slope 0.02) (at 2/1 of the model")
    wheres = [r.where for r in report.rows if r.check == "in place"]
    assert "2" in wheres and "2/0" in wheres and "2/1" in wheres  # the block and its children


def test_a_wrong_combinator_is_blamed_when_its_children_pass(x64):
    # A combinator whose backward drops its second child's contribution: its children pass in place, it fails.
    good = jn.serial(jn.Dense(6), jn.Tanh)

    def backward(params, cache, dy):
        dp, dx = good.backward(params, cache, dy)
        return (dp[0], ()), dx * 0.5

    bad = good._replace(backward=backward, name="BadRouting")
    model = jn.serial(jn.Dense(6), bad, jn.Dense(3))
    _, params, state = model.init(jax.random.key(1), (4,))
    x, y = _data(4)
    with pytest.raises(AssertionError) as err:
        gradcheck.check_model(model, LOSS, params, state, x, y).assert_close()
    assert err.value.args[0].startswith("gradient mismatch in layer BadRouting (at 1 of the model")


def test_a_wrong_loss_gradient_is_blamed_on_the_loss(x64):
    wrong = losses.Loss(losses.quadratic.value, lambda a, y: 2 * losses.quadratic.grad(a, y), "double quadratic")
    model, params, state = _sandwich(jn.Tanh, 6)
    x, _ = _data(6)
    y = jax.random.normal(jax.random.key(2), (5, 3))
    with pytest.raises(AssertionError) as err:
        gradcheck.check_model(model, wrong, params, state, x, y).assert_close()
    assert err.value.args[0].startswith("gradient mismatch in loss double quadratic")


def test_directional_differences_scale_and_catch_a_bug():
    # float32 1.06M-parameter MLP: directional finite differences are chosen automatically.
    model = jn.models.mlp([784, 1024, 250, 10], "relu")
    _, params, state = model.init(jax.random.key(0), (784,))
    assert sum(a.size for a in jax.tree_util.tree_leaves(params)) > 1_000_000
    x = jax.random.uniform(jax.random.key(1), (8, 784))
    y = jnp.arange(8) % 10
    report = gradcheck.compare(model, LOSS, params, state, x, y)
    assert report.fd == "4 directions"
    report.assert_close()

    def broken_backward(p, cache, dy):  # the hand-written ∂C/∂W of the middle Dense layer 1 % too large
        dparams, dx = model.backward(p, cache, dy)
        dparams = list(dparams)
        dparams[2] = {"w": 1.01 * dparams[2]["w"], "b": dparams[2]["b"]}
        return tuple(dparams), dx

    broken = model._replace(backward=broken_backward)
    bad = gradcheck.compare(broken, LOSS, params, state, x, y, finite_diff="directions")
    failing = {(r.path, c) for r, c, _ in bad.failures()}
    assert ("2/w", "manual_vs_fd") in failing and ("2/w", "manual_vs_autodiff") in failing
    assert not any(p.startswith("0/") for p, _ in failing)


def test_directional_estimate_matches_projection(x64):
    params = {"a": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([[0.3, 0.7]])}

    def fn(p):
        return jnp.sum(p["a"] ** 3) + jnp.sum(jnp.sin(p["b"]))

    grads = {"a": 3 * params["a"] ** 2, "b": jnp.cos(params["b"])}
    dirs = gradcheck.random_directions(jax.random.key(0), params, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs["a"], axis=1), 1.0, rtol=1e-12)
    est = gradcheck.directional_differences(fn, params, dirs)
    proj = gradcheck.project(grads, dirs)
    for k in params:
        np.testing.assert_allclose(est[k], proj[k], rtol=1e-8)


def test_report_header_dtypes_and_bad_tolerances():
    model, params, state = _sandwich(jn.Tanh, 6)
    x, y = _data(6)
    report = gradcheck.check_model(model, LOSS, params, state, x, y)
    text = str(report)
    assert "manual~autodiff in float32; finite differences in float64 (coordinates)" in text.splitlines()[0]
    report.assert_close()
    for bad in (-1.0, float("nan"), "1e-3"):
        with pytest.raises(ValueError, match="tolerance must be a number >= 0"):
            report.assert_close(rtol=bad)
    with pytest.raises(ValueError, match="finite_diff"):
        gradcheck.compare(model, LOSS, params, state, x, y, finite_diff="sometimes")


def test_checking_the_same_model_again_compiles_nothing_and_a_changed_backward_is_still_caught():
    compiles = []

    def listen(name, seconds, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(seconds)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        model = jn.serial(jn.Dense(6), BatchNorm(), jn.Relu, jn.Dense(3))
        _, params, state = model.init(jax.random.key(0), (5,))
        x, y = jax.random.normal(jax.random.key(1), (8, 5)), jnp.arange(8) % 3
        ctx = jn.Ctx(train=True, key=jax.random.key(2))
        first = gradcheck.check_model(model, LOSS, params, state, x, y, ctx)
        assert compiles, "the first check compiles its programs"
        x2 = jax.block_until_ready(2 * x)   # new values, same shapes (computed before counting: eager ops compile)
        compiles.clear()
        again = gradcheck.check_model(model, LOSS, params, state, x2, y, ctx)
        assert compiles == []
        assert len(again.rows) == len(first.rows) and not again.failures()
        # the memo is keyed by the layers themselves: the same Dense(3) (same init and forward) with a wrong
        # backward is compiled and checked anew, and blamed
        last = model.children[3]

        def bias_mean(p, a, delta):
            grads, dx = last.backward(p, a, delta)
            return {"w": grads["w"], "b": jnp.mean(delta, axis=0)}, dx

        wrong = model.rebuild(*model.children[:3], with_backward(last, bias_mean, "DenseBiasMean"))
        report = gradcheck.check_model(wrong, LOSS, params, state, x, y, ctx)
        assert compiles, "a changed backward is compiled, not served from the memo"
        with pytest.raises(AssertionError, match="gradient mismatch in layer DenseBiasMean"):
            report.assert_close()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
