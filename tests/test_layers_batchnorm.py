"""BatchNorm: normalised training outputs, running statistics and their conventions, evaluation mode, the full
backward (three ways), cross-device statistics, and equality with Flax / PyTorch when installed."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _layer_grad_helpers import init_model, three_way
from jaxnets import losses
from jaxnets.core import Ctx, serial
from jaxnets.layers import BatchNorm, Conv2D, Dense, Flatten, MaxPool, Relu, Sigmoid

TRAIN, EVAL = Ctx(train=True), Ctx(train=False)


def _data(shape, seed=0, loc=3.0, scale=2.0):
    return loc + scale * jax.random.normal(jax.random.PRNGKey(seed), shape)


@pytest.mark.parametrize("shape", [(64, 5), (8, 6, 5, 3)])
def test_training_output_has_zero_mean_unit_variance_per_feature(shape):
    layer = BatchNorm()
    _, params, state = layer.init(jax.random.PRNGKey(0), shape[1:])
    x = _data(shape) * jnp.arange(1.0, shape[-1] + 1)     # features on different scales
    y, _, _ = layer.forward(params, state, x, TRAIN)
    axes = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(np.asarray(y).mean(axis=axes), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y).var(axis=axes), 1.0, atol=1e-4)


@pytest.mark.parametrize("running_var", ["biased", "unbiased"])
def test_one_update_follows_the_momentum_convention(running_var):
    layer = BatchNorm(momentum=0.8, running_var=running_var)
    _, params, state = layer.init(jax.random.PRNGKey(0), (4,))
    x = np.asarray(_data((10, 4)))
    _, new_state, _ = layer.forward(params, state, jnp.asarray(x), TRAIN)
    batch_var = x.var(axis=0, ddof=0 if running_var == "biased" else 1)
    np.testing.assert_allclose(new_state["mean"], 0.8 * 0.0 + 0.2 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(new_state["var"], 0.8 * 1.0 + 0.2 * batch_var, rtol=1e-5)


def test_running_statistics_converge_to_the_data_statistics_and_evaluation_uses_them():
    layer = BatchNorm(momentum=0.9)
    _, params, state = layer.init(jax.random.PRNGKey(0), (3, 3, 2))
    loc, scale = jnp.array([3.0, -1.0]), jnp.array([2.0, 0.5])

    @jax.jit
    def run(state, key):
        def step(s, k):
            _, s, _ = layer.forward(params, s, loc + scale * jax.random.normal(k, (128, 3, 3, 2)), TRAIN)
            return s, None
        return jax.lax.scan(step, state, jax.random.split(key, 150))[0]

    state = run(state, jax.random.PRNGKey(1))
    # the running average spans ~1/(1 − momentum) = 10 batches of 128·9 values: errors ≲ 1% of the scale
    np.testing.assert_allclose(state["mean"], loc, atol=0.05)
    np.testing.assert_allclose(state["var"], scale ** 2, rtol=0.05)
    params = {"gamma": jnp.array([1.5, 0.5]), "beta": jnp.array([0.1, -0.2])}
    x = _data((4, 3, 3, 2), seed=2)
    y, state_after, cache = layer.forward(params, state, x, EVAL)
    expected = params["gamma"] * (x - state["mean"]) / np.sqrt(state["var"] + 1e-5) + params["beta"]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert state_after is state                           # evaluation leaves the statistics alone
    y_one, _, _ = layer.forward(params, state, x[:1], EVAL)  # and each example is normalised on its own
    np.testing.assert_allclose(y_one, y[:1], rtol=1e-6)


def _randomise(params, seed):
    """Non-trivial γ, β so the backward's γ factor is exercised."""
    keys = iter(jax.random.split(jax.random.PRNGKey(seed), 64))
    return jax.tree_util.tree_map_with_path(
        lambda p, v: 1.0 + 0.5 * jax.random.normal(next(keys), v.shape, v.dtype) if p[-1].key == "gamma"
        else (0.3 * jax.random.normal(next(keys), v.shape, v.dtype) if p[-1].key == "beta" else v), params)


def test_three_way_gradients_dense_net_float64(x64):
    model = serial(Dense(6), BatchNorm(), Sigmoid, Dense(3))
    params, state = init_model(model, (4,), jnp.float64)
    params = _randomise(params, 1)
    x = _data((9, 4), seed=3).astype(jnp.float64)
    three_way("dense-BN-dense", model, params, state, x, jnp.arange(9) % 3, losses.softmax_cross_entropy,
              rtol=1e-10, fd_rtol=1e-6, zero_grad=("0/b",))


def test_three_way_gradients_conv_net_float64(x64):
    model = serial(Conv2D(3, 3), BatchNorm(), Relu, MaxPool(2), Flatten, Dense(3))
    params, state = init_model(model, (6, 6, 2), jnp.float64)
    params = _randomise(params, 2)
    x = _data((4, 6, 6, 2), seed=4).astype(jnp.float64)
    three_way("conv-BN-relu-maxpool-dense", model, params, state, x, jnp.array([0, 1, 2, 0]),
              losses.softmax_cross_entropy, rtol=1e-10, fd_rtol=1e-6, zero_grad=("0/b",))


def test_three_way_gradients_evaluation_mode_float64(x64):
    layer = BatchNorm()
    params, _ = init_model(layer, (5,), jnp.float64)
    params = _randomise(params, 3)
    state = {"mean": jnp.linspace(-1.0, 1.0, 5), "var": jnp.linspace(0.5, 2.0, 5)}
    x = _data((6, 5), seed=5).astype(jnp.float64)
    target = jax.random.normal(jax.random.PRNGKey(6), (6, 5), jnp.float64)
    three_way("BN(eval)", layer, params, state, x, target, losses.quadratic, EVAL, rtol=1e-10, fd_rtol=1e-6)


