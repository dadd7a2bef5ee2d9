"""FanOut, branches, FanInSum, FanInConcat, residual and the new layers (LeakyRelu, Elu, Gelu, Softplus, LogSoftmax,
LayerNorm, GlobalAvgPool, bias-free Dense/Conv2D): hand-written backward vs autodiff vs finite differences in
float64 (dx included, alone and composed, train and eval), float32 tolerances, bad input at init, `summary`."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import gradcheck, losses
from jaxnets.layers import (BatchNorm, Conv2D, Dense, Dropout, Elu, FanInConcat, FanInSum, FanOut, Flatten, Gelu,
                            GlobalAvgPool, LayerNorm, LeakyRelu, LogSoftmax, MaxPool, Relu, Softplus, Tanh, branches,
                            residual)

LOSS = losses.softmax_cross_entropy
WORST = {}   # layer/model label -> worst float64 manual~autodiff relative error (printed at the end, -s)

NEW_LAYERS = {
    "LeakyRelu": (LeakyRelu(0.01), (7,)),
    "LeakyRelu(0.3)": (LeakyRelu(0.3), (7,)),
    "Elu": (Elu(), (7,)),
    "Elu(0.5)": (Elu(0.5), (7,)),
    "Gelu": (Gelu(), (7,)),
    "Gelu(exact)": (Gelu(approximate=False), (7,)),
    "Softplus": (Softplus, (7,)),
    "LogSoftmax": (LogSoftmax, (7,)),
    "LayerNorm": (LayerNorm(), (7,)),
    "LayerNorm on images": (LayerNorm(), (3, 3, 4)),
    "GlobalAvgPool": (GlobalAvgPool, (4, 5, 3)),
    "Dense(use_bias=False)": (Dense(5, use_bias=False), (6,)),
    "Conv2D(use_bias=False)": (Conv2D(3, 3, use_bias=False), (5, 5, 2)),
}


def _record(label, report):
    WORST[label] = max(WORST.get(label, 0.0), report.worst("manual_vs_autodiff"))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", sorted(NEW_LAYERS))
def test_new_layers_alone(name, train):
    layer, shape = NEW_LAYERS[name]
    report = gradcheck.check_layer(layer, shape, key=jax.random.key(0), train=train, batch_size=3)
    report.assert_close()
    _record(name, report)


def mlp_blocks():
    """name -> (model, per-example input shape)"""
    return {
        "residual, identity shortcut": (jn.serial(Dense(8), residual(Dense(8), Tanh), Dense(3)), (5,)),
        "residual with projection": (jn.serial(residual(Dense(6), Relu, Dense(4),
                                                        shortcut=Dense(4, use_bias=False)), Dense(3)), (5,)),
        "nested residuals": (jn.serial(Dense(6), residual(residual(Dense(6), Tanh), Dense(6), Elu()), Dense(3)),
                             (5,)),
        "fan-out into branches with BatchNorm and Dropout": (
            jn.serial(Dense(6), FanOut(3), branches(jn.serial(Dense(6), BatchNorm(), Relu),
                                                     jn.serial(Dropout(0.4), Dense(6)), Tanh), FanInSum,
                      Dense(3)), (5,)),
        "fan-out and concat": (jn.serial(FanOut(2), branches(Dense(4), jn.serial(Dense(3), Gelu())), FanInConcat(),
                                         Dense(3)), (5,)),
        "LayerNorm in a residual block": (jn.serial(Dense(6), residual(LayerNorm(), Dense(6), Gelu()), LogSoftmax),
                                          (5,)),
        "bias-free Dense before BatchNorm": (jn.serial(Dense(6, use_bias=False), BatchNorm(), LeakyRelu(), Dense(3)),
                                             (5,)),
    }


def conv_blocks():
    return {
        "conv residual with 1x1 projection": (
            jn.serial(Conv2D(4, 3, padding="SAME"), residual(Conv2D(6, 3, padding="SAME", use_bias=False), BatchNorm(),
                                                              Relu, shortcut=Conv2D(6, 1, use_bias=False)),
                      GlobalAvgPool, Dense(3)), (6, 6, 2)),
        "conv concat of two towers": (
            jn.serial(FanOut(2), branches(Conv2D(2, 3, padding="SAME"), Conv2D(3, 1)), FanInConcat(), MaxPool(2),
                      Flatten, Dense(3)), (4, 4, 1)),
    }


def _composed(model, shape, dtype, seed=0, batch=6):
    _, params, state = model.init(jax.random.key(seed), shape)
    cast = lambda t: jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), t)
    x = jax.random.normal(jax.random.key(seed + 1), (batch,) + shape, dtype)
    return cast(params), cast(state), x, jnp.arange(batch) % 3


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", sorted({**mlp_blocks(), **conv_blocks()}))
def test_composed_float64_model_and_every_child_in_place(x64, name, train):
    model, shape = {**mlp_blocks(), **conv_blocks()}[name]
    params, state, x, y = _composed(model, shape, jnp.float64)
    report = gradcheck.check_model(model, LOSS, params, state, x, y, jn.Ctx(train, jax.random.key(7)))
    report.assert_close()
    assert any(r.leaf == "input" and r.check == "model" for r in report.rows)
    _record(name, report)


@pytest.mark.parametrize("name", sorted(mlp_blocks()))
def test_composed_float32(name):
    model, shape = mlp_blocks()[name]
    params, state, x, y = _composed(model, shape, jnp.float32)
    report = gradcheck.compare(model, LOSS, params, state, x, y, jn.Ctx(True, jax.random.key(7)), finite_diff=False)
    report.assert_close(1e-5)


def test_residual_backward_adds_the_skip_cotangent(x64):
    # y = F(x) + x: ∂C/∂x = Fᵀdy + dy exactly.
    body = Dense(4)
    block = residual(body)
    _, params, state = block.init(jax.random.key(0), (4,))
    x = jax.random.normal(jax.random.key(1), (3, 4))
    dy = jax.random.normal(jax.random.key(2), (3, 4))
    y, _, cache = block.forward(params, state, x, jn.Ctx())
    np.testing.assert_allclose(y, x @ params[0]["w"] + params[0]["b"] + x, rtol=1e-12)
    grads, dx = block.backward(params, cache, dy)
    np.testing.assert_allclose(dx, dy @ params[0]["w"].T + dy, rtol=1e-12)
    assert grads[1] == ()


def test_bad_input_is_caught_at_init():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"FanInSum: the inputs have different shapes \[\(4,\), \(3,\)\]"):
        jn.serial(FanOut(2), branches(Dense(4), Dense(3)), FanInSum).init(key, (5,))
    with pytest.raises(ValueError, match=r"the branch maps \(5,\) to \(8,\) but the shortcut gives \(5,\).*"
                                         r"shortcut=Dense\(8, use_bias=False\)"):
        residual(Dense(8)).init(key, (5,))
    with pytest.raises(ValueError, match="has 3 branches but receives 2 inputs"):
        jn.serial(FanOut(2), branches(Dense(2), Dense(2), Dense(2))).init(key, (5,))
    with pytest.raises(ValueError, match="expects a tuple of inputs"):
        branches(Dense(2)).init(key, (5,))
    with pytest.raises(ValueError, match="feature axis of size >= 1"):
        LayerNorm().init(key, (0,))
    with pytest.raises(ValueError, match="differ outside axis"):
        jn.serial(FanOut(2), branches(Conv2D(2, 1), Conv2D(2, 3)), FanInConcat()).init(key, (5, 5, 1))
    with pytest.raises(ValueError, match="LeakyRelu"):
        LeakyRelu(float("nan"))
    with pytest.raises(ValueError, match="FanOut"):
        FanOut(0)


def test_combinators_nest_under_jit_and_vmap():
    model = jn.serial(Dense(6), residual(jn.serial(FanOut(2), branches(Dense(6), Tanh), FanInSum)), Dense(3))
    keys = jax.random.split(jax.random.key(0), 4)
    params, state = jax.vmap(lambda k: model.init(k, (5,))[1:])(keys)
    x = jax.random.normal(jax.random.key(1), (7, 5))
    y = jax.jit(jax.vmap(lambda p, s: jn.apply(model, p, s, x)[0]))(params, state)
    assert y.shape == (4, 7, 3)
    grad_fn = jn.gradients.manual(model, LOSS)
    _, g = jax.jit(jax.vmap(lambda p, s: grad_fn(p, s, x, jnp.arange(7) % 3, jn.Ctx(True))))(params, state)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(params)


@pytest.mark.parametrize("name", sorted({**mlp_blocks(), **conv_blocks()}))
def test_summary_counts_every_parameter(name):
    model, shape = {**mlp_blocks(), **conv_blocks()}[name]
    s = jn.summary(model, shape)
    _, params, state = model.init(jax.random.key(0), shape)
    assert s.params == sum(x.size for x in jax.tree_util.tree_leaves(params))
    assert s.state == sum(x.size for x in jax.tree_util.tree_leaves(state))
    assert s.rows[0].depth == 0 and s.rows[0].params == s.params
    leaves = [r for r in s.rows if r.depth > 0]
    assert sum(r.params for r in s.rows if r.depth == 1) == s.params
    assert leaves and str(s).splitlines()[-1].startswith(f"total: {s.params:,} parameters")
    out_shape, _, _ = model.init(jax.random.key(0), shape)
    assert s.rows[0].output_shape == tuple(out_shape)


def test_summary_of_the_textbook_cnn():
    s = jn.summary(jn.models.cnn(), (28, 28, 1))
    assert [r.output_shape for r in s.rows[1:5]] == [(24, 24, 20), (24, 24, 20), (12, 12, 20), (2880,)]
    assert s.params == 20 * 25 + 20 + 2880 * 100 + 100 + 100 * 10 + 10


def test_combinators_train_in_fit_with_both_gradient_sources_and_in_an_ensemble():
    model = jn.serial(Dense(12), Relu, residual(Dense(12, use_bias=False), BatchNorm(), Relu),
                      FanOut(2), branches(jn.serial(Dense(12), Dropout(0.2)), Tanh), FanInSum, Dense(10))
    ds = jn.data.load("digits")
    data, val = (ds.x_train[:400], ds.y_train[:400]), (ds.x_test, ds.y_test)
    args = dict(epochs=3, batch_size=32, val_data=val, progress=False)
    runs = {g: jn.fit(model, LOSS, jn.optim.sgd(0.1, momentum=0.9), data, key=jax.random.key(0), gradients=g,
                      **args) for g in ("manual", "autodiff")}
    for a, b in zip(jax.tree_util.tree_leaves(runs["manual"].params),
                    jax.tree_util.tree_leaves(runs["autodiff"].params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert runs["manual"].history["val_accuracy"][-1] > 0.5
    keys = jax.random.split(jax.random.key(1), 3)
    ens = jn.fit_ensemble(model, LOSS, jn.optim.sgd(0.1, momentum=0.9), data, keys=keys, **args)
    alone = jn.fit(model, LOSS, jn.optim.sgd(0.1, momentum=0.9), data, key=keys[2], **args)
    for a, b in zip(jax.tree_util.tree_leaves(ens.member(2).params), jax.tree_util.tree_leaves(alone.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_print_worst_errors():
    """Runs last in this module: the worst float64 manual~autodiff error per new layer and composed model."""
    if WORST:
        width = max(map(len, WORST))
        print("\nWORST float64 manual~autodiff (new layers and combinators):")
        for label, value in sorted(WORST.items(), key=lambda kv: -kv[1]):
            print(f"  {label:<{width}}  {value:.2e}")
    assert all(v < 1e-10 for v in WORST.values())
