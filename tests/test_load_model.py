"""`checkpoint.save_model` / `jaxnets.load_model`: a model from `jaxnets.models` comes back from its checkpoint
without code, bit for bit; a wrong recipe, foreign arrays and hand-built models are refused with the fix."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets
from jaxnets import checkpoint, initializers, losses, models, optim
from jaxnets.checkpoint import CheckpointError
from jaxnets.models import RecipeError
from jaxnets.training import EarlyStopping

# (factory call, per-example input shape); small sizes, every factory
CASES = {
    "mlp": (lambda: models.mlp([6, 5, 3], activation="tanh", output="softmax", batch_norm=True, dropout=0.2), (6,)),
    "mlp-normal": (lambda: models.mlp([6, 4, 3], w_init=initializers.normal(0.3)), (6,)),
    "cnn": (lambda: models.cnn(features=3, kernel=3, hidden=4, classes=3, activation="relu", pooling="l2",
                               batch_norm=True), (8, 8, 1)),
    "cnn2": (lambda: models.cnn2(features=(2, 3), kernel=3, hidden=None, classes=2, w_init=initializers.he_normal),
             (14, 14, 2)),
    "resnet_mlp": (lambda: models.resnet_mlp(6, 4, depth=3, classes=2, activation="gelu", batch_norm=True), (6,)),
    "resnet_cnn": (lambda: models.resnet_cnn(classes=3, features=(2, 4), output="log_softmax"), (4, 4, 1)),
}


def _perturbed(tree, seed):
    """`tree` with every leaf moved off its initial value (BatchNorm statistics too), so a round trip that silently
    re-initialised anything would show."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(jax.random.key(seed), max(1, len(leaves)))
    return treedef.unflatten([a + 0.1 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys)])


