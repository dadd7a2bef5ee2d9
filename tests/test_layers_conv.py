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


# ---- kernel forms (issue 21): every written-out form against autodiff, the rule, and mutations that must fail ----

from jaxnets.layers import conv as conv_module  # noqa: E402
from jaxnets.layers.conv import ConvKernels  # noqa: E402

FAMILIES = {"conv": "conv", "conv_interior": "conv_interior", "patches": "patches",
            "mixed": ConvKernels("patches", "conv", "interior"), "mixed2": ConvKernels("conv", "patches", "dilated")}
FORM_CASES = [  # (H, W, C, F, kernel, stride, padding): strided, SAME, explicit, 1×1, unread rows, wide channels
    (7, 6, 2, 3, (2, 3), 2, "SAME"),
    (8, 7, 1, 2, 3, 2, "VALID"),                 # (8 − 3) % 2 = 1: unread last row
    (6, 7, 3, 2, 3, 1, "SAME"),
    (5, 4, 2, 2, 3, 2, ((1, 0), (0, 2))),        # asymmetric explicit padding
    (6, 6, 2, 2, 3, 1, ((3, 4), (0, 5))),        # padding wider than the kernel: negative edges in (C4)
    (4, 5, 1, 2, 4, 3, "SAME"),
    (6, 5, 5, 3, 1, 2, "VALID"),                 # strided 1×1 projection
    (5, 5, 6, 4, (3, 2), (1, 2), "SAME"),
]
CASE_IDS = [f"{c[0]}x{c[1]}x{c[2]}k{c[4]}s{c[5]}{c[6] if isinstance(c[6], str) else 'pad'}" for c in FORM_CASES]


def vjp_errors(case, kernels, batch=2, seed=0):
    """Worst relative errors {"z", "w", "b", "x"} of Conv2D(case, kernels=kernels) in float64: its forward against
    0.2.0's convolution form, its hand-written backward against `jax.vjp` of its own forward (one program)."""
    h, w, c, f, kernel, stride, padding = case
    layer = Conv2D(f, kernel, stride, padding, kernels=kernels)
    reference = Conv2D(f, kernel, stride, padding, kernels="conv")
    out_shape, params, state = layer.init(jax.random.PRNGKey(seed), (h, w, c))
    params["b"] = jnp.linspace(-0.5, 0.5, f)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, h, w, c)))
    dz = jnp.asarray(rng.normal(size=(batch,) + out_shape))

    @jax.jit
    def run(params, x, dz):
        z, vjp = jax.vjp(lambda p, x_: layer.forward(p, state, x_, Ctx())[0], params, x)
        (auto_p, auto_x), (grads, dx) = vjp(dz), layer.backward(params, x, dz)
        return z, reference.forward(params, state, x, Ctx())[0], auto_p, auto_x, grads, dx

    z, z_ref, auto_p, auto_x, grads, dx = run(params, x, dz)
    return {"z": rel_err(z, z_ref), "w": rel_err(grads["w"], auto_p["w"]), "b": rel_err(grads["b"], auto_p["b"]),
            "x": rel_err(dx, auto_x)}


# The two families the rule picks on every case; 0.2.0's forms (kept on GPUs/TPUs) and mixed plans on a few.
FORM_PAIRS = ([(f, i) for f in ("patches", "conv_interior") for i in range(len(FORM_CASES))]
              + [("conv", i) for i in (0, 1, 3, 6)] + [("mixed", i) for i in (0, 4)] + [("mixed2", i) for i in (3, 7)])


@pytest.mark.parametrize("family, case", [(f, FORM_CASES[i]) for f, i in FORM_PAIRS],
                         ids=[f"{f}-{CASE_IDS[i]}" for f, i in FORM_PAIRS])
def test_every_kernel_form_matches_autodiff_float64(x64, family, case):
    errors = vjp_errors(case, FAMILIES[family])
    assert max(errors.values()) <= 1e-10, (family, case, errors)


