"""Pooling over spatial windows of NHWC images (max, L2, average), each with a hand-written backward.

A window of wh×ww pixels moves with strides (sh, sw) over each channel separately ("VALID": no padding). For
output pixel (i, j) the window is W_ij = {(i·sh + a, j·sw + c) : 0 ≤ a < wh, 0 ≤ c < ww} and

    max:  y_ij = max_{p ∈ W_ij} x_p           ∂y_ij/∂x_p = 1 for p = p*_ij, else 0                   (P1)
    L2:   y_ij = √(Σ_{p ∈ W_ij} x_p²)          ∂y_ij/∂x_p = x_p / y_ij  (taken as 0 when y_ij = 0)      (P2)
    avg:  y_ij = (1/(wh·ww)) Σ_{p ∈ W_ij} x_p   ∂y_ij/∂x_p = 1/(wh·ww)                                 (P3)

and ∂C/∂x_p = Σ_{ij : p ∈ W_ij} ∂C/∂y_ij · ∂y_ij/∂x_p (overlapping windows add up; pixels in no window get 0).

Tie rule for max pooling: p*_ij is the FIRST maximal element of the window in row-major order (top row first,
left to right); it receives the whole gradient, the other tied elements get 0. (jax.grad of `jnp.max` shares it
equally among ties instead, so the two differ only at ties.)

The windows must tile the input exactly: (H − wh) and (W − ww) must be multiples of the stride, otherwise `init`
raises (no silent cropping). With stride == window (the textbook's 2×2 pooling) the image is reshaped to
(m, Ho, wh, Wo, ww, C) and reduced over the window axes, forward and backward (no gathers, no scatters; max
routes dy by visiting the wh·ww offsets in row-major order, each taking dy where it equals the maximum and no
earlier offset has). Other strides use `lax.reduce_window` forward; the backward loops over the wh·ww window offsets (a, c): the strided
slice x[:, a::sh, c::sw] is that offset's "patch" of every window, the per-patch gradient is formed
elementwise (for max: a one-hot mask, the offsets visited in row-major order so the first maximum wins), and
`lax.pad` with interior padding sh − 1 (the transpose of the strided slice) puts it back in place.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer
from jaxnets.layers._shapes import check_image_batch, check_image_shape, describe, pair

_KINDS = ("max", "l2", "avg")


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


def _route_to_first_max(xr, y, dy):
    """(P1) on the (m, Ho, wh, Wo, ww, C) view: dy goes to the first maximum of each window in row-major order.

    The window offsets (a, c) are visited in row-major order; offset (a, c) takes dy where it equals the maximum
    and no earlier offset has taken it. Elementwise work only (XLA fuses it into one loop), no cumulative sums.
    """
    taken, rows = None, []
    for a in range(xr.shape[2]):
        cols = []
        for c in range(xr.shape[4]):
            hit = xr[:, :, a, :, c, :] == y
            hit = hit if taken is None else hit & ~taken
            taken = hit if taken is None else taken | hit
            cols.append(jnp.where(hit, dy, 0))
        rows.append(jnp.stack(cols, axis=3))   # (m, Ho, Wo, ww, C)
    return jnp.stack(rows, axis=2)             # (m, Ho, wh, Wo, ww, C)


def _safe_ratio(dy, y):
    """dy / y, with 0 where y == 0 (the L2-pool gradient convention at an all-zero window)."""
    nonzero = y > 0
    return jnp.where(nonzero, dy / jnp.where(nonzero, y, 1), 0)


def _offsets(x, ho, wo, wh, ww, sh, sw):
    """Yield ((a, c), patch) for each window offset in row-major order; patch[n, i, j, k] = x[n, i·sh+a, j·sw+c, k]."""
    m, _, _, ch = x.shape
    for a in range(wh):
        for c in range(ww):
            yield (a, c), lax.slice(x, (0, a, c, 0), (m, a + (ho - 1) * sh + 1, c + (wo - 1) * sw + 1, ch), (1, sh, sw, 1))


def _place(g, a, c, h, w, sh, sw):
    """Transpose of the strided slice in `_offsets`: put g (m, Ho, Wo, C) back at rows a + i·sh, columns c + j·sw."""
    ho, wo = g.shape[1], g.shape[2]
    zero = jnp.zeros((), g.dtype)
    return lax.pad(g, zero, ((0, 0, 0), (a, h - a - (ho - 1) * sh - 1, sh - 1), (c, w - c - (wo - 1) * sw - 1, sw - 1),
                             (0, 0, 0)))


def _pool(kind: str, window, stride, label: str) -> Layer:
    wh, ww = pair(window, "window", label)
    sh, sw = pair(window if stride is None else stride, "stride", label)
    name = f"{label}({describe((wh, ww))}" + ("" if (sh, sw) == (wh, ww) else f", stride={describe((sh, sw))}") + ")"
    tiled = (sh, sw) == (wh, ww)  # non-overlapping windows: the reshape path
    count = wh * ww

    def init(key, input_shape):
        h, w, c = check_image_shape(name, input_shape, "put Reshape((H, W, C)) before it")
        ho, wo = _output_size(name, h, w, wh, ww, sh, sw)
        return (ho, wo, c), (), ()

    def forward(params, state, x, ctx):
        check_image_batch(name, x)
        h, w = x.shape[1], x.shape[2]
        ho, wo = _output_size(name, h, w, wh, ww, sh, sw)
        if tiled:
            xr = _windows(x, ho, wh, wo, ww)
            if kind == "max":
                y = jnp.max(xr, axis=(2, 4))
            elif kind == "l2":
                y = jnp.sqrt(jnp.sum(xr * xr, axis=(2, 4)))
            else:
                y = jnp.mean(xr, axis=(2, 4))
        else:
            # Python-scalar init values: lax then uses its max/sum window primitives (which autodiff supports).
            dims, strides = (1, wh, ww, 1), (1, sh, sw, 1)
            if kind == "max":
                y = lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, "VALID")
            elif kind == "l2":
                y = jnp.sqrt(lax.reduce_window(x * x, 0.0, lax.add, dims, strides, "VALID"))
            else:
                y = lax.reduce_window(x, 0.0, lax.add, dims, strides, "VALID") / count
        # cache: what (P1)/(P2) need; (P3) needs only the shapes, which dy and the window determine.
        return y, state, ((x, y) if kind != "avg" else ())

    def backward(params, cache, dy):
        m, ho, wo, ch = dy.shape
        h, w = (ho - 1) * sh + wh, (wo - 1) * sw + ww
        if tiled:
            if kind == "max":                                                        # (P1), first maximum
                x, y = cache
                xr = _windows(x, ho, wh, wo, ww)
                dxr = _route_to_first_max(xr, y, dy)
            elif kind == "l2":                                                       # (P2)
                x, y = cache
                dxr = _windows(x, ho, wh, wo, ww) * _spread(_safe_ratio(dy, y))
            else:                                                                    # (P3)
                dxr = jnp.broadcast_to(_spread(dy / count), (m, ho, wh, wo, ww, ch))
            return (), dxr.reshape(m, h, w, ch)
        dx = None
        if kind == "max":
            x, y = cache
            taken = jnp.zeros(y.shape, bool)
            for (a, c), patch in _offsets(x, ho, wo, wh, ww, sh, sw):                # (P1), row-major offsets
                chosen = (patch == y) & ~taken
                taken = taken | chosen
                g = _place(jnp.where(chosen, dy, 0), a, c, h, w, sh, sw)
                dx = g if dx is None else dx + g
        elif kind == "l2":
            x, y = cache
            ratio = _safe_ratio(dy, y)
            for (a, c), patch in _offsets(x, ho, wo, wh, ww, sh, sw):                # (P2)
                g = _place(patch * ratio, a, c, h, w, sh, sw)
                dx = g if dx is None else dx + g
        else:
            share = dy / count
            for a in range(wh):                                                      # (P3)
                for c in range(ww):
                    g = _place(share, a, c, h, w, sh, sw)
                    dx = g if dx is None else dx + g
        return (), dx

    return Layer(init, forward, backward, name)


def MaxPool(window, stride=None) -> Layer:
    """Max pooling (P1) over `window` (int or (wh, ww)); `stride` defaults to the window. No params, no state."""
    return _pool("max", window, stride, "MaxPool")


def L2Pool(window, stride=None) -> Layer:
    """L2 pooling (P2): the square root of the sum of squares over each window (the textbook's L2 pooling)."""
    return _pool("l2", window, stride, "L2Pool")


def AvgPool(window, stride=None) -> Layer:
    """Average pooling (P3): the mean over each window."""
    return _pool("avg", window, stride, "AvgPool")


POOLS = {"max": MaxPool, "l2": L2Pool, "avg": AvgPool}