def test_manual_matches_autodiff_float32():
    model = serial(Conv2D(4, 3), BatchNorm(), Sigmoid, Flatten, Dense(3))
    params, state = init_model(model, (5, 5, 2), jnp.float32)
    params = _randomise(params, 4)
    three_way("conv-BN-dense", model, params, state, _data((6, 5, 5, 2), seed=7), jnp.arange(6) % 3,
              losses.softmax_cross_entropy, rtol=1e-5, fd=False, zero_grad=("0/b",))


def test_axis_name_gives_global_batch_statistics_and_gradients():
    """Two 'devices' (vmap with an axis name) holding halves of a batch behave like one device with all of it."""
    full, split = BatchNorm(running_var="unbiased"), BatchNorm(running_var="unbiased", axis_name="devices")
    _, params, state = full.init(jax.random.PRNGKey(0), (3,))
    params = _randomise(params, 5)
    x = _data((8, 3), seed=8)
    dy = jax.random.normal(jax.random.PRNGKey(9), (8, 3)) / 8   # the gradient of a mean over all 8 examples
    y, new_state, cache = full.forward(params, state, x, TRAIN)
    grads, dx = full.backward(params, cache, dy)

    def device(xd, dyd):   # each device's loss is a mean over its own 4 examples: its dy is 2 × the global one
        yd, sd, cd = split.forward(params, state, xd, TRAIN)
        return yd, sd, split.backward(params, cd, 2 * dyd)

    yd, sd, (gd, dxd) = jax.vmap(device, axis_name="devices")(x.reshape(2, 4, 3), dy.reshape(2, 4, 3))
    np.testing.assert_allclose(yd.reshape(8, 3), y, rtol=1e-5, atol=1e-6)
    for key in ("mean", "var"):
        np.testing.assert_allclose(sd[key], np.stack([new_state[key]] * 2), rtol=1e-5)
    for key in ("gamma", "beta"):   # data-parallel training averages the per-device gradients
        np.testing.assert_allclose(gd[key].mean(axis=0), grads[key], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dxd.reshape(8, 3) / 2, dx, rtol=1e-5, atol=1e-7)


def test_bad_arguments_and_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"momentum.*\[0, 1\].*PyTorch"):
        BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match="eps"):
        BatchNorm(eps=0.0)
    with pytest.raises(ValueError, match="'biased'.*'unbiased'"):
        BatchNorm(running_var="sample")
    layer = BatchNorm()
    _, params, state = layer.init(jax.random.PRNGKey(0), (4,))
    with pytest.raises(ValueError, match=r"BatchNorm\(0.9\).*\(7, 3\).*4 features"):
        layer.forward(params, state, jnp.zeros((7, 3)), TRAIN)


def test_matches_flax_batchnorm():
    nn = pytest.importorskip("flax.linen")
    x = _data((6, 4, 4, 3), seed=10)
    ours = BatchNorm(momentum=0.9, eps=1e-5, running_var="biased")
    _, params, state = ours.init(jax.random.PRNGKey(0), (4, 4, 3))
    params = _randomise(params, 6)
    theirs = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5)
    variables = theirs.init(jax.random.PRNGKey(0), x)
    variables = {"params": {"scale": params["gamma"], "bias": params["beta"]}, "batch_stats": variables["batch_stats"]}
    y_flax, updated = theirs.apply(variables, x, mutable=["batch_stats"])
    y, new_state, _ = ours.forward(params, state, x, TRAIN)
    np.testing.assert_allclose(y, y_flax, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new_state["mean"], updated["batch_stats"]["mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state["var"], updated["batch_stats"]["var"], rtol=1e-5, atol=1e-6)
    y_eval_flax = nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=1e-5).apply(
        {"params": variables["params"], "batch_stats": updated["batch_stats"]}, x)
    np.testing.assert_allclose(ours.forward(params, new_state, x, EVAL)[0], y_eval_flax, rtol=1e-5, atol=1e-5)


def test_matches_pytorch_batchnorm_forward_running_stats_and_input_gradient():
    torch = pytest.importorskip("torch")
    x = np.asarray(_data((6, 4, 4, 3), seed=11), np.float64)
    dy = np.random.default_rng(0).normal(size=x.shape)
    gamma, beta = np.array([1.5, 0.7, 1.1]), np.array([0.1, -0.3, 0.2])
    bn = torch.nn.BatchNorm2d(3, eps=1e-5, momentum=0.1).double()     # PyTorch's 0.1 is our 0.9
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    bn.train()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)   # NHWC -> NCHW
    yt = bn(xt)
    (yt * torch.from_numpy(dy.transpose(0, 3, 1, 2).copy())).sum().backward()
    ours = BatchNorm(momentum=0.9, eps=1e-5, running_var="unbiased")
    _, _, state = ours.init(jax.random.PRNGKey(0), (4, 4, 3))
    params = {"gamma": jnp.asarray(gamma, jnp.float32), "beta": jnp.asarray(beta, jnp.float32)}
    y, new_state, cache = ours.forward(params, state, jnp.asarray(x, jnp.float32), TRAIN)
    grads, dx = ours.backward(params, cache, jnp.asarray(dy, jnp.float32))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new_state["mean"], bn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_state["var"], bn.running_var.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads["gamma"], bn.weight.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grads["beta"], bn.bias.grad.numpy(), rtol=1e-4, atol=1e-5)
