"""Training throughput of jaxnets on the default JAX device (GPU, TPU or CPU): one table, also written as JSON.

    python benchmarks/device.py                      # every part; sized to finish in < 6 min on one GPU
    python benchmarks/device.py --quick              # smoke run: tiny data, 1 round (also on a CPU, slowly)
    python benchmarks/device.py --parts mlp,ceiling --configs large --rounds 5
    python benchmarks/device.py --out /tmp/results   # writes /tmp/results/device-<platform>.json

Everything runs on `jax.devices()[0]` on random data (throughput does not depend on the values); no input files.

Parts (`--parts`, comma list; default all):
  mlp       the three MLP configs of benchmarks/throughput.py (nielsen, mid, large; `--configs`): seconds per
            epoch of `jaxnets.fit` with manual and autodiff gradients, the plain-JAX peer and Flax linen (when
            flax imports; otherwise its rows say "skipped"), on 60,000 × 784 MNIST-shaped examples
  cnn       `models.cnn(activation="relu")` and `models.cnn2(activation="relu")`, batch 64, SGD 0.1, softmax
            cross-entropy on random 28×28×1 images: `fit` with the default `loop="auto"` (the driver it resolves
            to is shown), `loop="scan"` and `loop="step"`
  ensemble  16 members of mlp [784, 30, 10] (sigmoid, quadratic cost, SGD 3.0, batch 10): `fit_ensemble(keys=)`
            against 16 sequential `fit(key=keys[k])` calls training the same members
  bf16      the large config in float32 against `compute_dtype=jnp.bfloat16` (mixed precision)
  ceiling   the device's matmul rate, float32 and bfloat16, for (512×784)@(784×2048) and (512×2048)@(2048×2048),
            and fit's share of it at the large config, in float32 and bfloat16

Timing rules. Every clock stops only after the result is on the host or `block_until_ready` returned (fit's own
epoch time ends with fetching the epoch's metrics, outputs of the same program as the new params). Each
implementation's first epoch is its warm-up (tracing + XLA compile + fit's set-up), reported separately with the
XLA backend-compile seconds from `jax.monitoring`; the steady rows are medians of `--rounds` interleaved rounds,
each round running every implementation of the group once, the order rotated by one each round, and a ratio
compares two medians from the same rounds. Compilation seen during the timed rounds is recorded per row
(`compile_in_timed_s`; it should be 0). Slow configs can be timed on the first k mini-batches of the data (the
same subset for every implementation of the group) and scaled to the full epoch; such rows say so ("k/K
batches, ×s"). The plan per mode and platform is printed and stored in the JSON.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import os
import platform as host_platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))
from peers import CONFIGS, IMPLEMENTATIONS, builder  # noqa: E402
from throughput import CompileClock, epoch_flops, forward_flops, make_data  # noqa: E402

PARTS = ("mlp", "cnn", "ensemble", "bf16", "ceiling")
MLP_IMPLS = ("jaxnets-manual", "jaxnets-autodiff", "jax", "linen")
CNN_MODELS = ("cnn", "cnn2")
N_TRAIN = 60_000
CNN_BATCH, CNN_LR = 64, 0.1
ENSEMBLE_SIZES, ENSEMBLE_BATCH, ENSEMBLE_LR = (784, 30, 10), 10, 3.0

# Mini-batches timed per epoch (None: the full 60,000-example epoch), examples per ensemble epoch, rounds and
# timed matmul samples. Accelerators run full epochs (the slowest, nielsen's 6,000 steps, takes about a second);
# the ensemble trains on 12,000 examples per epoch (scaled), since its loop is 16 fits. On a CPU the full mode
# cuts the configs that take tens of seconds per epoch there; --quick uses tiny subsets everywhere and 4 ensemble
# members (each sequential fit recompiles a small set-up check, which dominates a tiny run).
PLANS = {
    "accelerator": {"rounds": 3, "batches": {"nielsen": None, "mid": None, "large": None, "cnn": None, "cnn2": None},
                    "ensemble_examples": 12_000, "ceiling_samples": 30},
    "cpu": {"rounds": 3, "batches": {"nielsen": None, "mid": None, "large": 12, "cnn": 60, "cnn2": 30},
            "ensemble_examples": 6_000, "ceiling_samples": 15},
    "quick": {"rounds": 1, "batches": {"nielsen": 50, "mid": 4, "large": 2, "cnn": 1, "cnn2": 1},
              "ensemble_examples": 200, "ceiling_samples": 3, "members": 4},
}


def flax_status():
    """(True, None) when flax.linen imports, else (False, the reason)."""
    try:
        importlib.import_module("flax.linen")
        return True, None
    except Exception as err:  # ImportError, or a flax that does not load with this jax
        return False, f"{type(err).__name__}: {err}"


def median(values):
    return statistics.median(values) if values else float("nan")


class Bench:
    """The run's state: the compile clock, the log, the rows of the table."""

    def __init__(self, rounds, log):
        self.rounds, self.log = rounds, log
        self.clock = CompileClock()
        self.rows = []
        self.skipped = []

    def compile_s(self, key):
        return self.clock.total.get(key, 0.0)

    def interleave(self, group, entries):
        """{name: make() -> runner} -> {name: {"warmup_s", "compile_s", "times", "compile_in_timed_s"}}.

        runner() trains one epoch and returns when its result is ready. Warm-up: make() and the first call
        (set-up, tracing, compile, one epoch); then `rounds` rounds of one call each, the order rotated by one
        every round.
        """
        runners, out = {}, {}
        try:
            for name, make in entries.items():
                self.clock.current = (group, name, "warm-up")
                start = time.perf_counter()
                runners[name] = make()
                runners[name]()
                warm = time.perf_counter() - start
                self.clock.current = None
                out[name] = {"warmup_s": warm, "compile_s": self.compile_s((group, name, "warm-up")), "times": []}
                self.log(f"  {group:8s} {name:32s} warm-up {warm:8.3f} s (XLA compile {out[name]['compile_s']:.2f} s)")
            names = list(entries)
            for r in range(self.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    self.clock.current = (group, name, "timed")
                    start = time.perf_counter()
                    runners[name]()
                    out[name]["times"].append(time.perf_counter() - start)
                    self.clock.current = None
                self.log(f"  {group:8s} round {r + 1}: " + ", ".join(f"{n} {out[n]['times'][-1]:.4f}" for n in names))
            for name in names:
                out[name]["compile_in_timed_s"] = self.compile_s((group, name, "timed"))
        finally:
            self.clock.current = None
            for run in runners.values():
                getattr(run, "close", lambda: None)()
        return out

    def timed_row(self, part, config, variant, res, scale, timed_batches, full_batches, base=None, note=""):
        """A steady-state row: the median epoch × scale, with its ratio against `base` (a row) if given."""
        med = median(res["times"])
        seconds = med * scale
        row = {"part": part, "config": config, "variant": variant, "status": "measured", "value": seconds,
               "unit": "s/epoch", "median_s": med, "times_s": res["times"], "rounds": len(res["times"]),
               "scale": scale, "scaled": scale != 1, "timed_batches": timed_batches, "full_batches": full_batches,
               "warmup_s": res["warmup_s"], "compile_s": res["compile_s"],
               "compile_in_timed_s": res.get("compile_in_timed_s", 0.0), "ratio": None, "ratio_base": None,
               "note": note}
        if base is not None:
            row["ratio"], row["ratio_base"] = seconds / base["value"], base["variant"]
        self.rows.append(row)
        return row

    def skip(self, part, config, variant, reason):
        self.skipped.append({"part": part, "config": config, "variant": variant, "reason": reason})
        self.rows.append({"part": part, "config": config, "variant": variant, "status": "skipped", "value": None,
                          "unit": None, "note": reason})


def batches_of(n, batch):
    return -(-n // batch)


def subset(n_wanted_batches, batch, n_full=N_TRAIN):
    """(examples, timed batches, full-epoch batches, scale to the full epoch)."""
    full_batches = batches_of(n_full, batch)
    n = n_full if n_wanted_batches is None else min(n_full, n_wanted_batches * batch)
    return n, batches_of(n, batch), full_batches, n_full / n


def mlp_group(bench, name, impls, bf16, batches, x, y, flax_ok, flax_reason):
    """One MLP config: every implementation in `impls` (+ fit with bfloat16 compute when `bf16`), interleaved.
    Returns {impl: row}."""
    from peers import jaxnets_fit

    import jax.numpy as jnp

    cfg = CONFIGS[name]
    n, timed, full, scale = subset(batches, cfg.batch)
    xs, ys = x[:n], y[:n]
    entries, missing = {}, []
    for impl in impls:
        if impl == "linen" and not flax_ok:
            missing.append(impl)
            continue
        entries[impl] = (lambda impl=impl: builder(impl)(cfg, xs, ys, 0))
    if bf16:
        entries["jaxnets-manual-bf16"] = lambda: jaxnets_fit.build(cfg, xs, ys, 0, gradients="manual",
                                                                   fit_kwargs={"compute_dtype": jnp.bfloat16})
    bench.log(f"mlp {name}: {cfg.sizes}, batch {cfg.batch}, {n} examples per timed epoch ({timed}/{full} batches)")
    res = bench.interleave(name, entries)
    rows = {}
    base = None
    part = "mlp" if "mlp" in bench.parts and name in bench.configs else ("bf16" if bf16 else "ceiling")
    for impl in entries:
        if impl == "jaxnets-manual-bf16":
            continue
        rows[impl] = bench.timed_row(part, name, IMPLEMENTATIONS[impl][1], res[impl], scale, timed, full, base=base,
                                     note="the fit epoch of the share rows" if part == "ceiling" else "")
        if impl == "jaxnets-manual":
            base = rows[impl]
            base["ratio"], base["ratio_base"] = 1.0, base["variant"]
    for impl in missing:
        bench.skip(part, name, IMPLEMENTATIONS[impl][1], f"skipped: flax not importable ({flax_reason})")
    if bf16:
        f32 = rows["jaxnets-manual"]
        if f32["part"] == "mlp":  # repeat the float32 row under bf16, the same measurement
            twin = dict(f32, part="bf16", variant="jaxnets.fit manual float32", ratio=1.0,
                        ratio_base="jaxnets.fit manual float32",
                        note="the mlp large jaxnets.fit manual row (same rounds)")
            bench.rows.append(twin)
            f32 = twin
        else:
            f32["variant"] = "jaxnets.fit manual float32"
            f32["ratio_base"] = f32["variant"]
        rows["jaxnets-manual-bf16"] = bench.timed_row(
            "bf16", name, "jaxnets.fit manual bfloat16", res["jaxnets-manual-bf16"], scale, timed, full, base=f32,
            note="compute_dtype=jnp.bfloat16 (float32 master params, loss in float32)")
    return rows


def cnn_group(bench, name, batches, x, y):
    """models.cnn / cnn2 (relu) with fit's three loop settings, interleaved."""
    import jax
    import optax

    from jaxnets import losses, models
    from jaxnets.training import loops
    from peers import jaxnets_fit

    model = (models.cnn if name == "cnn" else models.cnn2)(activation="relu")
    optimizer = optax.sgd(CNN_LR)  # one object for all three, so equal configs share compiled programs
    _, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))
    resolved = loops.resolve("auto", model, params, state, (28, 28, 1))
    n, timed, full, scale = subset(batches, CNN_BATCH)
    xs, ys = x[:n].reshape(n, 28, 28, 1), y[:n]
    bench.log(f"cnn {name}: {model.name}, batch {CNN_BATCH}, {n} examples per timed epoch ({timed}/{full} batches); "
              f"loop='auto' resolves to {resolved!r} on {jax.default_backend()}")
    entries = {loop: (lambda loop=loop: jaxnets_fit.runner(model, losses.softmax_cross_entropy, optimizer, xs, ys,
                                                           CNN_BATCH, 0, fit_kwargs={"loop": loop}))
               for loop in ("auto", "scan", "step")}
    res = bench.interleave(name, entries)
    base = bench.timed_row("cnn", name, f"fit loop=auto (-> {resolved})", res["auto"], scale, timed, full,
                           note=f"the default; the same compiled program as loop={resolved}")
    base["ratio"], base["ratio_base"] = 1.0, base["variant"]
    scan = bench.timed_row("cnn", name, "fit loop=scan", res["scan"], scale, timed, full, base=base)
    step = bench.timed_row("cnn", name, "fit loop=step", res["step"], scale, timed, full, base=base)
    faster = "scan" if scan["value"] <= step["value"] else "step"
    note = (f"step/scan = {step['value'] / scan['value']:.2f}: {faster} is faster here; "
            f"auto picks {resolved}" + (" (agrees)" if faster == resolved else " (disagrees)"))
    step["note"] = note
    return {"auto": base, "scan": scan, "step": step, "resolved": resolved, "faster": faster}


