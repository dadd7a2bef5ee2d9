"""2-D convolution (the textbook's local receptive fields with shared weights), with a hand-written backward.

Images are NHWC: x has shape (m, H, W, C). The kernel w has shape (kh, kw, C, F) and the bias b shape (F,): one
shared set of weights per feature map. With padding (pt, pb) rows and (pl, pr) columns and strides (sh, sw),
the forward pass is the cross-correlation

    z[n, i, j, f] = b[f] + Σ_{a, c, d} xp[n, i·sh + a, j·sw + c, d] · w[a, c, d, f]              (C1)

where xp is x zero-padded; the output is Ho = (H + pt + pb − kh) // sh + 1 rows (likewise Wo). The backward
pass, with δ = ∂C/∂z:

    ∂C/∂b[f]          = Σ_{n, i, j} δ[n, i, j, f]                                                  (C2)
    ∂C/∂w[a, c, d, f] = Σ_{n, i, j} xp[n, i·sh + a, j·sw + c, d] · δ[n, i, j, f]                   (C3)
    ∂C/∂xp[n, p, q, d] = Σ_{i·sh + a = p, j·sw + c = q} Σ_f δ[n, i, j, f] · w[a, c, d, f]          (C4)

(C3) is a correlation of the input with δ dilated by the stride (the batch axis is the contracted "feature"
axis); (C4) is a full correlation of δ, dilated by the stride, with the spatially flipped kernel (input and
output channels swapped). Both are single `lax.conv_general_dilated` calls whose dimension numbers name the
axes, so no array is transposed. When (H + pt + pb − kh) is not a multiple of the stride, the last
r = (H + pt + pb − kh) mod sh padded rows are never read by (C1): (C3) crops them (a negative high padding)
and (C4) pads its output with r zero rows, so those inputs get exactly zero gradient.

"SAME" padding follows XLA/TensorFlow: Ho = ⌈H / sh⌉, total padding max((Ho − 1)·sh + kh − H, 0), the smaller
half (floor) on top/left. Explicit padding ((pt, pb), (pl, pr)) is also accepted.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer, Meta
from jaxnets.initializers import glorot_uniform, zeros
from jaxnets.layers._shapes import check_image_batch, check_image_shape, describe, pair

# Axis labels of the three convolutions (N batch, C feature, H/W spatial; kernels I in, O out).
_FORWARD = ("NHWC", "HWIO", "NHWC")      # (C1): x (m,H,W,C) ⋆ w (kh,kw,C,F) -> z (m,Ho,Wo,F)
_KERNEL_GRAD = ("CHWN", "IHWO", "HWNC")  # (C3): x as (C "batch", m "features") ⋆ δ (m in, F out) -> (kh,kw,C,F)
_INPUT_GRAD = ("NHWC", "HWOI", "NHWC")   # (C4): δ (m,Ho,Wo,F) ⋆ flipped w read as (F in, C out) -> (m,H,W,C)


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """XLA's "SAME" padding of one spatial axis: output ⌈size/stride⌉, the extra row at the bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _check_padding(padding, name):
    if isinstance(padding, str):
        if padding.upper() not in ("VALID", "SAME"):
            raise ValueError(
                f"{name}: padding must be 'VALID', 'SAME' or ((top, bottom), (left, right)), got {padding!r}")
        return padding.upper()
    try:
        (pt, pb), (pl, pr) = padding
        pads = tuple((int(lo), int(hi)) for lo, hi in ((pt, pb), (pl, pr)))
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: padding must be 'VALID', 'SAME' or ((top, bottom), (left, right)), got {padding!r}") from None
    if min(min(p) for p in pads) < 0:
        raise ValueError(f"{name}: explicit padding must be non-negative, got {padding!r}")
    return pads