def _same(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return (jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and len(la) == len(lb)
            and all(x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_factory_round_trips_bit_for_bit(name, tmp_path, x64):
    build, shape = CASES[name]
    model = build()
    _, params, state = jaxnets.init(model, jax.random.key(0), shape)
    params, state = _perturbed(params, 1), _perturbed(state, 2)
    path = checkpoint.save_model(tmp_path / "m.npz", model, params, state,
                                 input_shape=None if len(shape) == 1 else shape)
    loaded, p2, s2 = jaxnets.load_model(path)
    assert _same(params, p2) and _same(state, s2)
    assert loaded.name == model.name
    assert models.recipe_to_json(loaded.recipe) == models.recipe_to_json(model.recipe)
    x = jax.random.normal(jax.random.key(3), (5, *shape), jnp.float64)
    expected = np.asarray(jaxnets.predict(model, params, state, x))
    got = np.asarray(jaxnets.predict(loaded, p2, s2, x))
    assert expected.dtype == np.float64 and np.array_equal(expected, got)


def test_the_initializer_and_its_std_survive(tmp_path):
    """normal(0.3) is stored as {"initializer": "normal", "std": 0.3}: the loaded model initialises the same
    params from the same key (a recipe that lost the std, or fell back to the default, would not)."""
    model = models.mlp([6, 4, 3], w_init=initializers.normal(0.3))
    _, params, state = jaxnets.init(model, jax.random.key(0), (6,))
    path = checkpoint.save_model(tmp_path / "m.npz", model, params, state)
    assert checkpoint.describe(path)["model"]["recipe"]["kwargs"]["w_init"] == {"initializer": "normal", "std": 0.3}
    loaded, _, _ = jaxnets.load_model(path)
    assert _same(params, jaxnets.init(loaded, jax.random.key(0), (6,))[1])


def test_user_metadata_stays_the_users(tmp_path):
    model = models.mlp([3, 2])
    _, params, state = jaxnets.init(model, jax.random.key(0), (3,))
    path = checkpoint.save_model(tmp_path / "m.npz", model, params, state, metadata={"note": "v1"})
    assert checkpoint.load_metadata(path) == {"note": "v1"}
    tree = checkpoint.load(path, like={"params": params, "state": state})
    assert _same(tree["params"], params)


def _rewrite_recipe(path, edit):
    """Write `path` again with its header's recipe changed by `edit` (the arrays unchanged)."""
    from jaxnets import checkpoint as ckpt

    header, _ = ckpt._read(path)
    record = header["model"]
    edit(record["recipe"]["kwargs"])
    tree = ckpt.load(path)
    ckpt._save(path, tree, None, {"model": record})


def test_a_changed_recipe_is_refused_naming_the_leaf(tmp_path):
    model = models.mlp([6, 5, 3])
    _, params, state = jaxnets.init(model, jax.random.key(0), (6,))
    path = checkpoint.save_model(tmp_path / "m.npz", model, params, state)
    _rewrite_recipe(path, lambda kw: kw.update(sizes=[6, 7, 3]))
    with pytest.raises(CheckpointError, match=r"do not fit the model its recipe rebuilds") as err:
        jaxnets.load_model(path)
    text = str(err.value)
    assert "at params/0/b: expected shape (7,)" in text and "found shape (5,)" in text, text


@pytest.mark.parametrize("edit, message", [
    (lambda kw: kw.update(no_such_argument=1), "does not rebuild a model"),
    (lambda kw: kw.update(activation="no-such-unit"), "does not rebuild a model"),
    (lambda kw: kw.update(w_init={"initializer": "not_one"}), "unknown recipe value"),
])
def test_a_recipe_this_jaxnets_cannot_build_is_refused(tmp_path, edit, message):
    model = models.mlp([6, 5, 3])
    _, params, state = jaxnets.init(model, jax.random.key(0), (6,))
    path = checkpoint.save_model(tmp_path / "m.npz", model, params, state)
    _rewrite_recipe(path, edit)
    with pytest.raises(RecipeError, match=message):
        jaxnets.load_model(path)


def test_unknown_factory_is_refused():
    with pytest.raises(RecipeError, match="not a model recipe"):
        models.from_recipe({"factory": "os.system", "kwargs": {}})


def test_foreign_params_are_refused_before_writing(tmp_path):
    model, other = models.mlp([6, 5, 3]), models.mlp([6, 4, 3])
    _, params, state = jaxnets.init(other, jax.random.key(0), (6,))
    with pytest.raises(ValueError, match="not those of mlp"):
        checkpoint.save_model(tmp_path / "m.npz", model, params, state)
    assert not (tmp_path / "m.npz").exists()


def test_input_shape_rules(tmp_path):
    cnn = models.cnn(features=2, kernel=3, hidden=None, classes=2)
    _, params, state = jaxnets.init(cnn, jax.random.key(0), (6, 6, 1))
    with pytest.raises(ValueError, match=r"pass input_shape=.*\(28, 28, 1\)"):
        checkpoint.save_model(tmp_path / "c.npz", cnn, params, state)
    with pytest.raises(ValueError, match="not those of"):   # the params are for 6×6, not 8×8
        checkpoint.save_model(tmp_path / "c.npz", cnn, params, state, input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="save_model\\(input_shape\\)"):
        checkpoint.save_model(tmp_path / "c.npz", cnn, params, state, input_shape=[6, 0, 1])
    mlp = models.mlp([4, 2])
    _, params, state = jaxnets.init(mlp, jax.random.key(0), (4,))
    with pytest.raises(ValueError, match="leave input_shape out"):
        checkpoint.save_model(tmp_path / "m.npz", mlp, params, state, input_shape=(5,))


def test_hand_built_models_get_the_documented_pattern(tmp_path):
    model = jaxnets.serial(jaxnets.Dense(4), jaxnets.Relu(), jaxnets.Dense(2))
    _, params, state = jaxnets.init(model, jax.random.key(0), (3,))
    with pytest.raises(RecipeError, match=r"has no recipe.*checkpoint\.save.*checkpoint\.load\(path, like=") as err:
        checkpoint.save_model(tmp_path / "h.npz", model, params, state)
    assert "docs/checkpoints.md" in str(err.value) and not (tmp_path / "h.npz").exists()
    path = checkpoint.save(tmp_path / "h.npz", {"params": params, "state": state})
    with pytest.raises(CheckpointError, match=r"holds no model recipe.*checkpoint\.load\(path, like="):
        jaxnets.load_model(path)
    back = checkpoint.load(path, like={"params": params, "state": state})   # the pattern works
    assert _same(back["params"], params)


@pytest.mark.parametrize("argument, value", [
    ("w_init", lambda key, shape, dtype=None: jnp.zeros(shape)),
    ("activation", jaxnets.LeakyRelu(0.2)),
])
def test_an_argument_without_json_form_fails_at_save_time_naming_it(tmp_path, argument, value):
    model = models.mlp([3, 4, 2], **{argument: value})          # building works
    _, params, state = jaxnets.init(model, jax.random.key(0), (3,))
    jaxnets.predict(model, params, state, jnp.ones((1, 3)))
    with pytest.raises(RecipeError, match=rf"argument {argument}=.*no JSON form.*jaxnets\.initializers"):
        checkpoint.save_model(tmp_path / "m.npz", model, params, state)
    assert not (tmp_path / "m.npz").exists()


def test_a_layer_from_the_tables_is_stored_by_name(tmp_path):
    model = models.mlp([3, 4, 2], activation=jaxnets.Relu(), output=jaxnets.Softmax())
    assert models.recipe_to_json(model.recipe)["kwargs"]["activation"] == "relu"
    _, params, state = jaxnets.init(model, jax.random.key(0), (3,))
    loaded, p2, s2 = jaxnets.load_model(checkpoint.save_model(tmp_path / "m.npz", model, params, state))
    x = jnp.ones((2, 3))
    assert np.array_equal(jaxnets.predict(model, params, state, x), jaxnets.predict(loaded, p2, s2, x))


def _data(n=48):
    x = jax.random.normal(jax.random.key(1), (n, 6))
    return x, (x[:, 0] + x[:, 1] > 0).astype(jnp.int32)


def test_a_fit_checkpoint_dir_loads_as_the_result(tmp_path):
    x, y = _data()
    model = models.mlp([6, 8, 2], activation="relu", batch_norm=True)
    result = jaxnets.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), (x, y), epochs=3, batch_size=16,
                         key=jax.random.key(2), checkpoint_dir=tmp_path / "run", progress=False)
    for where in (tmp_path / "run", tmp_path / "run" / "ckpt-3.npz"):
        loaded, params, state = jaxnets.load_model(where)
        assert _same(params, result.params) and _same(state, result.state)
        assert np.array_equal(jaxnets.predict(loaded, params, state, x), jaxnets.predict(model, result.params,
                                                                                          result.state, x))
    older, params2, _ = jaxnets.load_model(tmp_path / "run" / "ckpt-2.npz")
    assert not _same(params2, result.params)          # the file asked for, not the newest


def test_a_fit_checkpoint_with_early_stopping_loads_the_best_epoch(tmp_path):
    x, y = _data()
    model = models.mlp([6, 8, 2])
    result = jaxnets.fit(model, losses.softmax_cross_entropy, optim.sgd(2.0), (x, y), epochs=6, batch_size=16,
                         key=jax.random.key(2), val_data=(x[:16], y[:16]), progress=False,
                         early_stopping=EarlyStopping(patience=10, restore_best=True),
                         checkpoint_dir=tmp_path / "run")
    _, params, _ = jaxnets.load_model(tmp_path / "run")
    assert _same(params, result.params)
    if result.best_epoch != 6:
        assert not _same(params, result.train_state.params)


def test_fit_checkpoints_of_models_without_a_usable_recipe(tmp_path):
    x, y = _data()
    hand = jaxnets.serial(jaxnets.Dense(2))
    odd = models.mlp([6, 2], w_init=lambda key, shape, dtype=None: 0.1 * jnp.ones(shape, dtype or jnp.float32))
    for name, model in (("hand", hand), ("odd", odd)):
        jaxnets.fit(model, losses.softmax_cross_entropy, optim.sgd(0.1), (x, y), epochs=1, batch_size=16,
                    key=jax.random.key(2), checkpoint_dir=tmp_path / name, progress=False)
    with pytest.raises(CheckpointError, match=r"not built by a jaxnets\.models factory.*like="):
        jaxnets.load_model(tmp_path / "hand")
    with pytest.raises(CheckpointError, match=r"could not be stored.*argument w_init="):
        jaxnets.load_model(tmp_path / "odd")


def test_an_empty_directory_and_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        jaxnets.load_model(tmp_path)
    with pytest.raises(FileNotFoundError):
        jaxnets.load_model(tmp_path / "nope.npz")


def test_the_header_is_plain_json(tmp_path):
    model = models.cnn(features=2, kernel=3, hidden=None, classes=2)
    _, params, state = jaxnets.init(model, jax.random.key(0), (6, 6, 1))
    path = checkpoint.save_model(tmp_path / "c.npz", model, params, state, input_shape=(6, 6, 1))
    record = checkpoint.describe(path)["model"]
    assert json.loads(json.dumps(record)) == record
    assert record["input_shape"] == [6, 6, 1] and record["recipe"]["factory"] == "cnn"
    assert os.path.basename(path) == "c.npz"
