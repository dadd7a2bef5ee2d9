"""jaxnets.interop: Flax linen / NNX and Equinox modules as jaxnets layers — checked by check_model, trained by fit,
marked as autodiff backward, modes and randomness from the Ctx; a clear ImportError without the extra."""
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets
from jaxnets import Ctx, gradcheck, losses, serial
from jaxnets.layers import Dense, Relu

flax = pytest.importorskip("flax", reason="flax is not installed (pip install 'jaxnets[interop]')")
eqx = pytest.importorskip("equinox", reason="equinox is not installed (pip install 'jaxnets[interop]')")
nn = pytest.importorskip("flax.linen")
nnx = pytest.importorskip("flax.nnx")

from jaxnets.interop import from_equinox, from_flax  # noqa: E402


class LinenNet(nn.Module):
    """Dense, BatchNorm (state), ReLU, Dropout (PRNG), Dense: every kind of variable a linen module keeps."""

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(8)(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = nn.Dropout(0.2, deterministic=not train)(nn.relu(x))
        return nn.Dense(3)(x)


class NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(4, 8, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)
        self.drop = nnx.Dropout(0.2, rngs=rngs)
        self.out = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(jnp.tanh(self.norm(self.hidden(x)))))


def _adapters():
    k1, k2, k3 = jax.random.split(jax.random.key(7), 3)
    return {
        "linen": from_flax(LinenNet(), train_arg="train"),
        "nnx": from_flax(NnxNet(nnx.Rngs(0))),
        "equinox": from_equinox(eqx.nn.MLP(4, 3, 8, 2, activation=jnp.tanh, key=k1)),
        "equinox+dropout": from_equinox(eqx.nn.Sequential([eqx.nn.Linear(4, 8, key=k2), eqx.nn.Lambda(jnp.tanh),
                                                           eqx.nn.Dropout(0.2), eqx.nn.Linear(8, 3, key=k3)]),
                                        key_arg=True),
    }


def _float64(tree):
    return jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a,
                                  tree)


def _data(n=96):
    x = jax.random.normal(jax.random.key(0), (n, 4))
    return x, jnp.argmax(x[:, :3] - 0.5 * x[:, 3:], axis=1)


@pytest.mark.parametrize("kind", ["linen", "nnx", "equinox", "equinox+dropout"])
def test_adapter_passes_check_model_and_is_marked(kind, x64):
    layer = _adapters()[kind]
    assert layer.meta.autodiff_backward
    model = serial(Dense(4), Relu(), layer)
    _, params, state = jaxnets.init(model, jax.random.key(1), (4,))
    params, state = _float64(params), _float64(state)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(params[2]))
    assert isinstance(params[2], dict)   # a plain pytree: nested dicts of arrays
    x, y = _data(6)
    report = gradcheck.check_model(model, losses.softmax_cross_entropy, params, state, x.astype(jnp.float64), y,
                                   Ctx(True, jax.random.key(3)))
    report.assert_close()
    rows = [r for r in report.rows if r.check == "in place" and r.where == "2"]
    assert rows and all(r.note.startswith("autodiff backward") for r in rows)
    assert not any(r.note for r in report.rows if r.check == "in place" and r.where == "0")
    assert str(jaxnets.summary(model, (4,))).splitlines()[-1].startswith("autodiff backward: 1 layer")
    with pytest.raises(ValueError, match="allow_autodiff=True"):
        gradcheck.check_layer(layer, (4,), key=jax.random.key(0))


@pytest.mark.parametrize("kind", ["linen", "nnx", "equinox", "equinox+dropout"])
def test_adapter_trains_with_fit(kind):
    model = serial(_adapters()[kind])
    x, y = _data()
    result = jaxnets.fit(model, losses.softmax_cross_entropy, jaxnets.optim.adam(3e-2), (x, y), epochs=5,
                         batch_size=32, key=jax.random.key(2), progress=False)
    history = result.history["train_loss"]
    assert history[-1] < history[0], history
    if kind in ("linen", "nnx"):   # BatchNorm statistics are layer state that fit threads
        _, _, state0 = jaxnets.init(model, jax.random.key(2), (4,))
        moved = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), result.state, state0)
        assert any(jax.tree_util.tree_leaves(moved))


@pytest.mark.parametrize("kind", ["linen", "nnx", "equinox+dropout"])
def test_mode_and_randomness_come_from_the_context(kind):
    layer = _adapters()[kind]
    _, params, state = layer.init(jax.random.key(1), (4,))
    x = jax.random.normal(jax.random.key(0), (16, 4))

    def run(train, key):
        return layer.forward(params, state, x, Ctx(train, key))[0]

    np.testing.assert_array_equal(run(False, None), run(False, jax.random.key(5)))   # eval: deterministic
    np.testing.assert_array_equal(run(True, jax.random.key(5)), run(True, jax.random.key(5)))
    assert not np.allclose(run(True, jax.random.key(5)), run(True, jax.random.key(6)))   # dropout from ctx.key
    y, _, cache = layer.forward(params, state, x, Ctx(True, jax.random.key(5)))
    dparams, dx = layer.backward(params, cache, jnp.ones_like(y))
    expect = jax.vjp(lambda p, xx: layer.forward(p, state, xx, Ctx(True, jax.random.key(5)))[0], params, x)[1](
        jnp.ones_like(y))
    jax.tree_util.tree_map(np.testing.assert_array_equal, (dparams, dx), expect)   # the same mask in the backward


def test_jit_takes_an_adapted_model_as_an_argument():
    model = serial(_adapters()["linen"], Relu())
    _, params, state = jaxnets.init(model, jax.random.key(1), (4,))
    out, _ = jax.jit(jaxnets.apply)(model, params, state, _data(5)[0])
    assert out.shape == (5, 3)


def test_arguments_are_checked():
    with pytest.raises(TypeError, match=r"from_flax\(module\).*instance, got the class Dense \(instantiate it"):
        from_flax(nn.Dense)
    with pytest.raises(TypeError, match=r"from_flax\(module\).*got int"):
        from_flax(3)
    with pytest.raises(TypeError, match=r"from_flax\(train_arg\)"):
        from_flax(nn.Dense(3), train_arg="not a name")
    with pytest.raises(TypeError, match="for linen modules only"):
        from_flax(NnxNet(nnx.Rngs(0)), train_arg="train")
    with pytest.raises(TypeError, match=r"from_equinox\(module\): an equinox.Module instance, got int"):
        from_equinox(3)
    with pytest.raises(TypeError, match=r"from_equinox\(key_arg\)"):
        from_equinox(eqx.nn.Linear(2, 2, key=jax.random.key(0)), key_arg=1)
    assert from_flax(nn.Dense(3)).name == "flax:Dense"
    with pytest.raises(TypeError, match=r"from_flax\(flax:LinenNet\): calling the module.*train_arg='train'"):
        jaxnets.init(serial(from_flax(LinenNet())), jax.random.key(0), (4,))
    assert from_equinox(eqx.nn.Linear(2, 2, key=jax.random.key(0)), name="lin").name == "lin"
    _, params, _ = from_equinox(eqx.nn.Linear(2, 2, key=jax.random.key(0))).init(jax.random.key(0), (2,))
    assert sorted(params) == ["bias", "weight"]


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "equinox", None)
    with pytest.raises(ImportError, match=r"from_equinox needs equinox.*pip install 'jaxnets\[interop\]'"):
        from_equinox(object())
    monkeypatch.setitem(sys.modules, "flax.linen", None)
    with pytest.raises(ImportError, match=r"from_flax needs flax.*pip install 'jaxnets\[interop\]'"):
        from_flax(object())