def ensemble_group(bench, members, n, x, y):
    """fit_ensemble(keys=K keys) against K sequential fit(key=keys[k]) calls, each call 2 epochs; the steady
    sample is the engine's time of epoch 2 (ensemble: all members; loop: the sum over members)."""
    import jax

    import jaxnets
    from jaxnets import losses, models, optim

    model = models.mlp(list(ENSEMBLE_SIZES), activation="sigmoid", output="sigmoid")
    loss, optimizer = losses.quadratic, optim.sgd(ENSEMBLE_LR)
    xs, ys = jax.device_put(x[:n]), jax.device_put(y[:n])  # on the device once, outside every clock
    keys = jax.random.split(jax.random.key(0), members)
    timed, full, scale = batches_of(n, ENSEMBLE_BATCH), batches_of(N_TRAIN, ENSEMBLE_BATCH), N_TRAIN / n
    kept = {}

    def ensemble():
        start = time.perf_counter()
        res = jaxnets.fit_ensemble(model, loss, optimizer, (xs, ys), epochs=2, batch_size=ENSEMBLE_BATCH, keys=keys,
                                   progress=False)
        wall = time.perf_counter() - start
        kept["ensemble"] = res
        return res.epoch_seconds[0], res.epoch_seconds[1], wall

    def loop():
        start, first, second, results = time.perf_counter(), 0.0, 0.0, []
        for k in range(members):
            r = jaxnets.fit(model, loss, optimizer, (xs, ys), epochs=2, batch_size=ENSEMBLE_BATCH, key=keys[k],
                            progress=False)
            first, second = first + r.history["time"][0], second + r.history["time"][1]
            results.append(r)
        kept["loop"] = results
        return first, second, time.perf_counter() - start

    calls = {"fit_ensemble": ensemble, f"{members} x fit": loop}
    bench.log(f"ensemble: {members} x {list(ENSEMBLE_SIZES)}, batch {ENSEMBLE_BATCH}, {n} examples per epoch "
              f"({timed}/{full} batches), 2 epochs per call")
    out = {}
    for name, call in calls.items():  # warm-up round: compiles
        bench.clock.current = ("ensemble", name, "warm-up")
        _, second, wall = call()
        bench.clock.current = None
        # warm-up: the first call less its second epoch (set-up, tracing, compile and the first epoch)
        out[name] = {"warmup_s": wall - second, "compile_s": bench.compile_s(("ensemble", name, "warm-up")),
                     "times": [], "walls": [wall]}
        bench.log(f"  ensemble {name:32s} warm-up {wall - second:8.3f} s (XLA compile {out[name]['compile_s']:.2f} s)")
    names = list(calls)
    for r in range(bench.rounds):
        for name in names[r % 2:] + names[:r % 2]:
            bench.clock.current = ("ensemble", name, "timed")
            _, second, wall = calls[name]()
            bench.clock.current = None
            out[name]["times"].append(second)
            out[name]["walls"].append(wall)
        bench.log(f"  ensemble round {r + 1}: " + ", ".join(f"{n} {out[n]['times'][-1]:.4f}" for n in names))
    for name in names:
        # fit compiles small helper programs in its set-up (outside the timed epochs); recorded, not timed
        out[name]["compile_in_timed_s"] = 0.0
        out[name]["setup_compile_s"] = bench.compile_s(("ensemble", name, "timed"))
    ens, fits = kept["ensemble"], kept["loop"]
    diff = max(float(np.max(np.abs(np.asarray(ens.params[0]["w"][k]) - np.asarray(fits[k].params[0]["w"]))))
               for k in range(members))
    base = bench.timed_row("ensemble", "mlp [784,30,10]", f"fit_ensemble ({members} members)", out["fit_ensemble"],
                           scale, timed, full, note="epoch 2 of each call (engine-timed)")
    base["ratio"], base["ratio_base"] = 1.0, base["variant"]
    row = bench.timed_row("ensemble", "mlp [784,30,10]", f"{members} sequential fit", out[f"{members} x fit"], scale,
                          timed, full, base=base,
                          note=f"sum of the members' epoch 2; same members: max |W1 diff| {diff:.1e}; fit set-up "
                               f"compiled {out[f'{members} x fit']['setup_compile_s']:.2f} s in the rounds, outside "
                               "the timed epochs")
    for r, name in ((base, "fit_ensemble"), (row, f"{members} x fit")):
        r["call_walls_s"] = out[name]["walls"]
        r["setup_compile_in_rounds_s"] = out[name]["setup_compile_s"]
    row["max_w1_diff"] = diff
    return base, row


