"""Bad input to the building blocks around `fit` (summary, EarlyStopping, make_mesh, vote) gets an error naming the
argument, the value and the fix; each case has a valid neighbour that still works."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets as jn
from jaxnets import parallel
from jaxnets.layers import Conv2D, Dense, Flatten, Relu, Softmax
from jaxnets.training import EarlyStopping

MLP = jn.serial(Dense(5), Relu, Dense(3), Softmax)


# ------------------------------------------------------------------------------------------------ summary
@pytest.mark.parametrize("shape", [(4.0,), "64", (0,), (4, -1)])
def test_summary_checks_input_shape_like_init(shape):
    with pytest.raises(ValueError, match="input_shape must be positive ints"):
        jn.summary(MLP, shape)
    with pytest.raises(ValueError, match="input_shape must be positive ints"):
        jn.init(MLP, jax.random.key(0), shape)


def test_summary_of_valid_shapes_and_of_a_conv_net_under_x64(x64):
    assert jn.summary(MLP, (4,)).params == jn.summary(MLP, 4).params == 4 * 5 + 5 + 5 * 3 + 3
    conv = jn.serial(Conv2D(2, 3), Relu, Flatten, Dense(2))
    table = jn.summary(conv, (6, 6, 1))          # float64 params (x64) and, by default, float64 inputs
    assert table.params == 3 * 3 * 2 + 2 + 32 * 2 + 2
    with pytest.raises(TypeError, match="summary: dtype must be a floating dtype"):
        jn.summary(MLP, (4,), dtype=jnp.int32)


# ------------------------------------------------------------------------------------------------ EarlyStopping
@pytest.mark.parametrize("kwargs, error, message", [
    ({"patience": 3, "restore_best": "no"}, TypeError, "restore_best must be True .* or False .*got str 'no'"),
    ({"patience": 3, "restore_best": 1}, TypeError, "restore_best"),
    ({"patience": 0}, ValueError, "patience must be a positive int, got 0"),
    ({"patience": 2.5}, ValueError, "patience must be a positive int, got 2.5"),
    ({"patience": "5"}, ValueError, "patience must be a positive int"),
    ({"patience": 3, "min_delta": float("inf")}, ValueError, "min_delta .* must be a finite number"),
    ({"patience": 3, "min_delta": -0.1}, ValueError, "min_delta .* must be >= 0"),
    ({"patience": 3, "monitor": "loss"}, ValueError, "monitor must be one of .*'val_loss'"),
])
def test_bad_early_stopping_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        EarlyStopping(**kwargs)


def test_valid_early_stopping():
    rule = EarlyStopping(3, min_delta=0.01, monitor="val_accuracy", restore_best=False)
    assert rule.mode == "max" and not rule.restore_best


# ------------------------------------------------------------------------------------------------ make_mesh
@pytest.mark.parametrize("devices, error, message", [
    (2, TypeError, r"a list of JAX devices, not a count; for the first 2 devices pass "
                   r"make_mesh\(jax.devices\(\)\[:2\]\)"),
    ((2,), TypeError, r"entry 0 is int 2, not a JAX device"),
    ("cpu", TypeError, "entry 0 is str 'c', not a JAX device"),
    ([], ValueError, "no devices given"),
])
def test_make_mesh_refuses_a_count_or_anything_but_devices(devices, error, message):
    with pytest.raises(error, match=message):
        parallel.make_mesh(devices)


def test_make_mesh_valid_and_duplicate_devices():
    mesh = parallel.make_mesh(jax.devices()[:1])
    assert mesh.axis_names == (parallel.DATA_AXIS,) and parallel.make_mesh().size == jax.device_count()
    with pytest.raises(ValueError, match="more than once"):
        parallel.make_mesh(jax.devices()[:1] * 2)
    with pytest.raises(TypeError, match="make_mesh\\(axis\\)"):
        parallel.make_mesh(axis="")


# ------------------------------------------------------------------------------------------------ vote
def _members(k=3):
    inits = [MLP.init(jax.random.key(i), (4,))[1:] for i in range(k)]
    return jax.tree.map(lambda *a: jnp.stack(a), *inits)


def test_vote_on_one_models_params_says_it_needs_stacked_params():
    x = jax.random.normal(jax.random.key(9), (6, 4))
    _, params, state = MLP.init(jax.random.key(0), (4,))
    with pytest.raises(ValueError, match=r"vote: params and state are one model's.*stacked on axis 0.*fit_ensemble"):
        jn.vote(MLP, params, state, x)
    stacked, states = _members()
    assert jn.vote(MLP, stacked, states, x).shape == (6,)                  # the valid neighbour
    with pytest.raises(ValueError, match="not .* stacked on one leading axis"):
        jn.vote(MLP, stacked, states, jnp.ones((6, 7)))                   # params for another input size
    with pytest.raises(ValueError, match="do not have the structure"):
        jn.vote(MLP, stacked[:2], states, x)
