"""Model factories: structure and shapes, the whole layer zoo under a three-way gradient check, and a CNN that
learns the 8×8 digits with hand-written backprop."""
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets
import jaxnets as jn
from _layer_grad_helpers import init_model, rel_err, three_way, vjp_both
from jaxnets import losses, models
from jaxnets.core import Ctx
from jaxnets.optim import sgd


def _names(model):
    return [layer.name for layer in model.children]


def test_mlp_layers_and_shapes():
    model = models.mlp([4, 6, 5, 3], activation="relu", output="softmax", dropout=0.2, batch_norm=True)
    assert _names(model) == ["Dense(6)", "BatchNorm(0.9)", "Relu", "Dropout(0.2)", "Dense(5)", "BatchNorm(0.9)", "Relu",
                             "Dropout(0.2)", "Dense(3)", "Softmax"]
    out_shape, params, state = jaxnets.init(model, jax.random.PRNGKey(0), (4,))
    assert out_shape == (3,)
    assert params[0]["w"].shape == (4, 6) and params[4]["w"].shape == (6, 5) and params[8]["w"].shape == (5, 3)
    assert set(state[1]) == {"mean", "var"}
    train_apply = jax.jit(lambda p, s, x, k: jaxnets.apply(model, p, s, x, train=True, key=k))
    y, new_state = train_apply(params, state, jnp.ones((2, 4)), jax.random.PRNGKey(1))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    assert not np.array_equal(new_state[1]["mean"], state[1]["mean"])      # training updated the statistics
    assert _names(models.mlp([784, 30, 10])) == ["Dense(30)", "Sigmoid", "Dense(10)"]   # logits by default


def test_mlp_validates_its_arguments_and_the_input_size():
    with pytest.raises(ValueError, match=r"mlp\(\[784, 30, 10\]\).*\(784,\).*got \(64,\)"):
        jaxnets.init(models.mlp([784, 30, 10]), jax.random.PRNGKey(0), (64,))
    with pytest.raises(ValueError, match="at least two positive ints"):
        models.mlp([10])
    with pytest.raises(ValueError, match="mlp\\(activation\\).*relu"):
        models.mlp([4, 3], activation="swish")


@pytest.mark.parametrize("factory, dense_in", [(models.cnn, 20 * 12 * 12), (models.cnn2, 40 * 4 * 4)])
@pytest.mark.parametrize("pooling", ["max", "l2", "avg"])
def test_textbook_cnns_on_28x28(factory, dense_in, pooling):
    model = factory(pooling=pooling, activation="relu", output="softmax")
    shapes = {}

    def init(key):   # traced only (jax.eval_shape): shapes without compiling anything
        shapes["out"], params, state = jaxnets.init(model, key, (28, 28, 1))
        return params, state

    params, state = jax.eval_shape(init, jax.random.PRNGKey(0))
    assert shapes["out"] == (10,)
    assert params[0]["w"].shape == (5, 5, 1, 20)
    dense = [p for p in params if isinstance(p, dict) and p["w"].ndim == 2]
    assert [d["w"].shape for d in dense] == [(dense_in, 100), (100, 10)]
    y = jax.eval_shape(lambda p, s, x: jaxnets.apply(model, p, s, x)[0], params, state,
                       jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32))
    assert y.shape == (3, 10)


def test_cnn_validates_its_arguments():
    with pytest.raises(ValueError, match="pooling.*'avg', 'l2', 'max'"):
        models.cnn(pooling="median")
    with pytest.raises(ValueError, match="features"):
        models.cnn(features=())
    with pytest.raises(ValueError, match=r"Conv2D.*\(H, W, C\).*Reshape"):
        jaxnets.init(models.cnn(), jax.random.PRNGKey(0), (784,))


def test_three_way_gradients_of_a_small_cnn_with_every_layer_kind_float64(x64):
    """conv → BN → tanh → L2 pool → flatten → dropout → dense → tanh → dropout → dense."""
    model = models.cnn(features=2, kernel=3, pool=2, hidden=5, classes=3, activation="tanh", pooling="l2",
                       dropout=0.2, batch_norm=True)
    params, state = init_model(model, (6, 6, 2), jnp.float64)
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 6, 2), jnp.float64)
    # the conv bias feeds BatchNorm, whose batch mean cancels it: its true gradient is 0
    three_way("cnn(all layers)", model, params, state, x, jnp.array([0, 1, 2, 1]), losses.softmax_cross_entropy,
              Ctx(True, jax.random.PRNGKey(2)), rtol=1e-10, fd_rtol=1e-6, zero_grad=("0/b",))


def test_manual_backward_runs_inside_jax_vjp(x64):
    """gradients.as_custom_vjp plugs the hand-written backward into jax.vjp: same (dparams, dx) as autodiff."""
    model = models.cnn(features=3, kernel=3, hidden=6, classes=3, activation="relu", dropout=0.3, batch_norm=True,
                       padding="SAME")
    params, state = init_model(model, (6, 6, 2), jnp.float64)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 6, 6, 2), jnp.float64)
    dy = jax.random.normal(jax.random.PRNGKey(2), (5, 3), jnp.float64)
    (dp_manual, dx_manual), (dp_auto, dx_auto) = vjp_both(model, params, state, x, dy, Ctx(True, jax.random.PRNGKey(3)))
    assert dx_manual.shape == x.shape and rel_err(dx_manual, dx_auto) <= 1e-10
    for path, leaf in jax.tree_util.tree_leaves_with_path(dp_auto):
        manual = dict(jax.tree_util.tree_leaves_with_path(dp_manual))[path]
        if path[-1].key == "b" and path[0].idx == 0:   # the conv bias feeds BatchNorm: zero gradient
            assert np.max(np.abs(manual)) <= 1e-12
        else:
            assert rel_err(manual, leaf) <= 1e-10, jax.tree_util.keystr(path)