def matmul_rates(bench, shapes, samples, quick):
    """[(dtype name, (m, k, n), row)]: GFLOP/s = 2·m·k·n / median seconds per call."""
    import jax
    import jax.numpy as jnp

    f = jax.jit(jnp.matmul)
    cpu = jax.default_backend() == "cpu"
    out = []
    for dtype in (jnp.float32, jnp.bfloat16):
        for m, k, n in shapes:
            a = jax.random.normal(jax.random.PRNGKey(0), (m, k), dtype)
            b = jax.random.normal(jax.random.PRNGKey(1), (k, n), dtype)
            a, b = jax.block_until_ready((a, b))
            bench.clock.current = ("ceiling", (m, k, n, jnp.dtype(dtype).name), "warm-up")
            start = time.perf_counter()
            f(a, b).block_until_ready()
            warm = time.perf_counter() - start
            bench.clock.current = None
            start = time.perf_counter()
            f(a, b).block_until_ready()
            one = time.perf_counter() - start
            # On an accelerator a call of a few µs is dominated by dispatch and the host round trip, so a sample
            # is `calls` back-to-back dispatches ending in block_until_ready (one stream: they run in order). On
            # the CPU, independent calls may overlap on the thread pool, so every call is blocked on.
            calls = 1 if (cpu or quick) else max(1, min(200, math.ceil(0.005 / max(one, 1e-7))))
            times = []
            for _ in range(samples):
                start = time.perf_counter()
                for _ in range(calls):
                    c = f(a, b)
                c.block_until_ready()
                times.append((time.perf_counter() - start) / calls)
            flops = 2 * m * k * n
            name = jnp.dtype(dtype).name
            row = {"part": "ceiling", "config": f"({m}x{k})@({k}x{n})", "variant": f"jnp.matmul {name}",
                   "status": "measured", "value": flops / median(times) / 1e9, "unit": "GFLOP/s",
                   "best_gflops": flops / min(times) / 1e9, "median_call_s": median(times), "times_s": times,
                   "samples": samples, "calls_per_sample": calls, "rounds": samples, "scaled": False, "scale": 1,
                   "warmup_s": warm, "compile_s": bench.compile_s(("ceiling", (m, k, n, name), "warm-up")),
                   "compile_in_timed_s": 0.0, "ratio": None, "ratio_base": None,
                   "note": f"median of {samples} samples of {calls} call(s)"}
            bench.rows.append(row)
            out.append((name, (m, k, n), row))
    return out


