"""Pooling and reshape layers: naive loops (ties included), the tie rule, L2 at zero, three-way gradients, errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _layer_grad_helpers import distinct_normal, init_model, three_way
from jaxnets import losses
from jaxnets.core import Ctx, serial
from jaxnets.layers import AvgPool, Conv2D, Dense, Flatten, L2Pool, MaxPool, Relu, Reshape, Sigmoid

POOL = {"max": MaxPool, "l2": L2Pool, "avg": AvgPool}


def naive_pool(kind, x, window, stride, dy):
    """Forward and backward as loops over windows; max routes dy to np.argmax (the first maximum, row-major)."""
    (wh, ww), (sh, sw) = window, stride
    m, h, w, c = x.shape
    ho, wo = (h - wh) // sh + 1, (w - ww) // sw + 1
    y, dx = np.zeros((m, ho, wo, c)), np.zeros_like(x)
    for n in range(m):
        for i in range(ho):
            for j in range(wo):
                for k in range(c):
                    rows, cols = slice(i * sh, i * sh + wh), slice(j * sw, j * sw + ww)
                    win = x[n, rows, cols, k]
                    g = dy[n, i, j, k]
                    if kind == "max":
                        y[n, i, j, k] = win.max()
                        a, b = np.unravel_index(np.argmax(win), win.shape)
                        dx[n, i * sh + a, j * sw + b, k] += g
                    elif kind == "l2":
                        y[n, i, j, k] = np.sqrt(np.sum(win ** 2))
                        dx[n, rows, cols, k] += g * win / y[n, i, j, k] if y[n, i, j, k] > 0 else 0
                    else:
                        y[n, i, j, k] = win.mean()
                        dx[n, rows, cols, k] += g / win.size
    return y, dx


CASES = [  # (H, W, window, stride): tiled (reshape path), overlapping, gaps, rectangular
    (4, 6, (2, 2), (2, 2)), (7, 5, (3, 3), (2, 2)), (8, 5, (2, 2), (3, 3)), (6, 5, (2, 3), (2, 1)),
    (6, 6, (3, 2), (3, 2)),
]


@pytest.mark.parametrize("kind", ["max", "l2", "avg"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}w{c[2]}s{c[3]}" for c in CASES])
def test_forward_and_backward_match_naive_loops(x64, kind, case):
    h, w, window, stride = case
    layer = POOL[kind](window, stride)
    out_shape, _, _ = layer.init(None, (h, w, 2))
    rng = np.random.default_rng(0)
    # small integers: plenty of ties inside windows, so the tie rule is exercised on both code paths
    x = rng.integers(-2, 3, size=(2, h, w, 2)).astype(np.float64)
    dy = rng.normal(size=(2,) + out_shape)

    @jax.jit
    def run(x, dy):
        y, _, cache = layer.forward((), (), x, Ctx())
        return y, layer.backward((), cache, dy)[1]

    y, dx = run(jnp.asarray(x), jnp.asarray(dy))
    y_naive, dx_naive = naive_pool(kind, x, window, stride, dy)
    np.testing.assert_allclose(y, y_naive, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_naive, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride", [None, 1])  # None: stride = window (reshape path); 1: overlapping windows
def test_max_pool_tie_rule_first_maximum_in_row_major_order(stride):
    layer = MaxPool(2, stride)
    x = jnp.array([[0.0, 5.0], [5.0, 1.0]]).reshape(1, 2, 2, 1)      # tie between (0, 1) and (1, 0)
    y, _, cache = layer.forward((), (), x, Ctx())
    _, dx = layer.backward((), cache, jnp.full(y.shape, 3.0))
    np.testing.assert_array_equal(dx.reshape(2, 2), [[0.0, 3.0], [0.0, 0.0]])
    x = jnp.ones((1, 2, 2, 1))                                         # all tied: the top-left one
    _, dx = layer.backward((), layer.forward((), (), x, Ctx())[2], jnp.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx.reshape(2, 2), [[1.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("stride", [None, 1])
def test_l2_pool_gradient_is_zero_on_an_all_zero_window(stride):
    layer = L2Pool(2, stride)
    x = jnp.array([[0.0, 0.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 4, 1)
    y, _, cache = layer.forward((), (), x, Ctx())
    _, dx = layer.backward((), cache, jnp.ones_like(y))
    assert np.all(np.isfinite(dx))
    np.testing.assert_array_equal(dx[0, :, :2, 0], 0.0)
    if stride is None:
        np.testing.assert_allclose(y.ravel(), [0.0, 5.0])
        np.testing.assert_allclose(dx[0, 0, 2:, 0], [3 / 5, 4 / 5])


COMPOSED = [("max", 2, None, (6, 6)), ("l2", 3, 2, (7, 7)), ("avg", 2, 1, (5, 6))]


@pytest.mark.parametrize("kind, window, stride, hw", COMPOSED)
def test_three_way_gradients_conv_pool_dense_float64(x64, kind, window, stride, hw):
    """conv → activation → pool → flatten → dense → softmax cross-entropy."""
    model = serial(Conv2D(3, 3, padding="SAME"), Relu if kind == "max" else Sigmoid, POOL[kind](window, stride),
                   Flatten, Dense(4))
    params, state = init_model(model, hw + (2,), jnp.float64)
    x = distinct_normal(1, (3,) + hw + (2,), jnp.float64)
    three_way(f"conv-{kind}pool{window}/{stride}-dense", model, params, state, x, jnp.array([0, 3, 1]),
              losses.softmax_cross_entropy, rtol=1e-10, fd_rtol=1e-6)


@pytest.mark.parametrize("kind, window, stride", [("max", 3, 2), ("l2", 2, None), ("avg", 2, None)])
def test_three_way_input_gradients_pool_alone_float64(x64, kind, window, stride):
    layer = POOL[kind](window, stride)
    x = distinct_normal(2, (2, 7 if window == 3 else 6, 5 if window == 3 else 4, 2), jnp.float64)
    out_shape = layer.init(None, x.shape[1:])[0]
    target = jnp.asarray(np.random.default_rng(3).normal(size=(2,) + out_shape))
    three_way(f"{kind}pool{window}/{stride}", layer, (), (), x, target, losses.quadratic, rtol=1e-10, fd_rtol=1e-6)


def test_manual_matches_autodiff_float32_conv_maxpool_dense():
    model = serial(Conv2D(4, 3), Relu, MaxPool(2), Flatten, Dense(3))
    params, state = init_model(model, (10, 10, 1), jnp.float32)
    x = distinct_normal(4, (5, 10, 10, 1), jnp.float32)
    three_way("conv-maxpool-dense", model, params, state, x, jnp.array([0, 1, 2, 1, 0]),
              losses.softmax_cross_entropy, rtol=1e-5, fd=False)


def test_flatten_and_reshape_round_trip():
    x = jnp.arange(2 * 3 * 4 * 5, dtype=jnp.float32).reshape(2, 3, 4, 5)
    assert Flatten.init(None, (3, 4, 5))[0] == (60,)
    y, _, token = Flatten.forward((), (), x, Ctx())
    np.testing.assert_array_equal(y, np.asarray(x).reshape(2, 60))
    _, dx = Flatten.backward((), token, y * 2)
    np.testing.assert_array_equal(dx, x * 2)
    layer = Reshape((4, -1, 1))
    assert layer.init(None, (60,))[0] == (4, 15, 1)
    z, _, token = layer.forward((), (), y, Ctx())
    assert z.shape == (2, 4, 15, 1)
    np.testing.assert_array_equal(layer.backward((), token, z)[1], y)


def test_pool_window_that_does_not_tile_the_input_is_an_init_error():
    with pytest.raises(ValueError, match=r"MaxPool\(2\).*do not tile the 7x8 input.*padding='SAME'"):
        MaxPool(2).init(None, (7, 8, 3))
    with pytest.raises(ValueError, match=r"AvgPool\(3, stride=2\).*do not tile"):
        AvgPool(3, 2).init(None, (8, 7, 1))
    with pytest.raises(ValueError, match=r"L2Pool\(4\).*window is larger than the 3x3 input"):
        L2Pool(4).init(None, (3, 3, 1))
    layer = MaxPool(2)
    with pytest.raises(ValueError, match="do not tile"):  # a data-dependent shape at forward
        layer.forward((), (), jnp.zeros((1, 5, 4, 1)), Ctx())


def test_pool_errors_name_the_layer_and_the_fix():
    with pytest.raises(ValueError, match=r"MaxPool\(2\).*\(H, W, C\).*Reshape"):
        MaxPool(2).init(None, (64,))
    with pytest.raises(ValueError, match=r"MaxPool\(2\).*\(batch, H, W, C\)"):
        MaxPool(2).forward((), (), jnp.zeros((2, 64)), Ctx())
    with pytest.raises(ValueError, match="MaxPool.*positive"):
        MaxPool(0)
    with pytest.raises(TypeError, match="MaxPool.*pair of ints"):
        MaxPool(2.5)


def test_reshape_errors():
    with pytest.raises(ValueError, match=r"Reshape\(\(28, 28, 1\)\).*\(100,\).*sizes must match"):
        Reshape((28, 28, 1)).init(None, (100,))
    with pytest.raises(ValueError, match="at most one -1"):
        Reshape((-1, -1))
    with pytest.raises(TypeError, match="tuple of ints"):
        Reshape(("a", 2))
