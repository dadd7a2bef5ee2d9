"""Conv2D: forward and backward against naive loops, shapes, three-way gradients, bad input."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax import lax

from _layer_grad_helpers import init_model, rel_err, three_way
from jaxnets import losses
from jaxnets.core import Ctx, serial
from jaxnets.layers import Conv2D, Flatten, MaxPool


def tf_same_pads(size, k, s):
    """TensorFlow's documented SAME rule: ⌈size/s⌉ outputs, padding split with the extra row at the end."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, h, w, kh, kw, sh, sw):
    if padding == "VALID":
        return (0, 0), (0, 0)
    if padding == "SAME":
        return tf_same_pads(h, kh, sh), tf_same_pads(w, kw, sw)
    return padding


def naive_conv(x, w, b, stride, pads):
    """z[n,i,j,f] = b[f] + Σ xp[n, i·sh+a, j·sw+c, d] w[a,c,d,f], written as loops."""
    sh, sw = stride
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    m, hp, wp, _ = xp.shape
    kh, kw, _, nf = w.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    z = np.zeros((m, ho, wo, nf))
    for n in range(m):
        for i in range(ho):
            for j in range(wo):
                patch = xp[n, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
                for f in range(nf):
                    z[n, i, j, f] = b[f] + np.sum(patch * w[..., f])
    return z


def naive_conv_backward(x, w, dz, stride, pads):
    """Accumulate every product of the forward loop into dw, db and the padded dx, then crop the padding."""
    sh, sw = stride
    (pt, pb), (pl, pr) = pads
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    dxp, dw, db = np.zeros_like(xp), np.zeros_like(w), np.zeros(w.shape[-1])
    kh, kw = w.shape[:2]
    for n in range(dz.shape[0]):
        for i in range(dz.shape[1]):
            for j in range(dz.shape[2]):
                for f in range(dz.shape[3]):
                    g = dz[n, i, j, f]
                    db[f] += g
                    dw[..., f] += g * xp[n, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
                    dxp[n, i * sh:i * sh + kh, j * sw:j * sw + kw, :] += g * w[..., f]
    return dw, db, dxp[:, pt:pt + x.shape[1], pl:pl + x.shape[2], :]


CASES = [  # (H, W, C, F, kernel, stride, padding)
    (5, 5, 2, 3, 3, 1, "VALID"),
    (7, 6, 1, 2, 3, 2, "SAME"),
    (8, 8, 2, 2, 3, 2, "VALID"),          # (8 − 3) % 2 = 1: the last row and column are never read
    (6, 7, 3, 2, (2, 3), (2, 1), "SAME"),
    (5, 4, 2, 2, 3, 2, ((1, 0), (0, 2))),  # asymmetric explicit padding
    (4, 5, 1, 2, 4, 3, "SAME"),           # stride 3 > needed padding: asymmetric SAME pads
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}k{c[4]}s{c[5]}{c[6]}" for c in CASES])
def test_forward_and_backward_match_naive_loops(x64, case):
    h, w, c, f, kernel, stride, padding = case
    layer = Conv2D(f, kernel, stride, padding)
    params, state = init_model(layer, (h, w, c), jnp.float64)
    params["b"] = jnp.arange(1.0, f + 1) / 10
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, h, w, c))
    out_shape = layer.init(jax.random.PRNGKey(0), (h, w, c))[0]
    dz = rng.normal(size=(2,) + out_shape)

    @jax.jit
    def run(params, x, dz):  # one compiled program per case
        z, _, cache = layer.forward(params, state, x, Ctx())
        return z, layer.backward(params, cache, dz)

    z, (grads, dx) = run(params, jnp.asarray(x), jnp.asarray(dz))
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    pads = explicit_pads(padding, h, w, kh, kw, sh, sw)
    expected = naive_conv(x, np.asarray(params["w"]), np.asarray(params["b"]), (sh, sw), pads)
    np.testing.assert_allclose(z, expected, rtol=1e-12, atol=1e-12)
    if padding == "SAME":  # XLA's own SAME rule agrees with the one documented
        lax_z = lax.conv_general_dilated(jnp.asarray(x), params["w"], (sh, sw), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["b"]
        np.testing.assert_allclose(z, lax_z, rtol=1e-12, atol=1e-12)
    dw, db, dx_naive = naive_conv_backward(x, np.asarray(params["w"]), dz, (sh, sw), pads)
    np.testing.assert_allclose(grads["w"], dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["b"], db, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_naive, rtol=1e-12, atol=1e-12)


def test_rows_beyond_the_last_window_get_zero_gradient(x64):
    layer = Conv2D(2, 3, stride=2)   # 8x8 input: windows start at 0, 2, 4 and end at row 6
    params, state = init_model(layer, (8, 8, 1), jnp.float64)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 1)))
    z, _, cache = layer.forward(params, state, x, Ctx())
    assert z.shape == (2, 3, 3, 2)
    _, dx = layer.backward(params, cache, jnp.ones_like(z))
    assert np.all(dx[:, 7, :, :] == 0) and np.all(dx[:, :, 7, :] == 0)
    assert np.all(np.abs(dx[:, :7, :7, :]).sum(axis=(1, 2)) > 0)