def ceiling_share(bench, rates, fit_row, dtype):
    """fit's share of the matmul ceiling at the large config: ceiling epoch / fit epoch (medians)."""
    sizes = CONFIGS["large"].sizes
    by_shape = {(k, n): row["value"] for name, (m, k, n), row in rates if name == dtype}
    layers = [(a, c) for a, c in zip(sizes[:-1], sizes[1:]) if (a, c) in by_shape]
    ideal = 3 * sum(forward_flops(layer, N_TRAIN) / (by_shape[layer] * 1e9) for layer in layers)
    flops = epoch_flops(sizes)
    share = ideal / fit_row["value"]
    row = {"part": "ceiling", "config": "large", "variant": f"fit share of {dtype} ceiling", "status": "measured",
           "value": 100 * share, "unit": "%", "ceiling_epoch_s": ideal, "fit_epoch_s": fit_row["value"],
           "fit_gflops": flops / fit_row["value"] / 1e9, "epoch_tflop": flops / 1e12, "rounds": fit_row["rounds"],
           "scaled": fit_row["scaled"], "scale": fit_row["scale"], "timed_batches": fit_row["timed_batches"],
           "full_batches": fit_row["full_batches"], "ratio": None, "ratio_base": None,
           "note": (f"ceiling epoch {ideal:.4g} s (3 x forward FLOPs of 784x2048, 2048x2048 at their measured rates; "
                    f"2048x10 left out) vs fit {fit_row['value']:.4g} s = {flops / fit_row['value'] / 1e9:.1f} "
                    f"GFLOP/s ({flops / 1e12:.2f} TFLOP/epoch)")}
    bench.rows.append(row)
    return row


