"""Pooling over spatial windows of NHWC images (max, L2, average), each with a hand-written backward.

A window of wh×ww pixels moves with strides (sh, sw) over each channel separately ("VALID": no padding). For
output pixel (i, j) the window is W_ij = {(i·sh + a, j·sw + c) : 0 ≤ a < wh, 0 ≤ c < ww} and

    max:  y_ij = max_{p ∈ W_ij} x_p           ∂y_ij/∂x_p = 1 for p = p*_ij, else 0                   (P1)
    L2:   y_ij = √(Σ_{p ∈ W_ij} x_p²)          ∂y_ij/∂x_p = x_p / y_ij  (taken as 0 when y_ij = 0)      (P2)
    avg:  y_ij = (1/(wh·ww)) Σ_{p ∈ W_ij} x_p   ∂y_ij/∂x_p = 1/(wh·ww)                                 (P3)

and ∂C/∂x_p = Σ_{ij : p ∈ W_ij} ∂C/∂y_ij · ∂y_ij/∂x_p
(overlapping windows add up; pixels in no window get 0).

Tie rule for max pooling: p*_ij is the FIRST maximal element of the window in row-major order (top row first,
left to right); it receives the whole gradient, the other tied elements get 0. (jax.grad of `jnp.max` shares it
equally among ties instead, so the two differ only at ties.)

The windows must tile the input exactly: (H − wh) and (W − ww) must be multiples of the stride, otherwise `init`
raises (no silent cropping). With stride == window (the textbook's 2×2 pooling) the image is reshaped to
(m, Ho, wh, Wo, ww, C) and reduced over the window axes, forward and backward (no gathers, no scatters; max
routes dy by visiting the wh·ww offsets in row-major order, each taking dy where it equals the maximum and no
earlier offset has). Other strides use `lax.reduce_window` forward; the backward loops over the wh·ww window
offsets (a, c): the strided slice x[:, a::sh, c::sw] is that offset's "patch" of every window, the per-patch
gradient is formed elementwise (for max: a one-hot mask, the offsets visited in row-major order so the first
maximum wins), and `lax.pad` with interior padding sh − 1 (the transpose of the strided slice) puts it back in
place (with stride == window the patches are stacked back into the window view instead).

Each kind is a `PoolRule`: its reductions and its per-offset gradient rule are functions passed to `pool`, so a
new kind of pooling is a new rule, not a new branch. `GlobalAvgPool` averages each feature map over all its
positions, (m, H, W, C) -> (m, C), with ∂C/∂x = ∂C/∂y / (H·W) at every position (P4).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer
from jaxnets.layers._shapes import check_image_batch, check_image_shape, describe, pair

def _output_size(name, h, w, wh, ww, sh, sw):
    if h < wh or w < ww:
        raise ValueError(f"{name}: the {wh}x{ww} window is larger than the {h}x{w} input; use a smaller window "
                         "or fewer pooling layers")
    if (h - wh) % sh or (w - ww) % sw:
        raise ValueError(
            f"{name}: windows of {wh}x{ww} with stride {sh}x{sw} do not tile the {h}x{w} input "
            f"((H − window) must be a multiple of the stride: {h - wh} % {sh}, {w - ww} % {sw}); crop or pad the "
            "input (e.g. padding='SAME' in the convolution before it) or choose a window/stride that divides it"
        )
    return (h - wh) // sh + 1, (w - ww) // sw + 1


def _windows(x, ho, wh, wo, ww):
    """(m, H, W, C) -> (m, Ho, wh, Wo, ww, C) for non-overlapping windows (stride == window)."""
    return x.reshape(x.shape[0], ho, wh, wo, ww, x.shape[3])


def _spread(y):
    """(m, Ho, Wo, C) -> (m, Ho, 1, Wo, 1, C), broadcastable against `_windows`."""
    return y[:, :, None, :, None, :]


def _safe_ratio(dy, y):
    """dy / y, with 0 where y == 0 (the L2-pool gradient convention at an all-zero window)."""
    nonzero = y > 0
    return jnp.where(nonzero, dy / jnp.where(nonzero, y, 1), 0)


def _offsets(x, ho, wo, wh, ww, sh, sw):
    """Yield ((a, c), patch) for each window offset in row-major order;
    patch[n, i, j, k] = x[n, i·sh+a, j·sw+c, k]."""
    m, _, _, ch = x.shape
    for a in range(wh):
        for c in range(ww):
            yield (a, c), lax.slice(x, (0, a, c, 0), (m, a + (ho - 1) * sh + 1, c + (wo - 1) * sw + 1, ch),
                                    (1, sh, sw, 1))


def _place(g, a, c, h, w, sh, sw):
    """Transpose of the strided slice in `_offsets`: put g (m, Ho, Wo, C) back at rows a + i·sh, columns c + j·sw."""
    ho, wo = g.shape[1], g.shape[2]
    zero = jnp.zeros((), g.dtype)
    return lax.pad(g, zero, ((0, 0, 0), (a, h - a - (ho - 1) * sh - 1, sh - 1), (c, w - c - (wo - 1) * sw - 1, sw - 1),
                             (0, 0, 0)))


class PoolRule(NamedTuple):
    """How one kind of pooling reduces a window and routes the gradient back, as functions:

    tiled(xr):                    (m, Ho, wh, Wo, ww, C) windows -> (m, Ho, Wo, C), for stride == window
    strided(x, dims, strides):    `lax.reduce_window` form for any stride
    offset_grad(patch, y, dy, carry) -> (∂C/∂patch, carry): the gradient of window offset (a, c) given the
        patch of every window at that offset (m, Ho, Wo, C), visited in row-major order; `carry` (None at first)
        lets a rule remember earlier offsets (max pooling: which windows already gave their gradient away)
    keeps_input: whether offset_grad needs the input and output (the cache), else only shapes
    """

    tiled: Callable
    strided: Callable
    offset_grad: Callable
    keeps_input: bool = True


def _first_max_grad(patch, y, dy, taken):
    # (P1): the first offset (row-major) that equals the window's maximum takes all of dy
    hit = patch == y
    if taken is not None:
        hit = hit & ~taken
    return jnp.where(hit, dy, 0), (hit if taken is None else taken | hit)


def _l2_grad(patch, y, dy, carry):
    return patch * _safe_ratio(dy, y), carry                                            # (P2)


def _avg_grad(count):
    return lambda patch, y, dy, carry: (dy / count, carry)                              # (P3)


MAX = PoolRule(tiled=lambda xr: jnp.max(xr, axis=(2, 4)),
               strided=lambda x, dims, strides: lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, "VALID"),
               offset_grad=_first_max_grad)
L2 = PoolRule(tiled=lambda xr: jnp.sqrt(jnp.sum(xr * xr, axis=(2, 4))),
              strided=lambda x, dims, strides: jnp.sqrt(lax.reduce_window(x * x, 0.0, lax.add, dims, strides,
                                                                          "VALID")),
              offset_grad=_l2_grad)


def _avg_rule(count: int) -> PoolRule:
    return PoolRule(tiled=lambda xr: jnp.mean(xr, axis=(2, 4)),
                    strided=lambda x, dims, strides: lax.reduce_window(x, 0.0, lax.add, dims, strides, "VALID") / count,
                    offset_grad=_avg_grad(count), keeps_input=False)


def pool(rule_for, window, stride, label: str) -> Layer:
    """A pooling layer from its rule: `rule_for(window_size) -> PoolRule` (see MAX, L2, `_avg_rule`)."""
    wh, ww = pair(window, "window", label)
    sh, sw = pair(window if stride is None else stride, "stride", label)
    name = f"{label}({describe((wh, ww))}" + ("" if (sh, sw) == (wh, ww) else f", stride={describe((sh, sw))}") + ")"
    tiled = (sh, sw) == (wh, ww)  # non-overlapping windows: the reshape path
    rule = rule_for(wh * ww)

    def init(key, input_shape):
        h, w, c = check_image_shape(name, input_shape, "put Reshape((H, W, C)) before it")
        ho, wo = _output_size(name, h, w, wh, ww, sh, sw)
        return (ho, wo, c), (), ()

    def forward(params, state, x, ctx):
        check_image_batch(name, x)
        ho, wo = _output_size(name, x.shape[1], x.shape[2], wh, ww, sh, sw)
        if tiled:
            y = rule.tiled(_windows(x, ho, wh, wo, ww))
        else:
            y = rule.strided(x, (1, wh, ww, 1), (1, sh, sw, 1))
        # cache: what the gradient rule needs; without the input, the shapes follow from dy and the window.
        return y, state, ((x, y) if rule.keeps_input else ())

    def backward(params, cache, dy):
        m, ho, wo, ch = dy.shape
        h, w = (ho - 1) * sh + wh, (wo - 1) * sw + ww
        x, y = cache if rule.keeps_input else (jnp.zeros((m, h, w, ch), dy.dtype), None)
        carry, dx, rows = None, None, []
        for (a, c), patch in _offsets(x, ho, wo, wh, ww, sh, sw):     # row-major window offsets
            g, carry = rule.offset_grad(patch, y, dy, carry)
            if tiled:
                rows.append(g)
            else:
                g = _place(g, a, c, h, w, sh, sw)
                dx = g if dx is None else dx + g
        if tiled:  # offset (a, c) of window (i, j) is pixel (i·wh + a, j·ww + c): stack and reshape back
            dxr = jnp.stack([jnp.stack(rows[a * ww:(a + 1) * ww], axis=3) for a in range(wh)], axis=2)
            return (), dxr.reshape(m, h, w, ch)
        return (), dx

    return Layer(init, forward, backward, name)


def MaxPool(window, stride=None) -> Layer:
    """Max pooling (P1) over `window` (int or (wh, ww)); `stride` defaults to the window. No params, no state."""
    return pool(lambda count: MAX, window, stride, "MaxPool")


def L2Pool(window, stride=None) -> Layer:
    """L2 pooling (P2): the square root of the sum of squares over each window (the textbook's L2 pooling)."""
    return pool(lambda count: L2, window, stride, "L2Pool")


def AvgPool(window, stride=None) -> Layer:
    """Average pooling (P3): the mean over each window."""
    return pool(_avg_rule, window, stride, "AvgPool")


def _global_avg_init(key, input_shape):
    _, _, c = check_image_shape("GlobalAvgPool", input_shape, "it pools the H and W axes of NHWC feature maps")
    return (c,), (), ()


def _global_avg_forward(params, state, x, ctx):
    check_image_batch("GlobalAvgPool", x)
    return jnp.mean(x, axis=(1, 2)), state, jnp.zeros((0,) + tuple(x.shape[1:]), x.dtype)  # cache: a shape token


def _global_avg_backward(params, token, dy):
    h, w = token.shape[1], token.shape[2]
    # y[n, c] = (1/(H·W)) Σ_{i,j} x[n, i, j, c]  ->  ∂C/∂x[n, i, j, c] = ∂C/∂y[n, c] / (H·W)          (P4)
    return (), jnp.broadcast_to((dy / (h * w))[:, None, None, :], (dy.shape[0], h, w, dy.shape[1]))


# The mean of each feature map over all its H·W positions: (m, H, W, C) -> (m, C), e.g. before a ResNet's classifier.
GlobalAvgPool = Layer(_global_avg_init, _global_avg_forward, _global_avg_backward, "GlobalAvgPool")


POOLS = {"max": MaxPool, "l2": L2Pool, "avg": AvgPool}