@pytest.mark.parametrize("shape, layer, expected", [
    ((28, 28, 1), Conv2D(20, 5), (24, 24, 20)),                       # the textbook's local receptive fields
    ((28, 28, 1), serial(Conv2D(20, 5), MaxPool(2)), (12, 12, 20)),   # … then 2x2 max-pooling
    ((28, 28, 3), Conv2D(4, 5, padding="SAME"), (28, 28, 4)),
    ((7, 7, 1), Conv2D(4, 3, stride=2, padding="SAME"), (4, 4, 4)),
    ((8, 8, 1), Conv2D(4, 3, stride=2), (3, 3, 4)),
    ((9, 6, 2), Conv2D(3, (4, 1), stride=(1, 3)), (6, 2, 3)),
])
def test_output_shapes(shape, layer, expected):
    out_shape, params, state = layer.init(jax.random.PRNGKey(0), shape)
    assert out_shape == expected
    y = jax.eval_shape(lambda x: layer.forward(params, state, x, Ctx())[0], jax.ShapeDtypeStruct((2,) + shape, float))
    assert y.shape == (2,) + expected


# stride 1 (VALID and SAME) is covered by the composed models in test_layers_pool / test_layers_batchnorm
GRAD_CASES = [(7, 6, 2, 3, (2, 3), 2, "SAME"), (8, 7, 1, 2, 3, 2, "VALID")]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[f"{c[0]}x{c[1]}k{c[4]}s{c[5]}{c[6]}" for c in GRAD_CASES])
def test_three_way_gradients_float64(x64, case):
    h, w, c, f, kernel, stride, padding = case
    layer = Conv2D(f, kernel, stride, padding)
    params, state = init_model(layer, (h, w, c), jnp.float64)
    params["b"] = jnp.linspace(-0.5, 0.5, f)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(3, h, w, c)))
    z_shape = layer.init(jax.random.PRNGKey(0), (h, w, c))[0]
    y = jnp.asarray(rng.normal(size=(3,) + z_shape))
    three_way(f"Conv2D{case}", layer, params, state, x, y, losses.quadratic, rtol=1e-10, fd_rtol=1e-6)


@pytest.mark.parametrize("stride, padding", [(2, "SAME")])
def test_manual_matches_autodiff_float32(stride, padding):
    model = serial(Conv2D(4, 3, stride, padding), Flatten)
    params, state = init_model(model, (9, 9, 2), jnp.float32)
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(4, 9, 9, 2)), jnp.float32)
    n_out = model.init(jax.random.PRNGKey(0), (9, 9, 2))[0][0]
    y = jnp.asarray(rng.normal(size=(4, n_out)), jnp.float32)
    three_way(f"Conv2D(s={stride},{padding})", model, params, state, x, y, losses.quadratic, rtol=1e-5, fd=False)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(3, 9), w=st.integers(3, 9), c=st.integers(1, 3), f=st.integers(1, 3), kh=st.integers(1, 4),
       kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3), padding=st.sampled_from(["VALID", "SAME"]),
       seed=st.integers(0, 2 ** 16))
def test_backward_matches_vjp_for_random_shapes(x64, h, w, c, f, kh, kw, sh, sw, padding, seed):
    if padding == "VALID" and (kh > h or kw > w):
        with pytest.raises(ValueError, match="larger than the padded input"):
            Conv2D(f, (kh, kw), (sh, sw), padding).init(jax.random.PRNGKey(seed), (h, w, c))
        return
    layer = Conv2D(f, (kh, kw), (sh, sw), padding)
    out_shape, params, state = layer.init(jax.random.PRNGKey(seed), (h, w, c))
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(2, h, w, c)))
    dz = jnp.asarray(rng.normal(size=(2,) + out_shape))

    @jax.jit
    def both(params, x, dz):
        z, vjp = jax.vjp(lambda p, x_: layer.forward(p, state, x_, Ctx())[0], params, x)
        lax_z = lax.conv_general_dilated(x, params["w"], (sh, sw), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return z, lax_z + params["b"], vjp(dz), layer.backward(params, layer.forward(params, state, x, Ctx())[2], dz)

    z, lax_z, (auto_params, auto_dx), (grads, dx) = both(params, x, dz)
    assert rel_err(z, lax_z) <= 1e-12
    assert rel_err(dx, auto_dx) <= 1e-10
    assert rel_err(grads["w"], auto_params["w"]) <= 1e-10
    assert rel_err(grads["b"], auto_params["b"]) <= 1e-10


def test_kernel_larger_than_padded_input_is_an_init_error():
    with pytest.raises(ValueError, match=r"Conv2D\(4, 5\).*larger than the padded input 4x4.*smaller kernel"):
        Conv2D(4, 5).init(jax.random.PRNGKey(0), (4, 4, 1))
    Conv2D(4, 5, padding="SAME").init(jax.random.PRNGKey(0), (4, 4, 1))  # SAME pads it enough


def test_flat_input_is_an_init_error():
    with pytest.raises(ValueError, match=r"Conv2D\(20, 5\).*\(H, W, C\).*got \(784,\).*Reshape"):
        Conv2D(20, 5).init(jax.random.PRNGKey(0), (784,))


def test_channel_mismatch_is_a_forward_error():
    layer = Conv2D(3, 3)
    _, params, state = layer.init(jax.random.PRNGKey(0), (8, 8, 1))
    with pytest.raises(ValueError, match=r"Conv2D\(3, 3\).*3 channels.*expects 1.*\(H, W, 3\)"):
        layer.forward(params, state, jnp.zeros((2, 8, 8, 3)), Ctx())
    with pytest.raises(ValueError, match=r"Conv2D\(3, 3\).*\(batch, H, W, C\)"):
        layer.forward(params, state, jnp.zeros((2, 64)), Ctx())


@pytest.mark.parametrize("args, error", [
    ((0, 3), ValueError), ((2, 0), ValueError), ((2, (3, 3, 3)), TypeError), ((2, 3.0), TypeError),
    ((2, 3, 0), ValueError), ((2, 3, 1, "FULL"), ValueError), ((2, 3, 1, ((1, 1), (-1, 0))), ValueError),
])
def test_bad_constructor_arguments(args, error):
    with pytest.raises(error, match="Conv2D"):
        Conv2D(*args)
