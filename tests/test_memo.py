"""Programs memoised on values: equal configurations share a program, anything that computes differently does not."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets as jn
from jaxnets import losses, models, optim
from jaxnets.memo import Unkeyable, memoised, value_key
from _compiles import counting_programs


def test_rebuilt_models_and_optimizers_have_equal_keys():
    for make in (lambda: models.mlp([64, 16, 10]), lambda: models.cnn2(dropout=0.5),
                 lambda: models.resnet_cnn(10), lambda: optim.adam(1e-3), lambda: optax.adamw(1e-3),
                 lambda: optim.sgd(optim.exponential_decay(0.1, 10, 0.5), momentum=0.9),
                 lambda: losses.l2(0.1, 100)):
        assert value_key(make()) == value_key(make())


def test_anything_that_computes_differently_has_another_key():
    pairs = [(optim.adam(1e-3), optim.adam(1e-4)), (optim.sgd(0.1), optim.sgd(0.1, momentum=0.9)),
             (optax.sgd(0.1), optim.sgd(0.1)), (models.mlp([64, 16, 10]), models.mlp([64, 17, 10])),
             (models.mlp([64, 16, 10]), models.mlp([64, 16, 10], activation="relu")),
             (jn.Dropout(0.5), jn.Dropout(0.25)), (losses.l2(0.1, 100), losses.l2(0.1, 101)),
             (1, 1.0), (1, True), (0.1, np.float32(0.1)), (jnp.float32(0.5), jnp.float64(0.5) if
                                                           jax.config.jax_enable_x64 else jnp.bfloat16(0.5))]
    for a, b in pairs:
        assert value_key(a) != value_key(b), (a, b)


def test_a_closure_over_an_array_keys_on_its_values():
    def scaled(c):
        return lambda x: c * x

    assert value_key(scaled(jnp.arange(3.0))) == value_key(scaled(jnp.arange(3.0)))
    assert value_key(scaled(jnp.arange(3.0))) != value_key(scaled(jnp.arange(3.0) + 1))


def test_a_patched_global_changes_the_key(monkeypatch):
    import jaxnets.layers.dense as dense

    before = value_key(jn.Dense(4))
    monkeypatch.setattr(dense, "lax", type("FakeLax", (), {})())
    assert value_key(jn.Dense(4)) != before


def test_mutable_containers_and_tracers_cannot_be_keyed():
    for bad in ([1, 2], {"a": 1}, {1}, np.zeros(3), (1, [2])):
        with pytest.raises(Unkeyable):
            value_key(bad)
    with pytest.raises(Unkeyable):
        jax.jit(lambda t: value_key(t) and t)(1.0)


def test_cycles_are_cut():
    def outer():
        def again(n):
            return again(n - 1) if n else 0
        return again

    assert value_key(outer()) == value_key(outer())


def test_memoised_builds_once_per_value_and_afresh_for_unkeyable_arguments():
    built = []

    @memoised(maxsize=2)
    def factory(spec):
        built.append(spec)
        return object()

    first = factory(("a", 1.0))
    assert factory(("a", 1.0)) is first and len(built) == 1
    assert factory(("a", 2.0)) is not first and len(built) == 2
    listed = factory(["a"])
    assert factory(["a"]) is not listed and len(built) == 4  # a list is never memoised
    factory(("b",))                                       # evicts the least recently used entry
    factory(("a", 1.0))
    assert len(built) == 6
    assert factory.cache_info()[2] == 2


def _digits_fit(optimizer, model=None, **kw):
    ds = jn.data.load("digits")
    model = model or jn.serial(jn.Dense(16), jn.Sigmoid, jn.Dense(10))
    return jn.fit(model, "softmax_cross_entropy", optimizer, (ds.x_train[:300], ds.y_train[:300]), epochs=1,
                  batch_size=32, key=jax.random.key(0), val_data=(ds.x_test[:50], ds.y_test[:50]), progress=False,
                  **kw)


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_a_second_fit_of_an_equal_configuration_compiles_nothing(loop):
    first = _digits_fit("adam", loop=loop)
    for optimizer in ("adam", optim.adam(1e-3)):   # by name again, and an equal optimizer built afresh
        with counting_programs() as compiled:
            again = _digits_fit(optimizer, loop=loop)   # and the model is built afresh too
        assert compiled == [], f"{len(compiled)} programs compiled for an equal configuration"
        for a, b in zip(jax.tree_util.tree_leaves(first.params), jax.tree_util.tree_leaves(again.params)):
            np.testing.assert_array_equal(a, b)


def test_another_learning_rate_is_trained_with_its_own_program():
    slow = _digits_fit(optim.sgd(0.01), loop="scan")
    with counting_programs() as compiled:
        fast = _digits_fit(optim.sgd(0.5), loop="scan")
    assert compiled, "a different learning rate must not reuse the program traced with another"
    moved = [float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(slow.params),
                                                              jax.tree_util.tree_leaves(fast.params))]
    assert max(moved) > 1e-3


def test_memoised_results_equal_freshly_compiled_ones():
    from jaxnets.training import programs

    warm = _digits_fit(optim.sgd(0.3, momentum=0.9), loop="scan")
    programs._make.cache_clear()
    cold = _digits_fit(optim.sgd(0.3, momentum=0.9), loop="scan")
    for a, b in zip(jax.tree_util.tree_leaves(warm.params), jax.tree_util.tree_leaves(cold.params)):
        np.testing.assert_array_equal(a, b)


def test_a_partial_keys_on_its_function_and_arguments():
    assert value_key(functools.partial(optim.sgd, 0.1)) == value_key(functools.partial(optim.sgd, 0.1))
    assert value_key(functools.partial(optim.sgd, 0.1)) != value_key(functools.partial(optim.sgd, 0.2))


def test_tree_structures_are_keyed_by_structure():
    import jax

    from jaxnets.memo import value_key

    a = {"w": np.zeros(2), "b": (np.zeros(1), None)}
    same = {"w": np.ones(3), "b": (np.ones(1), None)}
    assert value_key(jax.tree.structure(a)) == value_key(jax.tree.structure(same))
    assert value_key(jax.tree.structure(a)) != value_key(jax.tree.structure({"w": 0, "b": (0, 0)}))
    assert value_key(jax.tree.structure(a)) != value_key(jax.tree.structure({"v": 0, "b": (0, None)}))