@pytest.mark.parametrize("family", ["conv_interior", "patches"])
@pytest.mark.parametrize("case", [FORM_CASES[i] for i in (0, 4, 6)], ids=[CASE_IDS[i] for i in (0, 4, 6)])
def test_kernel_forms_three_way_float32(family, case):
    """float32: manual vs jax.grad through gradcheck.compare, whose relative errors have a scale floor (a leaf whose
    true gradient is 0 cannot fail on rounding noise)."""
    h, w, c, f, kernel, stride, padding = case
    model = serial(Conv2D(f, kernel, stride, padding, kernels=family), Flatten)
    params, state = init_model(model, (h, w, c), jnp.float32)
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(4, h, w, c)), jnp.float32)
    n_out = model.init(jax.random.PRNGKey(0), (h, w, c))[0][0]
    y = jnp.asarray(rng.normal(size=(4, n_out)), jnp.float32)
    three_way(f"Conv2D[{family}]{case}", model, params, state, x, y, losses.quadratic, rtol=1e-5, fd=False)


def _flipped_kernel(form):
    """A classic bug: the input gradient with the kernel not flipped."""
    return lambda delta, w, g, precision=None: form(delta, w[::-1, ::-1], g, precision)


@pytest.mark.parametrize("mutation", ["col2im", "interior", "dilated", "patches_kernel_grad", "conv_kernel_grad"])
def test_a_wrong_backward_is_caught(x64, monkeypatch, mutation):
    """Each form, deliberately broken, fails the check the forms above pass (so the check can fail)."""
    if mutation in conv_module._INPUT_GRADS:
        monkeypatch.setitem(conv_module._INPUT_GRADS, mutation, _flipped_kernel(conv_module._INPUT_GRADS[mutation]))
        kernels, leaf = ConvKernels("conv", "conv", mutation), "x"
    elif mutation == "patches_kernel_grad":   # the taps read in the wrong (column-major) order
        original = conv_module.patches_kernel_grad
        monkeypatch.setattr(conv_module, "patches_kernel_grad", lambda p, d, shape, precision=None: jnp.swapaxes(
            original(p, d, (shape[1], shape[0]) + tuple(shape[2:]), precision), 0, 1))
        kernels, leaf = ConvKernels("conv", "patches", "dilated"), "w"
    else:                                      # the kernel gradient upside down
        original = conv_module.conv_kernel_grad
        monkeypatch.setattr(conv_module, "conv_kernel_grad", lambda x, d, g, precision=None: original(x, d, g)[::-1])
        kernels, leaf = ConvKernels("conv", "conv", "dilated"), "w"
    errors = vjp_errors((7, 6, 2, 3, (3, 2), 2, "SAME"), kernels)
    assert errors[leaf] > 1e-2, (mutation, errors)


def test_the_rule_is_data_and_keeps_other_backends_on_convolutions():
    cpu = conv_module.RULES["cpu"]
    assert conv_module.choose_kernels(1, (5, 5), "cpu") == conv_module.PATCHES
    assert conv_module.choose_kernels(cpu.patches_max_channels, (3, 3), "cpu") == conv_module.PATCHES
    assert conv_module.choose_kernels(cpu.patches_max_channels + 1, (3, 3), "cpu") == cpu.otherwise
    assert conv_module.choose_kernels(64, (1, 1), "cpu") == conv_module.PATCHES
    assert conv_module.choose_kernels(64, (1, 1), "cpu", stride=(2, 2)) == conv_module.PATCHES
    assert conv_module.choose_kernels(1, (5, 5), "cpu", stride=(2, 2)) == cpu.otherwise    # measured: not faster
    assert cpu.otherwise.input_grad == "interior"       # no lhs_dilation on XLA:CPU
    for backend in ("gpu", "cuda", "rocm", "tpu"):
        for channels, kernel in ((1, (5, 5)), (64, (1, 1)), (32, (3, 3))):
            assert conv_module.choose_kernels(channels, kernel, backend) == conv_module.CONV


def test_the_layer_follows_the_rule_on_this_backend():
    def primitives(layer, shape):
        _, params, state = layer.init(jax.random.PRNGKey(0), shape)
        fwd = jax.make_jaxpr(lambda p, x: layer.forward(p, state, x, Ctx())[0])(params, jnp.zeros((2,) + shape))
        return {e.primitive.name for e in fwd.jaxpr.eqns}

    for channels in (1, 16):
        chosen = conv_module.choose_kernels(channels, (3, 3))
        uses_matmul = "dot_general" in primitives(Conv2D(4, 3), (8, 8, channels))
        assert uses_matmul == (chosen.forward == "patches"), (channels, chosen)
    assert "dot_general" not in primitives(Conv2D(4, 3, kernels="conv"), (8, 8, 1))
    # the patches are a convolution with a 0/1 kernel: fit's driver rule still sees a convolutional model
    assert {"dot_general", "conv_general_dilated"} <= primitives(Conv2D(4, 3, kernels="patches"), (8, 8, 16))


