"""Update time of each jaxnets optimizer against its optax twin, and their step-by-step parity.

    python benchmarks/optim.py                     # timing table (10M float32 parameters)
    python benchmarks/optim.py --parity            # worst parity per optimizer, float32 and float64

Timing: one jit-compiled `update` + `apply_updates` on a 10M-parameter float32 pytree (params and optimizer state
donated, as in a training loop), `block_until_ready` after every call. For each optimizer in turn, after warm-up,
the jaxnets and optax steps are timed alternately (who goes first alternates too), so that load from other
processes hits both alike. The table gives the median times, their ratio jaxnets/optax, and the median over rounds
of the per-round ratio (the two twins timed back to back, so slow changes in machine load cancel).
The last column says whether XLA's optimised programs are identical up to names and debug metadata, and the last
row times optax against itself, to show the size of the measurement noise.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxnets import optim  # noqa: E402

SHAPES = {  # 10,000,000 parameters in leaves of several shapes and nesting
    "embed": (20_000, 128),
    "block": ({"w": (2048, 2048), "b": (2048,)}, {"w": (2048, 1024), "b": (1024,)}),
    "conv": {"k": (3, 3, 256, 512), "scale": (512,)},
}
AA_CONTROL = "adam, A/A control: optax in both columns"
SCHEDULE = {m: m.warmup_cosine_decay_schedule(0.0, 1e-3, 100, 10_000) for m in (optim, optax)}
OPTIMIZERS = {
    "sgd": lambda o: o.sgd(1e-2),
    "sgd momentum": lambda o: o.sgd(1e-2, momentum=0.9),
    "sgd nesterov": lambda o: o.sgd(1e-2, momentum=0.9, nesterov=True),
    "adagrad": lambda o: o.adagrad(1e-2),
    "rmsprop": lambda o: o.rmsprop(1e-3),
    "rmsprop centered+mom": lambda o: o.rmsprop(1e-3, centered=True, momentum=0.9),
    "adam": lambda o: o.adam(1e-3),
    "adam schedule": lambda o: o.adam(SCHEDULE[o]),
    "adamw": lambda o: o.adamw(1e-3, weight_decay=1e-2),
    "clip+adamw": lambda o: o.chain(o.clip_by_global_norm(1.0), o.adamw(1e-3)),
}


def is_shape(s):
    return isinstance(s, tuple) and all(isinstance(d, int) for d in s)


def make_tree(shapes, key, dtype=jnp.float32):
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=is_shape)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, s, dtype) for k, s in zip(keys, leaves)])


def make_step(module, tx):
    """params, state, grads -> new params, new state, with `module`'s apply_updates (jaxnets.optim or optax)."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return module.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def compiled_program(step, *args) -> str:
    """The optimised XLA program as text, without names and debug metadata (file and function names)."""
    text = step.lower(*args).compile().as_text()
    text = re.sub(r",? ?metadata=\{[^}]*\}", "", text)
    text = re.sub(r"%[\w.-]+", "%_", text)
    return "\n".join(line for line in text.splitlines()
                     if not re.match(r'^(\d+ [{"]|HloModule|FileNames|FunctionNames|FileLocations|StackFrames)', line))


def bench(rounds: int, warmup: int) -> None:
    params = make_tree(SHAPES, jax.random.PRNGKey(0))
    grads = make_tree(SHAPES, jax.random.PRNGKey(1))
    n = sum(x.size for x in jax.tree.leaves(params))
    pairs = {name: ((optim, make(optim)), (optax, make(optax))) for name, make in OPTIMIZERS.items()}
    pairs[AA_CONTROL] = ((optax, optax.adam(1e-3)), (optax, optax.adam(1e-3)))
    rows = {}
    for name, pair in pairs.items():  # one optimizer at a time (memory); its two twins interleaved
        runs = []
        for module, tx in pair:
            p = jax.tree.map(jnp.copy, params)
            runs.append([make_step(module, tx), p, tx.init(p), []])
        same = compiled_program(runs[0][0], *runs[0][1:3], grads) == compiled_program(runs[1][0], *runs[1][1:3], grads)
        order = [0, 1]
        for r in range(warmup + rounds):
            order = order[::-1]  # alternate who goes first
            for i in order:
                step, p, s, times = runs[i]
                t0 = time.perf_counter()
                p, s = jax.block_until_ready(step(p, s, grads))
                dt = time.perf_counter() - t0
                runs[i][1:3] = [p, s]
                if r >= warmup:
                    times.append(dt)
        paired = statistics.median(a / b for a, b in zip(runs[0][3], runs[1][3]))  # same round: same load
        rows[name] = [statistics.median(run[3]) * 1e3 for run in runs] + [paired, same]
        del runs
    print(f"# {n:,} float32 parameters in {len(jax.tree.leaves(params))} leaves; {jax.devices()[0].platform} "
          f"({jax.device_count()} device), {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"jax {jax.__version__}, optax {optax.__version__}; "
          f"median of {rounds} interleaved rounds after {warmup} warm-up")
    print("| optimizer | jaxnets (ms) | optax (ms) | jaxnets/optax | paired ratio | same compiled XLA program |")
    print("|---|---:|---:|---:|---:|:---:|")
    for name, (ours, theirs, paired, same) in rows.items():
        same = "yes" if same else "NO"
        print(f"| {name} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.3f} | {paired:.3f} | {same} |")