def test_cnn_learns_the_digits_with_manual_gradients():
    ds = jaxnets.data.load("digits", flatten=False)
    assert ds.x_train.shape[1:] == (8, 8, 1)
    model = models.cnn(features=16, kernel=3, pool=2, hidden=64, classes=10, activation="relu", padding="SAME",
                       w_init=jaxnets.initializers.he_normal)
    start = time.perf_counter()
    result = jaxnets.fit(model, losses.softmax_cross_entropy, sgd(0.05, momentum=0.9),
                         (ds.x_train, ds.y_train), epochs=15, batch_size=32, key=jax.random.PRNGKey(0),
                         gradients="manual", progress=False)
    metrics = jaxnets.evaluate(model, losses.softmax_cross_entropy, result.params, result.state, (ds.x_test, ds.y_test))
    elapsed = time.perf_counter() - start
    print(f"DIGITS-CNN test accuracy {metrics['accuracy']:.4f} in {elapsed:.1f} s")
    assert metrics["accuracy"] >= 0.97


def test_residual_models_shapes_counts_and_gradients(x64):
    from jaxnets import gradcheck, losses

    model = jn.models.resnet_mlp(12, 8, depth=10, classes=3, activation="sigmoid")
    s = jn.summary(model, (12,))
    assert sum(1 for r in s.rows if r.name.startswith("residual(")) == 9   # 10 hidden layers, 9 skips
    assert s.params == (12 * 8 + 8) + 9 * (8 * 8 + 8) + (8 * 3 + 3)
    _, params, state = model.init(jax.random.key(0), (12,))
    x = jax.random.normal(jax.random.key(1), (5, 12))
    gradcheck.check_model(model, losses.softmax_cross_entropy, params, state, x, jnp.arange(5) % 3).assert_close()
    with pytest.raises(ValueError, match=r"built for per-example inputs of shape \(12,\)"):
        model.init(jax.random.key(0), (13,))
    bn = jn.models.resnet_mlp(12, 8, depth=3, classes=3, batch_norm=True)
    assert "use_bias=False" in str(jn.summary(bn, (12,)))
    cnn = jn.models.resnet_cnn(classes=4, features=(4, 6))
    out, params, state = cnn.init(jax.random.key(0), (8, 8, 1))
    assert out == (4,)
    xi = jax.random.normal(jax.random.key(2), (3, 8, 8, 1))
    gradcheck.check_model(cnn, losses.softmax_cross_entropy, params, state, xi, jnp.arange(3),
                          jn.Ctx(True)).assert_close()


# ------------------------------------------------------------------------------------------------ recipes
def test_every_factory_records_all_its_arguments():
    import inspect

    from jaxnets.core import Recipe

    calls = {"mlp": dict(sizes=[4, 3, 2]), "cnn": dict(features=[2, 3]), "cnn2": {},
             "resnet_mlp": dict(n_in=4, width=3, depth=2, classes=2), "resnet_cnn": dict(features=[2])}
    for name, kwargs in calls.items():
        factory = getattr(jn.models, name)
        model = factory(**kwargs)
        assert isinstance(model.recipe, Recipe) and model.recipe.factory == name
        names = [k for k, _ in model.recipe.kwargs]
        assert names == sorted(inspect.signature(factory).parameters), name   # defaults included, sorted
        for k, v in model.recipe.kwargs:
            assert not isinstance(v, list), (name, k)                         # lists made tuples
        hash(model)                                                           # a Layer stays hashable
    assert dict(jn.models.mlp([4, 3, 2]).recipe.kwargs)["sizes"] == (4, 3, 2)
    assert jn.serial(jn.Dense(2)).recipe is None


def test_recipe_json_round_trip_rebuilds_the_same_model():
    from jaxnets import initializers
    from jaxnets.models import from_recipe, recipe_to_json

    model = jn.models.cnn(features=(2, 3), kernel=3, hidden=5, classes=4, activation="elu", pooling="avg",
                          dropout=0.1, w_init=initializers.lecun_normal, output=jn.Softmax())
    data = recipe_to_json(model.recipe)
    assert data["kwargs"]["w_init"] == {"initializer": "nielsen_normal"} and data["kwargs"]["output"] == "softmax"
    rebuilt = from_recipe(data)
    assert rebuilt.name == model.name and recipe_to_json(rebuilt.recipe) == data
    _, p1, _ = model.init(jax.random.key(0), (14, 14, 1))
    _, p2, _ = rebuilt.init(jax.random.key(0), (14, 14, 1))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p2)))


def test_a_model_with_a_recipe_works_under_jit():
    model = jn.models.mlp([3, 4, 2])
    _, params, state = jn.init(model, jax.random.key(0), (3,))
    x = jnp.ones((2, 3))
    y, _ = jax.jit(jn.apply)(model, params, state, x)
    assert np.array_equal(y, jn.apply(model, params, state, x)[0])


def test_an_unhashable_argument_builds_and_is_refused_when_saved():
    from jaxnets.models import RecipeError, recipe_to_json

    class Odd:                      # hashable by identity would be stored as-is; make it unhashable
        __hash__ = None

        def __init__(self):
            self.__name__ = "odd"

        def __call__(self, key, shape, dtype=None):
            return jnp.zeros(shape)

    model = jn.models.mlp([3, 2], w_init=Odd())
    hash(model)
    with pytest.raises(RecipeError, match="argument w_init="):
        recipe_to_json(model.recipe)