def Conv2D(features: int, kernel, stride=1, padding="VALID", w_init=glorot_uniform, b_init=zeros, dtype=None,
           precision=None, *, use_bias: bool = True) -> Layer:
    """A convolution with `features` feature maps of size `kernel` (int or (kh, kw)) and `stride`.

    params {"w": (kh, kw, C, features), "b": (features,)}; input (m, H, W, C) -> output (m, Ho, Wo, features).
    `use_bias=False` drops "b" (before a BatchNorm). `precision` is passed to `lax.conv_general_dilated` (e.g.
    `lax.Precision.HIGHEST` on GPUs/TPUs).
    """
    if not isinstance(use_bias, bool):
        raise TypeError(f"Conv2D(use_bias): True or False, got {use_bias!r}")
    if not isinstance(features, int) or isinstance(features, bool) or features < 1:
        raise ValueError(f"Conv2D(features, kernel): features must be a positive int (feature maps), got {features!r}")
    label = f"Conv2D({features}, {kernel!r}, stride={stride!r}, padding={padding!r})"
    kh, kw = pair(kernel, "kernel", label)
    sh, sw = pair(stride, "stride", label)
    pad_spec = _check_padding(padding, label)
    name = (f"Conv2D({features}, {describe((kh, kw))}"
            + (f", stride={describe((sh, sw))}" if (sh, sw) != (1, 1) else "")
            + (f", {pad_spec}" if isinstance(pad_spec, str) and pad_spec != "VALID" else "")
            + (")" if use_bias else ", use_bias=False)"))

    def pads(h, w):
        if pad_spec == "VALID":
            return (0, 0), (0, 0)
        if pad_spec == "SAME":
            return same_padding(h, kh, sh), same_padding(w, kw, sw)
        return pad_spec

    def out_size(h, w):
        (pt, pb), (pl, pr) = pads(h, w)
        hp, wp = h + pt + pb, w + pl + pr
        if hp < kh or wp < kw:
            raise ValueError(
                f"{name}: the {kh}x{kw} kernel is larger than the padded input {hp}x{wp} (input {h}x{w} plus "
                "padding); use a smaller kernel, padding='SAME', or a larger input (or fewer pooling layers before it)"
            )
        return (hp - kh) // sh + 1, (wp - kw) // sw + 1

    def init(key, input_shape):
        h, w, c = check_image_shape(name, input_shape,
                                    "put Reshape((H, W, C)) before it, or load images with flatten=False")
        ho, wo = out_size(h, w)
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (kh, kw, c, features), dtype)}
        if use_bias:
            params["b"] = b_init(b_key, (features,), dtype)
        return (ho, wo, features), params, ()

    def forward(params, state, x, ctx):
        w = params["w"]
        check_image_batch(name, x)
        if x.shape[-1] != w.shape[2]:
            raise ValueError(
                f"{name}: input has {x.shape[-1]} channels (shape {tuple(x.shape)}) but the kernel expects "
                f"{w.shape[2]}; init the model with the data's per-example shape (H, W, {x.shape[-1]}), "
                "or make sure images are NHWC (channels last)"
            )
        out_size(x.shape[1], x.shape[2])
        z = lax.conv_general_dilated(x, w, (sh, sw), pads(x.shape[1], x.shape[2]), dimension_numbers=_FORWARD,
                                     precision=precision)
        return (z + params["b"] if use_bias else z), state, x  # cache: the input x

    def backward(params, x, delta):
        w = params["w"]
        h, wd = x.shape[1], x.shape[2]
        ho, wo = delta.shape[1], delta.shape[2]
        (pt, pb), (pl, pr) = pads(h, wd)
        # Padded rows/columns past the last window (never read by (C1)).
        rh = h + pt + pb - kh - (ho - 1) * sh
        rw = wd + pl + pr - kw - (wo - 1) * sw
        dw = lax.conv_general_dilated(x, delta, (1, 1), ((pt, pb - rh), (pl, pr - rw)),        # (C3)
                                      rhs_dilation=(sh, sw), dimension_numbers=_KERNEL_GRAD, precision=precision)
        dx = lax.conv_general_dilated(delta, w[::-1, ::-1], (1, 1),                           # (C4)
                                      ((kh - 1 - pt, kh - 1 - pb + rh), (kw - 1 - pl, kw - 1 - pr + rw)),
                                      lhs_dilation=(sh, sw), dimension_numbers=_INPUT_GRAD, precision=precision)
        grads = {"w": dw}
        if use_bias:
            grads["b"] = jnp.sum(delta, axis=(0, 1, 2))                                          # (C2)
        return grads, dx

    return Layer(init, forward, backward, name, meta=Meta(bias="b" if use_bias else None, weights=("w",)))