# ----------------------------------------------------------------------------------------------- parity table
PARITY_CONFIGS = {
    "sgd": lambda o: o.sgd(0.05),
    "sgd momentum": lambda o: o.sgd(0.01, momentum=0.9),
    "sgd nesterov + piecewise": lambda o: o.sgd(o.piecewise_constant_schedule(0.05, {50: 0.5, 150: 0.1}), 0.9, True),
    "adagrad": lambda o: o.adagrad(0.1),
    "adagrad textbook (init 0, eps 1e-10)": lambda o: o.adagrad(0.5, initial_accumulator_value=0.0, eps=1e-10),
    "rmsprop": lambda o: o.rmsprop(1e-3),
    "rmsprop eps outside, decay .99": lambda o: o.rmsprop(1e-3, decay=0.99, eps=1e-6, eps_in_sqrt=False),
    "rmsprop centered+bc+cosine": lambda o: o.rmsprop(o.cosine_decay_schedule(1e-2, 150, alpha=0.1), centered=True,
                                                      bias_correction=True, eps_in_sqrt=False),
    "rmsprop init 1 + bc": lambda o: o.rmsprop(1e-3, initial_scale=1.0, bias_correction=True),
    "rmsprop momentum nesterov": lambda o: o.rmsprop(1e-3, momentum=0.9, nesterov=True),
    "adam": lambda o: o.adam(1e-3),
    "adam b1 .5 b2 .99 eps_root": lambda o: o.adam(1e-2, b1=0.5, b2=0.99, eps=1e-6, eps_root=1e-8),
    "adam nesterov + warmup-cosine": lambda o: o.adam(o.warmup_cosine_decay_schedule(0.0, 1e-2, 20, 200),
                                                      nesterov=True),
    "adamw": lambda o: o.adamw(1e-3),
    "adamw mask + wd schedule": lambda o: o.adamw(1e-3, weight_decay=o.linear_schedule(0.1, 0.0, 100),
                                                  mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
    "clip_by_global_norm + adam": lambda o: o.chain(o.clip_by_global_norm(1.0), o.adam(1e-2)),
}


CONTROL = "(control: adam vs optax adam with eps 1.1e-8)"


def parity_table(steps: int) -> None:
    """Worst relative difference (params, updates, state; all steps) of each configuration vs optax."""
    rng = np.random.default_rng(0)
    shapes = {"mlp": [{"w": (5, 8), "b": (8,)}, {"w": (8, 3), "b": (3,)}],
              "misc": {"a": (3, 4), "b": ((), {"c": (2, 2, 3)})}}
    leaves, treedef = jax.tree.flatten(shapes, is_leaf=is_shape)
    start = jax.tree.unflatten(treedef, [rng.normal(size=s) for s in leaves])
    table = jax.tree.map(lambda v: rng.normal(size=(steps,) + np.shape(v)), start["misc"])
    x, y = rng.normal(size=(16, 5)), np.eye(3)[rng.integers(0, 3, 16)]
    results = {}
    for dtype, x64 in (("float32", False), ("float64", True)):
        jax.config.update("jax_enable_x64", x64)
        cast = lambda t: jax.tree.map(lambda v: jnp.asarray(v, dtype), t)  # noqa: E731
        params, tab, xs, ys = cast(start), cast(table), cast(x), cast(y)

        def loss(p):
            logits = jnp.tanh(xs @ p[0]["w"] + p[0]["b"]) @ p[1]["w"] + p[1]["b"]
            return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.sum(ys * logits, axis=-1))

        def grads_fn(p, t):
            misc = jax.tree.map(lambda g, v: 50.0 * g[t] + 0.1 * v, tab, p["misc"])
            return {"mlp": jax.grad(loss)(p["mlp"]), "misc": misc}

        for name, make in PARITY_CONFIGS.items():
            results[name, dtype] = optim.parity(make(optim), make(optax), params, grads_fn, steps).max
        control = optim.parity(optim.adam(1e-3), optax.adam(1e-3, eps=1.1e-8), params, grads_fn, steps)
        results[CONTROL, dtype] = control.max
    jax.config.update("jax_enable_x64", False)
    print(f"# worst relative difference jaxnets vs optax {optax.__version__} over {steps} steps "
          f"(params, updates and state, every step); {jax.devices()[0].platform}")
    print("| configuration | float32 | float64 |")
    print("|---|---:|---:|")
    for name in [*PARITY_CONFIGS, CONTROL]:
        print(f"| {name} | {results[name, 'float32']:.3g} | {results[name, 'float64']:.3g} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="timed rounds per optimizer and library")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first (compilation included)")
    parser.add_argument("--parity", action="store_true", help="print the parity table instead of timings")
    parser.add_argument("--steps", type=int, default=200, help="steps for --parity")
    args = parser.parse_args()
    if args.parity:
        parity_table(args.steps)
    else:
        bench(args.rounds, args.warmup)


if __name__ == "__main__":
    main()
