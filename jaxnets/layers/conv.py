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

Each equation has two written-out forms; which one runs is chosen by measurement (below).

Convolution forms. (C1) is one `lax.conv_general_dilated` (NHWC ⋆ HWIO). (C3) is a correlation of the input with
δ dilated by the stride (the batch axis is the contracted "feature" axis). (C4) is a full correlation of δ,
dilated by the stride, with the spatially flipped kernel (input and output channels swapped); the dilation is
either `lhs_dilation` ("dilated", native on GPUs/TPUs) or explicit: δ is interior-padded with sh − 1 zero rows
(sw − 1 columns) by `lax.pad` and convolved plainly ("interior"; XLA:CPU can run an `lhs_dilation` convolution as
a naive loop). When (H + pt + pb − kh) is not a multiple of the stride, the last r = (H + pt + pb − kh) mod sh
padded rows are never read by (C1): (C3) crops them (a negative high padding) and (C4) pads its output with r
zero rows, so those inputs get exactly zero gradient.

Patch forms. With t = (a, c) running over the kh·kw kernel taps, the patches of x are

    P[n, i, j, d·kh·kw + t] = xp[n, i·sh + a, j·sw + c, d]      (m, Ho, Wo, C·kh·kw)                  (C0)

(`lax.conv_general_dilated_patches`: a convolution with a 0/1 kernel, so a model on the patch forms still counts
as a convolutional model for `fit`'s driver choice), and the three equations become matrix products over
adjacent axes of NHWC arrays (w read as (C·kh·kw, F)):

    z[n, i, j, f] = Σ_k P[n, i, j, k] · w[k, f]                                                      (C1′)
    ∂C/∂w[k, f] = Σ_{n, i, j} P[n, i, j, k] · δ[n, i, j, f]                                          (C3′)
    ∂C/∂P = δ·wᵀ,  ∂C/∂xp = Σ_t place_t(∂C/∂P[..., t])  (col2im)                                     (C4′)

where place_t, the transpose of tap t's strided slice, is `lax.pad` with low padding (a, c) and interior padding
(sh − 1, sw − 1). The cache is x in both families (P is kh·kw times larger); (C3′) rebuilds P from it, and XLA
merges the two identical patch computations of a compiled forward + backward step (common subexpressions).

The rule (`RULES`, data, measured with benchmarks/layers.py on a 2-core CPU, jax 0.10.2; figures in
benchmarks/README.md, "Layers"): on the CPU backend the patch forms run (C1), (C3) and (C4) when the input has
at most `patches_max_channels` channels and the stride is 1 (strided 5×5 on 1 channel: 1.1–1.2× slower with
patches, so not there) (the first layer on images: for 28×28×1 → 20 maps 5×5 forward + ∂C/∂w
took 0.5–0.6× the convolution forms' time, ∂C/∂x 0.2–0.3×) and for every 1×1 kernel (a pointwise projection is a
matrix product; the convolution form of (C3) took ~10× longer); wider inputs keep the convolution forms (with 16
or more channels and 3×3 or 5×5 kernels the patch forms took 1.3–2.7× longer), with a strided (C4) by interior
padding. Every other backend keeps the convolution forms with `lhs_dilation` (cuDNN and TPU convolutions are
native there). `Conv2D(..., kernels=...)` overrides the rule.

"SAME" padding follows XLA/TensorFlow: Ho = ⌈H / sh⌉, total padding max((Ho − 1)·sh + kh − H, 0), the smaller
half (floor) on top/left. Explicit padding ((pt, pb), (pl, pr)) of non-negative ints is also accepted.

Mixed dtypes behave like `Dense`: x and w are promoted as `jnp` promotes them (float32 params with float64
inputs compute in float64), and each gradient comes back in the dtype of what it is the gradient of.
"""
from __future__ import annotations

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.core import Layer, Meta
from jaxnets.initializers import glorot_uniform, zeros
from jaxnets.layers._shapes import check_image_batch, check_image_shape, describe, pair

# Axis labels of the convolution forms (N batch, C feature, H/W spatial; kernels I in, O out).
_FORWARD = ("NHWC", "HWIO", "NHWC")      # (C1): x (m,H,W,C) ⋆ w (kh,kw,C,F) -> z (m,Ho,Wo,F)
_KERNEL_GRAD = ("CHWN", "IHWO", "HWNC")  # (C3): x as (C "batch", m "features") ⋆ δ (m in, F out) -> (kh,kw,C,F)
_INPUT_GRAD = ("NHWC", "HWOI", "NHWC")   # (C4): δ (m,Ho,Wo,F) ⋆ flipped w read as (F in, C out) -> (m,H,W,C)


class ConvKernels(NamedTuple):
    """Which written-out form computes each equation.

    forward:     "conv" (C1) or "patches" (C1′)
    kernel_grad: "conv" (C3) or "patches" (C3′)
    input_grad:  "dilated" (C4 with lhs_dilation), "interior" (C4, δ interior-padded by lax.pad) or "col2im" (C4′)
    """

    forward: str
    kernel_grad: str
    input_grad: str


CONV = ConvKernels("conv", "conv", "dilated")           # the convolution forms (GPU/TPU; 0.2.0 everywhere)
CONV_INTERIOR = ConvKernels("conv", "conv", "interior")  # the same without lhs_dilation
PATCHES = ConvKernels("patches", "patches", "col2im")   # the patch forms
KERNELS = {"conv": CONV, "conv_interior": CONV_INTERIOR, "patches": PATCHES}
_FORMS = {"forward": ("conv", "patches"), "kernel_grad": ("conv", "patches"),
          "input_grad": ("dilated", "interior", "col2im")}


class KernelRule(NamedTuple):
    """A backend's measured choice: the patch forms for inputs of at most `patches_max_channels` channels (strided
    too if `patches_strided`) and (if `patches_pointwise`) for every 1×1 kernel; otherwise `otherwise`."""

    patches_max_channels: int
    patches_strided: bool
    patches_pointwise: bool
    otherwise: ConvKernels


RULES = {"cpu": KernelRule(patches_max_channels=4, patches_strided=False, patches_pointwise=True,
                           otherwise=CONV_INTERIOR)}
DEFAULT_RULE = KernelRule(patches_max_channels=0, patches_strided=False, patches_pointwise=False, otherwise=CONV)


def choose_kernels(channels: int, kernel: tuple[int, int], backend: str | None = None,
                   stride: tuple[int, int] = (1, 1)) -> ConvKernels:
    """The forms `RULES` picks for an input of `channels` channels, a (kh, kw) kernel and `stride` on `backend`
    (default: JAX's default backend)."""
    rule = RULES.get(jax.default_backend() if backend is None else backend, DEFAULT_RULE)
    if rule.patches_pointwise and tuple(kernel) == (1, 1):
        return PATCHES
    if channels <= rule.patches_max_channels and (rule.patches_strided or tuple(stride) == (1, 1)):
        return PATCHES
    return rule.otherwise


class Geometry(NamedTuple):
    """One convolution's sizes: kernel (kh, kw), strides (sh, sw), padding ((pt, pb), (pl, pr)), input (h, w),
    output (ho, wo), and the padded rows/columns (rh, rw) past the last window (never read by (C1))."""

    kh: int
    kw: int
    sh: int
    sw: int
    pads: tuple
    h: int
    w: int
    ho: int
    wo: int
    rh: int
    rw: int


def geometry(kernel, stride, pads, h: int, w: int) -> Geometry:
    (kh, kw), (sh, sw), ((pt, pb), (pl, pr)) = kernel, stride, pads
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    return Geometry(kh, kw, sh, sw, pads, h, w, ho, wo, h + pt + pb - kh - (ho - 1) * sh,
                    w + pl + pr - kw - (wo - 1) * sw)


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """XLA's "SAME" padding of one spatial axis: output ⌈size/stride⌉, the extra row at the bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


# ---- (C1), (C3), (C4): the convolution forms ----

def conv_forward(x, w, g: Geometry, precision=None):
    """(C1): z = x ⋆ w, (m, H, W, C) -> (m, Ho, Wo, F), without the bias."""
    return lax.conv_general_dilated(x, w, (g.sh, g.sw), g.pads, dimension_numbers=_FORWARD, precision=precision)


def conv_kernel_grad(x, delta, g: Geometry, precision=None):
    """(C3): ∂C/∂w (kh, kw, C, F), the input correlated with δ dilated by the stride; unread rows cropped."""
    (pt, pb), (pl, pr) = g.pads
    return lax.conv_general_dilated(x, delta, (1, 1), ((pt, pb - g.rh), (pl, pr - g.rw)), rhs_dilation=(g.sh, g.sw),
                                    dimension_numbers=_KERNEL_GRAD, precision=precision)


def _full_padding(g: Geometry):
    """Padding of δ for the full correlation (C4), with r zero rows/columns for the unread input rows."""
    (pt, pb), (pl, pr) = g.pads
    return (g.kh - 1 - pt, g.kh - 1 - pb + g.rh), (g.kw - 1 - pl, g.kw - 1 - pr + g.rw)


def dilated_input_grad(delta, w, g: Geometry, precision=None):
    """(C4) with `lhs_dilation`: δ dilated by the stride, fully correlated with the flipped kernel -> (m, H, W, C)."""
    return lax.conv_general_dilated(delta, w[::-1, ::-1], (1, 1), _full_padding(g), lhs_dilation=(g.sh, g.sw),
                                    dimension_numbers=_INPUT_GRAD, precision=precision)


def interior_input_grad(delta, w, g: Geometry, precision=None):
    """(C4) without `lhs_dilation`: δ interior-padded by sh − 1 rows (sw − 1 columns) and edge-padded (negative
    edges crop) by `lax.pad`, then one plain VALID correlation with the flipped kernel -> (m, H, W, C)."""
    (lo_h, hi_h), (lo_w, hi_w) = _full_padding(g)
    spread = lax.pad(delta, jnp.zeros((), delta.dtype),
                     ((0, 0, 0), (lo_h, hi_h, g.sh - 1), (lo_w, hi_w, g.sw - 1), (0, 0, 0)))
    return lax.conv_general_dilated(spread, w[::-1, ::-1], (1, 1), "VALID", dimension_numbers=_INPUT_GRAD,
                                    precision=precision)


# ---- (C0), (C1′), (C3′), (C4′): the patch forms ----

def _tap_window(g: Geometry, a: int, c: int):
    """Start, end and strides of tap (a, c)'s slice of the channels-first padded input (C, m, Hp, Wp)."""
    return (a, c), (a + (g.ho - 1) * g.sh + 1, c + (g.wo - 1) * g.sw + 1), (g.sh, g.sw)


def patches(x, g: Geometry):
    """(C0): P (m, Ho, Wo, C·kh·kw) with P[n, i, j, d·kh·kw + t] = xp[n, i·sh + a, j·sw + c, d], tap t = (a, c):
    `lax.conv_general_dilated_patches` (a convolution with a 0/1 kernel, exact at HIGHEST precision; for a 1×1
    kernel, the strided slice of x)."""
    if (g.kh, g.kw) == (1, 1):
        (pt, pb), (pl, pr) = g.pads
        xp = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (pt, pb, 0), (pl, pr, 0), (0, 0, 0)))
        return lax.slice(xp, (0, 0, 0, 0), (x.shape[0], (g.ho - 1) * g.sh + 1, (g.wo - 1) * g.sw + 1, x.shape[3]),
                         (1, g.sh, g.sw, 1))
    return lax.conv_general_dilated_patches(x, (g.kh, g.kw), (g.sh, g.sw), g.pads, dimension_numbers=_FORWARD,
                                            precision=lax.Precision.HIGHEST)