@pytest.mark.parametrize("kernels", ["im2col", ConvKernels("patches", "conv", "lhs"), 3])
def test_unknown_kernels_are_refused(kernels):
    with pytest.raises(ValueError, match=r"Conv2D.*kernels"):
        Conv2D(4, 3, kernels=kernels)


# ---- arguments and names (issue 23) ----

@pytest.mark.parametrize("padding", [((1.5, 1.5), (1, 1)), ((1, 1), (1, 2.0)), ((True, 1), (1, 1)), (("1", 1), (1, 1))])
def test_non_integer_explicit_padding_is_refused_not_truncated(padding):
    with pytest.raises(TypeError, match=r"Conv2D.*padding must be ints.*got"):
        Conv2D(4, 3, padding=padding)


def test_integer_like_padding_is_accepted():
    layer = Conv2D(4, 3, padding=((np.int64(1), 1), (0, np.int32(2))))
    assert layer.init(jax.random.PRNGKey(0), (5, 5, 1))[0] == (5, 5, 4)
    assert layer.name == "Conv2D(4, 3, padding=((1, 1), (0, 2)))"


@pytest.mark.parametrize("layer, name", [
    (Conv2D(20, 5), "Conv2D(20, 5)"),
    (Conv2D(4, (3, 5), stride=(2, 1)), "Conv2D(4, (3, 5), stride=(2, 1))"),
    (Conv2D(4, 3, 2, "same"), "Conv2D(4, 3, stride=2, padding='SAME')"),
    (Conv2D(4, 3, padding=((1, 2), (0, 0))), "Conv2D(4, 3, padding=((1, 2), (0, 0)))"),
    (Conv2D(4, 3, use_bias=False), "Conv2D(4, 3, use_bias=False)"),
    (Conv2D(4, 3, dtype=jnp.float32), "Conv2D(4, 3, dtype=float32)"),
    (Conv2D(4, 3, precision=lax.Precision.HIGHEST), "Conv2D(4, 3, precision=HIGHEST)"),
    (Conv2D(4, 3, kernels="patches"), "Conv2D(4, 3, kernels='patches')"),
])
def test_the_name_shows_every_non_default_argument(layer, name):
    assert layer.name == name


def test_the_name_shows_the_initializers():
    from jaxnets.initializers import he_normal, ones
    assert Conv2D(4, 3, w_init=he_normal, b_init=ones).name == "Conv2D(4, 3, w_init=he_normal, b_init=ones)"


@pytest.mark.parametrize("kernels", ["conv", "conv_interior", "patches"])
def test_mixed_dtypes_promote_like_dense(x64, kernels):
    """float64 inputs with float32 params compute in float64 (as jnp and Dense do); each gradient comes back in
    the dtype of what it is the gradient of."""
    from jaxnets.layers import Dense
    layer = Conv2D(3, 3, stride=2, padding="SAME", kernels=kernels)
    _, params, state = layer.init(jax.random.PRNGKey(0), (6, 6, 2))
    params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), params)
    dense = Dense(3)
    _, dparams, _ = dense.init(jax.random.PRNGKey(0), (4,))
    dparams = jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), dparams)
    for dtype in (jnp.float64, jnp.float16):
        x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 6, 2)), dtype)
        z, _, cache = layer.forward(params, state, x, Ctx())
        zd, _, dcache = dense.forward(dparams, (), jnp.ones((2, 4), dtype), Ctx())
        assert z.dtype == zd.dtype == jnp.result_type(dtype, jnp.float32)
        grads, dx = layer.backward(params, cache, jnp.ones_like(z))
        dgrads, ddx = dense.backward(dparams, dcache, jnp.ones_like(zd))
        assert (grads["w"].dtype, grads["b"].dtype, dx.dtype) == (dgrads["w"].dtype, dgrads["b"].dtype, ddx.dtype)
        assert (grads["w"].dtype, dx.dtype) == (jnp.float32, dtype)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 6, 6, 2)))       # float64: exact against float64 params
    z64 = layer.forward(jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params), state, x, Ctx())[0]
    assert rel_err(layer.forward(params, state, x, Ctx())[0], z64) <= 1e-12


def test_summary_of_a_conv_net_under_x64(x64):
    import jaxnets
    from jaxnets import models
    text = str(jaxnets.summary(models.cnn2(activation="relu"), (28, 28, 1)))
    assert "Conv2D(40, 5)" in text
