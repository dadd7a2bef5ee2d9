"""One conv or pool layer, forward + backward: hand-written vs `jax.vjp` of the same forward vs the 0.2.0 formulation.

    python benchmarks/layers.py                        # every configuration, batch 64, 7 rounds of 10 calls
    python benchmarks/layers.py --only cnn,pool        # configurations whose name contains a word
    python benchmarks/layers.py --forms                # also each conv kernel family forced ("conv", "patches")
    python benchmarks/layers.py --quick                # smoke run: 2 rounds of 2 calls

For each configuration (a layer and an input shape, float32) every variant is one jitted function
(params, x, dy) -> (y, dparams, dx) — the forward and the full backward, dx included — and runs on the same
arrays:

    manual    the jaxnets layer's forward and hand-written backward, with the kernels its rule picks
    autodiff  `jax.vjp` of the same jaxnets forward (what `gradients.autodiff` differentiates; for a layer on the
              patch forms, the autodiff of patches + matmul)
    vjp conv  `jax.vjp` of the convolution form of the forward (`lax.conv_general_dilated`, what a plain-JAX
              user differentiates; 0.2.0's autodiff)
    previous  the 0.2.0 formulation, copied below: (C1) (C3) (C4) as three convolutions, (C4) with `lhs_dilation`;
              max pooling by window offsets (as today, which it still is)
    conv / patches (with --forms) the layer with `kernels="conv_interior"` / `kernels="patches"` forced

Timing: one warm-up call each (compiles), then `--rounds` rounds; in each round every variant runs `--calls`
calls back to back, the order rotated each round so that load from other processes falls on all alike; the
figure is the median over rounds of the mean time per call. `os.getloadavg()` is printed before and after: on a
shared machine only the ratios (measured in the same run) mean much. Every variant's outputs are checked against
`manual`'s (relative error printed; max-pool ties are not exercised by the random inputs).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from jaxnets.core import Ctx  # noqa: E402
from jaxnets.layers import Conv2D, MaxPool  # noqa: E402
from jaxnets.layers import conv as conv_module  # noqa: E402

# Conv rows: (name, features, kernel, stride, padding, use_bias, per-example input shape); pool rows: (name,
# window, stride, shape). The textbook CNN (models.cnn) and cnn2, a residual CNN (models.resnet_cnn on 28×28
# MNIST: 3×3 SAME stacks of 16 and 32 maps, bias-free, 1×1 projections), strided and SAME forms, an RGB stem.
CONV_CONFIGS = [
    ("cnn conv1 28x28x1->20 5x5", 20, 5, 1, "VALID", True, (28, 28, 1)),
    ("cnn2 conv2 12x12x20->40 5x5", 40, 5, 1, "VALID", True, (12, 12, 20)),
    ("SAME 28x28x1->20 5x5", 20, 5, 1, "SAME", True, (28, 28, 1)),
    ("RGB stem 32x32x3->16 3x3 SAME", 16, 3, 1, "SAME", True, (32, 32, 3)),
    ("resnet 3x3 SAME 28x28x16->16", 16, 3, 1, "SAME", False, (28, 28, 16)),
    ("resnet 3x3 SAME 14x14x32->32", 32, 3, 1, "SAME", False, (14, 14, 32)),
    ("resnet 1x1 proj 14x14x16->32", 32, 1, 1, "VALID", False, (14, 14, 16)),
    ("strided 3x3 s2 SAME 28x28x16->32", 32, 3, 2, "SAME", True, (28, 28, 16)),
    ("strided 5x5 s2 VALID 28x28x1->20", 20, 5, 2, "VALID", True, (28, 28, 1)),
    ("strided 1x1 s2 proj 28x28x16->32", 32, 1, 2, "VALID", False, (28, 28, 16)),
]
POOL_CONFIGS = [
    ("pool cnn max 2x2 24x24x20", 2, 2, (24, 24, 20)),
    ("pool cnn2 max 2x2 8x8x40", 2, 2, (8, 8, 40)),
    ("pool strided max 3x3 s2 25x25x16", 3, 2, (25, 25, 16)),
]


# ---- the 0.2.0 formulation, kept here for the comparison ----

def previous_conv(x, w, b, dy, stride, pads):
    """0.2.0's Conv2D forward and backward, as it was: (C1), (C3), (C4) as three `lax.conv_general_dilated`
    calls, (C4) with `lhs_dilation`. Returns (z, {"w", "b"}, dx)."""
    (sh, sw), ((pt, pb), (pl, pr)) = stride, pads
    kh, kw = w.shape[:2]
    z = lax.conv_general_dilated(x, w, (sh, sw), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    h, wd = x.shape[1], x.shape[2]
    ho, wo = z.shape[1], z.shape[2]
    rh = h + pt + pb - kh - (ho - 1) * sh
    rw = wd + pl + pr - kw - (wo - 1) * sw
    dw = lax.conv_general_dilated(x, dy, (1, 1), ((pt, pb - rh), (pl, pr - rw)),                        # (C3)
                                  rhs_dilation=(sh, sw), dimension_numbers=("CHWN", "IHWO", "HWNC"))
    dx = lax.conv_general_dilated(dy, w[::-1, ::-1], (1, 1),                                           # (C4)
                                  ((kh - 1 - pt, kh - 1 - pb + rh), (kw - 1 - pl, kw - 1 - pr + rw)),
                                  lhs_dilation=(sh, sw), dimension_numbers=("NHWC", "HWOI", "NHWC"))
    grads = {"w": dw}
    if b is not None:
        z = z + b
        grads["b"] = jnp.sum(dy, axis=(0, 1, 2))
    return z, grads, dx


def previous_pool_tiled_max(x, dy, window):
    """0.2.0's max pool with stride == window: reshape to windows, max; backward by the window offsets in
    row-major order, each taking dy where it equals the maximum and no earlier offset did; stacked back."""
    wh, ww = window
    m, h, w, c = x.shape
    ho, wo = h // wh, w // ww
    xr = x.reshape(m, ho, wh, wo, ww, c)
    y = jnp.max(xr, axis=(2, 4))
    taken, rows = None, []
    for a in range(wh):
        for b in range(ww):
            hit = xr[:, :, a, :, b, :] == y
            hit = hit if taken is None else hit & ~taken
            taken = hit if taken is None else taken | hit
            rows.append(jnp.where(hit, dy, 0))
    dxr = jnp.stack([jnp.stack(rows[a * ww:(a + 1) * ww], axis=3) for a in range(wh)], axis=2)
    return y, dxr.reshape(m, h, w, c)


def previous_pool_strided_max(x, dy, window, stride):
    """0.2.0's max pool with overlapping windows: `lax.reduce_window` forward; backward by strided slices per
    offset, a first-maximum mask, and `lax.pad` with interior padding back into place."""
    (wh, ww), (sh, sw) = window, stride
    m, h, w, c = x.shape
    ho, wo = (h - wh) // sh + 1, (w - ww) // sw + 1
    y = lax.reduce_window(x, -jnp.inf, lax.max, (1, wh, ww, 1), (1, sh, sw, 1), "VALID")
    taken, dx = None, None
    zero = jnp.zeros((), x.dtype)
    for a in range(wh):
        for b in range(ww):
            patch = lax.slice(x, (0, a, b, 0), (m, a + (ho - 1) * sh + 1, b + (wo - 1) * sw + 1, c), (1, sh, sw, 1))
            hit = patch == y
            hit = hit if taken is None else hit & ~taken
            taken = hit if taken is None else taken | hit
            g = lax.pad(jnp.where(hit, dy, 0), zero,
                        ((0, 0, 0), (a, h - a - (ho - 1) * sh - 1, sh - 1), (b, w - b - (wo - 1) * sw - 1, sw - 1),
                         (0, 0, 0)))
            dx = g if dx is None else dx + g
    return y, dx


def conv_variants(features, kernel, stride, padding, use_bias, shape, forms):
    """The Conv2D and {variant: fn(params, x, dy) -> (y, dparams, dx)}."""
    layer = Conv2D(features, kernel, stride, padding, use_bias=use_bias)
    out = {"manual": _layer_fn(layer), "autodiff": _vjp_fn(layer)}
    h, w = shape[:2]
    pads = ((0, 0), (0, 0)) if padding == "VALID" else (conv_module.same_padding(h, kernel, stride),
                                                          conv_module.same_padding(w, kernel, stride))
    out["previous"] = lambda params, x, dy: previous_conv(x, params["w"], params.get("b"), dy, (stride, stride), pads)
    out["vjp conv"] = _vjp_fn(Conv2D(features, kernel, stride, padding, use_bias=use_bias, kernels="conv"))
    if forms:
        for family, kernels in (("conv", "conv_interior"), ("patches", "patches")):
            out[family] = _layer_fn(Conv2D(features, kernel, stride, padding, use_bias=use_bias, kernels=kernels))
    return layer, out


def pool_variants(window, stride, shape):
    """The MaxPool and {variant: fn(params, x, dy) -> (y, (), dx)}."""
    layer = MaxPool(window, stride)
    out = {"manual": _layer_fn(layer), "autodiff": _vjp_fn(layer)}
    if window == stride:
        out["previous"] = lambda params, x, dy: _no_params(previous_pool_tiled_max(x, dy, (window, window)))
    else:
        out["previous"] = lambda params, x, dy: _no_params(
            previous_pool_strided_max(x, dy, (window, window), (stride, stride)))
    return layer, out


def _no_params(result):
    return result[0], (), result[1]


def _layer_fn(layer):
    def fn(params, x, dy):
        y, _, cache = layer.forward(params, (), x, Ctx())
        grads, dx = layer.backward(params, cache, dy)
        return y, grads, dx
    return fn


def _vjp_fn(layer):
    def fn(params, x, dy):
        y, vjp = jax.vjp(lambda p, x_: layer.forward(p, (), x_, Ctx())[0], params, x)
        grads, dx = vjp(dy)
        return y, grads, dx
    return fn


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    return float(np.max(np.abs(a - b), initial=0.0) / scale) if scale > 0 else 0.0


def measure(fns, args, rounds, calls):
    """{variant: median over rounds of the mean seconds per call}, interleaved, the order rotated each round."""
    for fn in fns.values():
        jax.block_until_ready(fn(*args))
    names = list(fns)
    times = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            for _ in range(calls):
                out = fns[n](*args)
            jax.block_until_ready(out)
            times[n].append((time.perf_counter() - start) / calls)
    return {n: statistics.median(t) for n, t in times.items()}


def run_config(layer, fns, shape, batch, rounds, calls):
    """(median s per call by variant, max relative error vs manual by variant) for one configuration."""
    fns = {k: jax.jit(v) for k, v in fns.items()}
    out_shape, params, _ = layer.init(jax.random.PRNGKey(0), shape)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch,) + shape), jnp.float32)
    dy = jnp.asarray(rng.normal(size=(batch,) + tuple(out_shape)), jnp.float32)
    args = (params, x, dy)
    ref = jax.tree_util.tree_leaves(fns["manual"](*args))
    errs = {n: max(rel_err(a, b) for a, b in zip(jax.tree_util.tree_leaves(fn(*args)), ref)) for n, fn in fns.items()}
    return measure(fns, args, rounds, calls), errs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--only", default="", help="comma-separated words; run configurations whose name has one")
    parser.add_argument("--forms", action="store_true", help="also time each conv kernel family forced")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.calls = 2, 2
    words = [w for w in args.only.split(",") if w]
    chosen = [c for c in CONV_CONFIGS + POOL_CONFIGS if not words or any(w in c[0] for w in words)]
    print(f"jax {jax.__version__} on {jax.default_backend()} ({os.cpu_count()} CPUs); batch {args.batch}, "
          f"{args.rounds} rounds x {args.calls} calls; load average {os.getloadavg()}")
    cols = ["manual", "autodiff", "vjp conv", "previous"] + (["conv", "patches"] if args.forms else [])
    print(f"{'configuration':34s}" + "".join(f"{c + ' ms':>13s}" for c in cols)
          + f"{'man/auto':>10s}{'man/vjpc':>10s}{'man/prev':>10s}  kernels (rule)            max rel err")
    rows = []
    for config in chosen:
        name, shape = config[0], config[-1]
        if len(config) == 7:
            layer, fns = conv_variants(*config[1:], args.forms)
            kernels = "/".join(conv_module.choose_kernels(shape[-1], (config[2], config[2]),
                                                          stride=(config[3], config[3])))
        else:
            layer, fns = pool_variants(*config[1:])
            kernels = "-"
        med, errs = run_config(layer, fns, shape, args.batch, args.rounds, args.calls)
        print(f"{name:34s}" + "".join(f"{med[c] * 1e3:13.3f}" if c in med else f"{'-':>13s}" for c in cols)
              + f"{med['manual'] / med['autodiff']:10.2f}"
              + (f"{med['manual'] / med['vjp conv']:10.2f}" if "vjp conv" in med else f"{'-':>10s}")
              + f"{med['manual'] / med['previous']:10.2f}  "
              + f"{kernels:26s}{max(errs.values()):.1e}", flush=True)
        rows.append((name, med))
    print(f"load average {os.getloadavg()}")
    return rows


if __name__ == "__main__":
    main()