def _patch_kernel(w):
    """w (kh, kw, C, F) read in the patches' feature order: (C·kh·kw, F), row d·kh·kw + t."""
    kh, kw, ch, f = w.shape
    return jnp.transpose(w, (2, 0, 1, 3)).reshape(ch * kh * kw, f)


def patches_forward(p, w, precision=None):
    """(C1′): z[n, i, j, f] = Σ_k P[n, i, j, k] · w[k, f] -> (m, Ho, Wo, F), without the bias."""
    return lax.dot_general(p, _patch_kernel(w), (((3,), (0,)), ((), ())), precision=precision)


def patches_kernel_grad(p, delta, kernel_shape, precision=None):
    """(C3′): ∂C/∂w[k, f] = Σ_{n, i, j} P[n, i, j, k] · δ[n, i, j, f], put back in shape (kh, kw, C, F)."""
    kh, kw, ch, f = kernel_shape
    dw = lax.dot_general(p, delta, (((0, 1, 2), (0, 1, 2)), ((), ())), precision=precision)   # (C·kh·kw, F)
    return jnp.transpose(dw.reshape(ch, kh, kw, f), (1, 2, 0, 3))


def col2im_input_grad(delta, w, g: Geometry, precision=None):
    """(C4′): ∂C/∂P = δ·wᵀ (m, Ho, Wo, C, kh·kw), each tap put back in place (the transpose of its strided slice:
    `lax.pad` with interior sh − 1, sw − 1) and summed; the padding cropped -> (m, H, W, C)."""
    kh, kw, ch, _ = w.shape
    dp = lax.dot_general(delta, _patch_kernel(w), (((3,), (1,)), ((), ())), precision=precision)
    dp = dp.reshape(dp.shape[:3] + (ch, kh * kw))
    (pt, pb), (pl, pr) = g.pads
    hp, wp = g.h + pt + pb, g.w + pl + pr
    zero = jnp.zeros((), delta.dtype)
    total = None
    for t in range(kh * kw):
        (a0, c0), (a1, c1), _ = _tap_window(g, t // kw, t % kw)
        placed = lax.pad(dp[..., t], zero, ((0, 0, 0), (a0, hp - a1, g.sh - 1), (c0, wp - c1, g.sw - 1), (0, 0, 0)))
        total = placed if total is None else total + placed
    return lax.slice(total, (0, pt, pl, 0), (total.shape[0], pt + g.h, pl + g.w, ch))   # crop the padding


_INPUT_GRADS = {"dilated": dilated_input_grad, "interior": interior_input_grad, "col2im": col2im_input_grad}


# ---- the layer ----

def _check_kernels(kernels, name):
    if kernels is None or isinstance(kernels, ConvKernels):
        forms = kernels
    elif isinstance(kernels, str) and kernels in KERNELS:
        forms = KERNELS[kernels]
    else:
        raise ValueError(f"{name}: kernels must be None (the measured rule), one of {sorted(KERNELS)} or a "
                         f"ConvKernels, got {kernels!r}")
    if forms is not None:
        for field, allowed in _FORMS.items():
            if getattr(forms, field) not in allowed:
                raise ValueError(f"{name}: kernels.{field} must be one of {allowed}, got {getattr(forms, field)!r}")
    return forms


def _int(value):
    """A non-negative int padding entry, or None (not an int: 1.5, "1", True)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_padding(padding, name):
    if isinstance(padding, str):
        if padding.upper() not in ("VALID", "SAME"):
            raise ValueError(
                f"{name}: padding must be 'VALID', 'SAME' or ((top, bottom), (left, right)), got {padding!r}")
        return padding.upper()
    try:
        (pt, pb), (pl, pr) = padding
    except (TypeError, ValueError):
        raise TypeError(
            f"{name}: padding must be 'VALID', 'SAME' or ((top, bottom), (left, right)), got {padding!r}") from None
    pads = tuple((_int(lo), _int(hi)) for lo, hi in ((pt, pb), (pl, pr)))
    if any(p is None for pair_ in pads for p in pair_):
        raise TypeError(f"{name}: explicit padding must be ints (rows and columns of zeros), got {padding!r}; "
                        "round it yourself, e.g. ((1, 2), (1, 1))")
    if min(min(p) for p in pads) < 0:
        raise ValueError(f"{name}: explicit padding must be non-negative, got {padding!r}")
    return pads


def _label(value) -> str:
    return getattr(value, "__name__", None) or repr(value)


def _name(features, kernel, stride, pad_spec, w_init, b_init, dtype, precision, use_bias, kernels) -> str:
    """The layer's name: a constructor call showing every argument that differs from its default."""
    parts = [str(features), describe(kernel)]
    if stride != (1, 1):
        parts.append(f"stride={describe(stride)}")
    if pad_spec != "VALID":
        parts.append(f"padding={pad_spec!r}")
    if w_init is not glorot_uniform:
        parts.append(f"w_init={_label(w_init)}")
    if b_init is not zeros:
        parts.append(f"b_init={_label(b_init)}")
    if dtype is not None:
        parts.append(f"dtype={jnp.dtype(dtype).name}")
    if precision is not None:
        parts.append(f"precision={precision}")
    if not use_bias:
        parts.append("use_bias=False")
    if kernels is not None:
        named = next((k for k, v in KERNELS.items() if v == kernels), None)
        parts.append(f"kernels={named!r}" if named else f"kernels={tuple(kernels)!r}")
    return f"Conv2D({', '.join(parts)})"


def Conv2D(features: int, kernel, stride=1, padding="VALID", w_init=glorot_uniform, b_init=zeros, dtype=None,
           precision=None, *, use_bias: bool = True, kernels=None) -> Layer:
    """A convolution with `features` feature maps of size `kernel` (int or (kh, kw)) and `stride`.

    params {"w": (kh, kw, C, features), "b": (features,)}; input (m, H, W, C) -> output (m, Ho, Wo, features).
    `use_bias=False` drops "b" (before a BatchNorm). `precision` is passed to the convolutions and matrix
    products (e.g. `lax.Precision.HIGHEST` on GPUs/TPUs). `kernels` picks the written-out forms ("conv",
    "conv_interior", "patches" or a `ConvKernels`); None (the default) applies the measured rule `RULES`.
    """
    if not isinstance(use_bias, bool):
        raise TypeError(f"Conv2D(use_bias): True or False, got {use_bias!r}")
    if not isinstance(features, int) or isinstance(features, bool) or features < 1:
        raise ValueError(f"Conv2D(features, kernel): features must be a positive int (feature maps), got {features!r}")
    label = f"Conv2D({features}, {kernel!r}, stride={stride!r}, padding={padding!r})"
    kh, kw = pair(kernel, "kernel", label)
    sh, sw = pair(stride, "stride", label)
    pad_spec = _check_padding(padding, label)
    forms = _check_kernels(kernels, label)
    name = _name(features, (kh, kw), (sh, sw), pad_spec, w_init, b_init, dtype, precision, use_bias, forms)

    def pads(h, w):
        if pad_spec == "VALID":
            return (0, 0), (0, 0)
        if pad_spec == "SAME":
            return same_padding(h, kh, sh), same_padding(w, kw, sw)
        return pad_spec

    def geometry_of(h, w):
        (pt, pb), (pl, pr) = pads(h, w)
        hp, wp = h + pt + pb, w + pl + pr
        if hp < kh or wp < kw:
            raise ValueError(
                f"{name}: the {kh}x{kw} kernel is larger than the padded input {hp}x{wp} (input {h}x{w} plus "
                "padding); use a smaller kernel, padding='SAME', or a larger input (or fewer pooling layers before it)"
            )
        return geometry((kh, kw), (sh, sw), ((pt, pb), (pl, pr)), h, w)

    def init(key, input_shape):
        h, w, c = check_image_shape(name, input_shape,
                                    "put Reshape((H, W, C)) before it, or load images with flatten=False")
        g = geometry_of(h, w)
        w_key, b_key = jax.random.split(key)
        params = {"w": w_init(w_key, (kh, kw, c, features), dtype)}
        if use_bias:
            params["b"] = b_init(b_key, (features,), dtype)
        return (g.ho, g.wo, features), params, ()

    def plan(channels):
        return forms if forms is not None else choose_kernels(channels, (kh, kw), stride=(sh, sw))

    def forward(params, state, x, ctx):
        w = params["w"]
        check_image_batch(name, x)
        if x.shape[-1] != w.shape[2]:
            raise ValueError(
                f"{name}: input has {x.shape[-1]} channels (shape {tuple(x.shape)}) but the kernel expects "
                f"{w.shape[2]}; init the model with the data's per-example shape (H, W, {x.shape[-1]}), "
                "or make sure images are NHWC (channels last)"
            )
        g = geometry_of(x.shape[1], x.shape[2])
        dtype_ = jnp.result_type(x, w)                        # promote as jnp does (and as Dense does)
        xc, wc = x.astype(dtype_), w.astype(dtype_)
        if plan(x.shape[-1]).forward == "patches":
            z = patches_forward(patches(xc, g), wc, precision)                                        # (C1′)
        else:
            z = conv_forward(xc, wc, g, precision)                                                    # (C1)
        return (z + params["b"] if use_bias else z), state, x  # cache: the input x

    def backward(params, x, delta):
        w = params["w"]
        g = geometry_of(x.shape[1], x.shape[2])
        kernels_ = plan(x.shape[-1])
        dtype_ = jnp.result_type(x, w, delta)
        xc, wc, delta = x.astype(dtype_), w.astype(dtype_), delta.astype(dtype_)
        if kernels_.kernel_grad == "patches":
            dw = patches_kernel_grad(patches(xc, g), delta, w.shape, precision)                       # (C3′)
        else:
            dw = conv_kernel_grad(xc, delta, g, precision)                                            # (C3)
        dx = _INPUT_GRADS[kernels_.input_grad](delta, wc, g, precision)                               # (C4)/(C4′)
        # Each gradient in the dtype of what it is the gradient of (a no-op when the dtypes agree).
        grads = {"w": dw.astype(w.dtype)}
        if use_bias:
            grads["b"] = jnp.sum(delta, axis=(0, 1, 2)).astype(params["b"].dtype)                   # (C2)
        return grads, dx.astype(x.dtype)

    return Layer(init, forward, backward, name, meta=Meta(bias="b" if use_bias else None, weights=("w",)))


__all__ = ["Conv2D", "ConvKernels", "KernelRule", "RULES", "DEFAULT_RULE", "KERNELS", "CONV", "CONV_INTERIOR",
           "PATCHES", "choose_kernels", "same_padding", "geometry", "Geometry", "patches", "conv_forward",
           "conv_kernel_grad", "dilated_input_grad", "interior_input_grad", "patches_forward",
           "patches_kernel_grad", "col2im_input_grad"]
