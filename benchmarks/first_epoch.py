"""Time to the end of the first epoch in a fresh process: jaxnets.fit against a plain JAX loop, cold and warm.

    python benchmarks/first_epoch.py                 # 3 interleaved rounds (about 4 min on 2 cores)
    python benchmarks/first_epoch.py --rounds 5 --models mlp

Each measurement is a new Python process (nothing compiled, nothing memoised), timed from just before the
training call to the end of the first epoch (the result fetched to the host); imports and data creation are
outside the timer. Three contenders per model, run in an order rotated every round so that machine load falls on
all alike; the table gives medians:

- `plain`: a hand-written JAX loop — the same network, `jax.value_and_grad`, optax's SGD, one jitted step per
  mini-batch (the last partial batch included) — what a user would write without a library;
- `fit cold`: `jaxnets.fit(..., epochs=1)` with an empty persistent compilation cache;
- `fit warm`: the same after another process filled the cache (`jaxnets.enable_compilation_cache`): a repeated
  script run. Its "obtain" column is the seconds JAX spent obtaining executables (compiling, or loading from the
  cache: JAX times a load as a short compile).

Models: the MLP [784, 30, 10] (sigmoid, quadratic cost, SGD η = 3, batch 10; 10,000 MNIST-shaped examples) and
the textbook CNN (`models.cnn()`: conv 20×5×5, max-pool 2, 100 sigmoid, 10; SGD η = 0.1, batch 64; 3,200
28×28×1 images). The data are uniform random values from a fixed seed: the time does not depend on them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent('''
    import json, os, sys, time
    import numpy as np
    model_name, contender, cache = sys.argv[1], sys.argv[2], sys.argv[3]
    import jax, jax.numpy as jnp, optax
    obtained = [0.0, 0]
    def on_duration(name, seconds, **_):
        if name == "/jax/core/compile/backend_compile_duration":
            obtained[0] += seconds; obtained[1] += 1
    jax.monitoring.register_event_duration_secs_listener(on_duration)
    rng = np.random.default_rng(0)
    if model_name == "mlp":
        n, shape, batch, lr = 10_000, (784,), 10, 3.0
    else:
        n, shape, batch, lr = 3_200, (28, 28, 1), 64, 0.1
    x = rng.random((n,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    if contender == "plain":
        def init(key):
            ks = jax.random.split(key, 4)
            if model_name == "mlp":
                return {"w1": jax.random.normal(ks[0], (784, 30)) / 28.0, "b1": jnp.zeros(30),
                        "w2": jax.random.normal(ks[1], (30, 10)) / 5.5, "b2": jnp.zeros(10)}
            return {"k": jax.random.normal(ks[0], (5, 5, 1, 20)) * 0.2, "c": jnp.zeros(20),
                    "w1": jax.random.normal(ks[1], (2880, 100)) * 0.02, "b1": jnp.zeros(100),
                    "w2": jax.random.normal(ks[2], (100, 10)) * 0.1, "b2": jnp.zeros(10)}
        def forward(p, xb):
            if model_name == "mlp":
                return jax.nn.sigmoid(jax.nn.sigmoid(xb @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"])
            z = jax.lax.conv_general_dilated(xb, p["k"], (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["c"]
            a = jax.lax.reduce_window(jax.nn.sigmoid(z), -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
            h = jax.nn.sigmoid(a.reshape(a.shape[0], -1) @ p["w1"] + p["b1"])
            return h @ p["w2"] + p["b2"]
        def cost(p, xb, yb):
            out = forward(p, xb)
            if model_name == "mlp":
                return 0.5 * jnp.mean(jnp.sum((out - jax.nn.one_hot(yb, 10)) ** 2, axis=1))
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, yb))
        tx = optax.sgd(lr)
        @jax.jit
        def step(p, s, xb, yb):
            value, g = jax.value_and_grad(cost)(p, xb, yb)
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s, value
        t = time.perf_counter()
        params = init(jax.random.key(0)); state = tx.init(params)
        xd, yd = jax.device_put(x), jax.device_put(y)
        order = np.random.default_rng(1).permutation(n)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            params, state, value = step(params, state, xd[idx], yd[idx])
        jax.block_until_ready(params)
        seconds = time.perf_counter() - t
    else:
        import jaxnets as jn
        from jaxnets import losses, models, optim
        jn.enable_compilation_cache(cache)
        if model_name == "mlp":
            model, loss = models.mlp([784, 30, 10], activation="sigmoid", output="sigmoid"), losses.quadratic
        else:
            model, loss = models.cnn(), losses.softmax_cross_entropy
        t = time.perf_counter()
        r = jn.fit(model, loss, optim.sgd(lr), (x, y), epochs=1, batch_size=batch, key=jax.random.key(0),
                   progress=False)
        jax.block_until_ready(r.params)
        seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "obtain_s": obtained[0], "programs": obtained[1]}))
''')


def run_child(model, contender, cache):
    out = subprocess.run([sys.executable, "-c", CHILD, model, contender, cache], capture_output=True, text=True,
                         timeout=900, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if out.returncode != 0:
        raise RuntimeError(f"{model}/{contender} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--models", default="mlp,cnn")
    args = p.parse_args(argv)
    print(f"load at start: {os.getloadavg()}")
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.rounds):
            for model in args.models.split(","):
                cold = os.path.join(root, f"cold-{model}-{r}")
                warm = os.path.join(root, f"warm-{model}")
                if r == 0:
                    run_child(model, "fit", warm)   # fills the warm cache once
                order = ["plain", "fit cold", "fit warm"]
                order = order[r % 3:] + order[:r % 3]
                for contender in order:
                    cache = cold if contender == "fit cold" else warm
                    res = run_child(model, "plain" if contender == "plain" else "fit", cache)
                    results.setdefault((model, contender), []).append(res)
                    print(f"round {r + 1} {model:4s} {contender:9s} {res['seconds']:7.3f} s  "
                          f"obtain {res['obtain_s']:6.3f} s  programs {res['programs']}", flush=True)
    print(f"load at end: {os.getloadavg()}")
    print("\nmedians (seconds to the end of the first epoch in a fresh process)")
    print(f"{'model':5s} {'plain':>8s} {'fit cold':>9s} {'ratio':>6s} {'fit warm':>9s} {'ratio':>6s} "
          f"{'obtain warm':>12s} {'programs':>8s}")
    for model in args.models.split(","):
        med = {c: statistics.median(x["seconds"] for x in results[(model, c)]) for c in ("plain", "fit cold",
                                                                                       "fit warm")}
        obtain = statistics.median(x["obtain_s"] for x in results[(model, "fit warm")])
        programs = results[(model, "fit cold")][0]["programs"]
        print(f"{model:5s} {med['plain']:8.3f} {med['fit cold']:9.3f} {med['fit cold'] / med['plain']:6.2f} "
              f"{med['fit warm']:9.3f} {med['fit warm'] / med['plain']:6.2f} {obtain:12.3f} {programs:8d}")


if __name__ == "__main__":
    main()