def fmt_value(row):
    if row["status"] != "measured":
        return "skipped"
    unit = row["unit"]
    if unit == "s/epoch":
        return f"{row['value']:.4g} s"
    if unit == "GFLOP/s":
        return f"{row['value']:.1f} GFLOP/s"
    return f"{row['value']:.0f} %"


def fmt_timed_on(row):
    if row["status"] != "measured":
        return ""
    if row["part"] == "ceiling" and row["unit"] == "GFLOP/s":
        return f"{row['samples']} x {row['calls_per_sample']} call(s)"
    if row.get("scaled"):
        return f"{row['timed_batches']}/{row['full_batches']} batches, x{row['scale']:.3g}"
    return f"full epoch ({row['full_batches']} batches)"


def table(rows):
    """The one printed table (a list of lines, Markdown)."""
    head = ["part", "config", "variant", "median", "ratio", "warm-up s", "XLA compile s", "rounds", "timed on",
            "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ok = r["status"] == "measured"
        ratio = f"{r['ratio']:.2f} x {r['ratio_base']}" if ok and r.get("ratio") is not None else ""
        warm = f"{r['warmup_s']:.2f}" if ok and "warmup_s" in r else ""
        comp = f"{r['compile_s']:.2f}" if ok and "compile_s" in r else ""
        cells = [r["part"], r["config"], r["variant"], fmt_value(r), ratio, warm, comp,
                 str(r.get("rounds", "")) if ok else "", fmt_timed_on(r), r.get("note", "")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default=",".join(PARTS), help="comma list of " + ", ".join(PARTS))
    ap.add_argument("--configs", default=",".join(CONFIGS), help="MLP configs of the mlp part: " + ", ".join(CONFIGS))
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny data subsets, 1 round")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default: 3, --quick 1)")
    ap.add_argument("--members", type=int, default=None, help="ensemble members (default 16, --quick 4)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="directory of device-<platform>.json")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    configs = [c for c in args.configs.split(",") if c]
    for p in parts:
        if p not in PARTS:
            ap.error(f"unknown part {p!r}; choose from {', '.join(PARTS)}")
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown config {c!r}; choose from {', '.join(CONFIGS)}")
    if args.rounds is not None and args.rounds < 1:
        ap.error("--rounds must be >= 1")
    if args.members is not None and args.members < 1:
        ap.error("--members must be >= 1")

    t_start = time.perf_counter()
    load_start = os.getloadavg()

    def log(msg):
        print(msg, flush=True)

    import jax
    import jaxlib

    device = jax.devices()[0]
    plan_name = "quick" if args.quick else ("cpu" if device.platform == "cpu" else "accelerator")
    plan = dict(PLANS[plan_name])
    plan["rounds"] = args.rounds or plan["rounds"]
    plan["members"] = args.members or plan.get("members", 16)
    bench = Bench(plan["rounds"], log)
    bench.parts, bench.configs = parts, configs
    flax_ok, flax_reason = flax_status()
    log(f"jax {jax.__version__} on {device.platform} ({device.device_kind}); plan {plan_name!r}: {plan['rounds']} "
        f"round(s), batches per timed epoch {plan['batches']}, ensemble {plan['members']} x "
        f"{plan['ensemble_examples']} examples; "
        f"parts {parts}; load average {load_start[0]:.1f}; flax {'yes' if flax_ok else 'no'}")
    # only as many examples as the largest subset needs (a full epoch needs all 60,000)
    needed = [N_TRAIN if b is None else b * (CONFIGS[c].batch if c in CONFIGS else CNN_BATCH)
              for c, b in plan["batches"].items()]
    x, y = make_data(n=min(N_TRAIN, max(needed + [plan["ensemble_examples"]])))

    mlp_rows, rates = {}, None
    want_large = "mlp" in parts and "large" in configs or "bf16" in parts or "ceiling" in parts
    for name in CONFIGS:
        if name == "large" and want_large:
            impls = list(MLP_IMPLS) if "mlp" in parts and "large" in configs else ["jaxnets-manual"]
            mlp_rows[name] = mlp_group(bench, name, impls, "bf16" in parts, plan["batches"][name], x, y, flax_ok,
                                       flax_reason)
            if "ceiling" in parts:  # right after the large timings, under the same load
                cfg = CONFIGS["large"]
                shapes = [(cfg.batch, cfg.sizes[0], cfg.sizes[1]), (cfg.batch, cfg.sizes[1], cfg.sizes[2])]
                rates = matmul_rates(bench, shapes, plan["ceiling_samples"], args.quick)
                ceiling_share(bench, rates, mlp_rows[name]["jaxnets-manual"], "float32")
                if "jaxnets-manual-bf16" in mlp_rows[name]:
                    ceiling_share(bench, rates, mlp_rows[name]["jaxnets-manual-bf16"], "bfloat16")
        elif "mlp" in parts and name in configs:
            mlp_rows[name] = mlp_group(bench, name, MLP_IMPLS, False, plan["batches"][name], x, y, flax_ok, flax_reason)
    if "cnn" in parts:
        for name in CNN_MODELS:
            cnn_group(bench, name, plan["batches"][name], x, y)
    if "ensemble" in parts:
        ensemble_group(bench, plan["members"], plan["ensemble_examples"], x, y)

    order = {p: i for i, p in enumerate(PARTS)}
    rows = sorted(bench.rows, key=lambda r: order[r["part"]])  # stable: keeps the measuring order within a part
    elapsed = time.perf_counter() - t_start
    load_end = os.getloadavg()
    lines = table(rows)
    log("")
    for line in lines:
        log(line)
    log("")
    log(f"{device.platform} / {device.device_kind}, jax {jax.__version__}; plan {plan_name!r}, {plan['rounds']} "
        f"interleaved round(s) per group; ratios: medians of the same rounds; 'k/K batches, xS': timed on the first k "
        f"mini-batches and scaled by S to 60,000 examples; warm-up: set-up + tracing + compile + first epoch; load "
        f"average {load_start[0]:.1f} -> {load_end[0]:.1f}; {elapsed:.0f} s in all")
    for s in bench.skipped:
        log(f"skipped: {s['part']} {s['config']} {s['variant']}: {s['reason']}")
    timed_compiles = [r for r in rows if r.get("compile_in_timed_s", 0) > 0]
    for r in timed_compiles:
        log(f"warning: {r['compile_in_timed_s']:.2f} s of XLA compilation inside the timed rounds of {r['part']} "
            f"{r['config']} {r['variant']}")

    result = {
        "platform": device.platform, "device_kind": device.device_kind, "device": str(device),
        "device_count": jax.device_count(), "jax_version": jax.__version__, "jaxlib_version": jaxlib.__version__,
        "default_matmul_precision": str(jax.config.jax_default_matmul_precision),
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "python": host_platform.python_version(),
        "host": host_platform.node(), "cpu_count": os.cpu_count(), "load_average_start": list(load_start),
        "load_average_end": list(load_end), "load_average": load_start[0], "quick": args.quick, "plan": plan_name,
        "rounds": plan["rounds"], "batches": plan["batches"], "ensemble_examples": plan["ensemble_examples"],
        "members": plan["members"], "parts": parts, "configs": configs, "flax": flax_ok, "skipped": bench.skipped,
        "elapsed_s": elapsed, "argv": sys.argv[1:] if argv is None else list(argv),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": rows, "table": lines,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"device-{device.platform}.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
