"""Layers built with odd arguments: configurations that cannot train are refused, every non-default argument shows
in the layer's name (and so in `summary`), and mixed float dtypes between params and inputs behave alike in every
layer with params (promoted as jnp promotes; dx in the input's dtype, gradients in the params')."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets.core import Ctx
from jaxnets.gradients import cast_floats
from jaxnets.initializers import he_normal, normal, ones
from jaxnets.layers import BatchNorm, Dense, Dropout, Elu, Gelu, LayerNorm, LeakyRelu, Relu


# --------------------------------------------------------------------------------------- cannot train: refused
def test_layernorm_over_one_feature_is_refused_at_init_and_two_features_work():
    with pytest.raises(ValueError, match=r"LayerNorm: the last axis of per-example shape \(1,\) has 1 feature.*"
                                         r"constant β.*ever learns.*BatchNorm"):
        LayerNorm().init(jax.random.key(0), (1,))
    with pytest.raises(ValueError, match=r"per-example shape \(4, 4, 1\) has 1 feature"):
        LayerNorm().init(jax.random.key(0), (4, 4, 1))
    _, params, _ = LayerNorm().init(jax.random.key(0), (2,))
    y, _ = jn.apply(LayerNorm(), params, (), jnp.asarray([[1.0, 3.0]]))
    np.testing.assert_allclose(y, [[-1.0, 1.0]], atol=1e-4)


@pytest.mark.parametrize("make, error, message", [
    (lambda: Dense(3, w_init="he_normal"), TypeError, r"Dense\(3\): w_init must be an initializer.*"
                                                      r"jaxnets.initializers.he_normal"),
    (lambda: Dense(3, b_init=0.0), TypeError, "b_init must be an initializer"),
    (lambda: Dense(3, dtype="int32"), TypeError, "dtype must be a floating dtype"),
    (lambda: Dense(3, dtype="float"), None, None),
    (lambda: BatchNorm(eps=float("inf")), ValueError, "eps must be a positive finite float"),
    (lambda: BatchNorm(gamma_init=1.0), TypeError, "gamma_init must be an initializer"),
    (lambda: BatchNorm(axis_name=0), TypeError, "axis_name"),
    (lambda: BatchNorm(dtype=jnp.int8), TypeError, "dtype must be a floating dtype"),
    (lambda: LayerNorm(beta_init=None), TypeError, "beta_init must be an initializer"),
    (lambda: LayerNorm(dtype="bfloat16"), None, None),
])
def test_bad_layer_arguments_name_the_argument(make, error, message):
    if error is None:
        make()      # the valid neighbour
        return
    with pytest.raises(error, match=message):
        make()


def test_batchnorm_whose_statistics_never_move_warns():
    with pytest.warns(UserWarning, match=r"BatchNorm\(momentum=1\): the running statistics never move"):
        BatchNorm(momentum=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BatchNorm(momentum=0.99)     # the valid neighbour: no warning


# --------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("layer, name", [
    (Dense(10), "Dense(10)"),
    (Dense(10, use_bias=False), "Dense(10, use_bias=False)"),
    (Dense(10, w_init=he_normal), "Dense(10, w_init=he_normal)"),
    (Dense(10, w_init=normal(0.1), b_init=ones, dtype=jnp.float16),
     "Dense(10, w_init=normal(std=0.1), b_init=ones, dtype=float16)"),
    (BatchNorm(), "BatchNorm(0.9)"),
    (BatchNorm(0.99, eps=1e-3, running_var="unbiased"), "BatchNorm(0.99, eps=0.001, running_var='unbiased')"),
    (BatchNorm(axis_name="batch", dtype=jnp.bfloat16), "BatchNorm(0.9, axis_name='batch', dtype=bfloat16)"),
    (LayerNorm(), "LayerNorm"),
    (LayerNorm(1e-3), "LayerNorm(eps=0.001)"),
    (LayerNorm(gamma_init=normal(2.0)), "LayerNorm(gamma_init=normal(std=2))"),
    (Dropout(0.3), "Dropout(0.3)"),
    (LeakyRelu(0.2), "LeakyRelu(0.2)"),
    (Elu(0.5), "Elu(0.5)"),
    (Gelu(approximate=False), "Gelu(exact)"),
])
def test_names_show_every_non_default_argument(layer, name):
    assert layer.name == name


def test_summary_prints_the_full_names():
    model = jn.serial(Dense(6, w_init=he_normal, use_bias=False), BatchNorm(0.99, eps=1e-3), Relu, Dense(2))
    table = str(jn.summary(model, (4,)))
    assert "Dense(6, use_bias=False, w_init=he_normal)" in table and "BatchNorm(0.99, eps=0.001)" in table


# --------------------------------------------------------------------------------------- mixed dtypes
LAYERS_WITH_PARAMS = {"Dense": lambda: Dense(3), "BatchNorm": lambda: BatchNorm(), "LayerNorm": lambda: LayerNorm()}


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("x_dtype, p_dtype", [("float32", "float64"), ("float64", "float32"),
                                              ("bfloat16", "float32"), ("float32", "float32")])
@pytest.mark.parametrize("kind", sorted(LAYERS_WITH_PARAMS))
def test_mixed_float_dtypes_promote_like_jnp_in_every_layer(x64, kind, x_dtype, p_dtype, train):
    layer = LAYERS_WITH_PARAMS[kind]()
    _, params, state = layer.init(jax.random.key(0), (4,))
    params, state = cast_floats(params, jnp.dtype(p_dtype)), cast_floats(state, jnp.dtype(p_dtype))
    x = jax.random.normal(jax.random.key(1), (5, 4)).astype(x_dtype)
    ctx = Ctx(train, None)
    y, _, cache = layer.forward(params, state, x, ctx)
    assert y.dtype == jnp.result_type(x.dtype, p_dtype)          # as x @ w (or x * gamma) would give
    dy = jax.random.normal(jax.random.key(2), y.shape).astype(y.dtype)
    grads, dx = layer.backward(params, cache, dy)
    _, vjp = jax.vjp(lambda p, xx: layer.forward(p, state, xx, ctx)[0], params, x)
    auto_grads, auto_dx = vjp(dy)
    assert dx.dtype == auto_dx.dtype == x.dtype                    # dx in the input's dtype, as jax.vjp gives it
    assert [g.dtype for g in jax.tree.leaves(grads)] == [g.dtype for g in jax.tree.leaves(auto_grads)]
    tol = 5e-2 if "bfloat16" == x_dtype else 1e-4
    np.testing.assert_allclose(np.asarray(dx, np.float64), np.asarray(auto_dx, np.float64), rtol=tol, atol=tol)
