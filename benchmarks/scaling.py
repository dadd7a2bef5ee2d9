"""Data-parallel scaling of `jaxnets.fit(mesh=...)`: epoch time on 1, 2, 4, 8 devices.

    python benchmarks/scaling.py                          # 1, 2, 4, 8 forced host devices, 60,000 examples
    python benchmarks/scaling.py --devices 1,8 --examples 12800 --epochs 2 --rounds 1     # quicker

The "mid" configuration: mlp [784, 256, 256, 10] with ReLU, softmax cross-entropy, SGD (lr 0.01, momentum
0.9), batch 128, manual gradients; random MNIST-shaped data from a fixed seed (x uniform in [0, 1), labels
uniform in 0..9). Each device count runs in its own subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=D (the device count is fixed when JAX starts), training with
`mesh=make_mesh()` over its D devices; "1 (no mesh)" is plain `fit` on one device. In each subprocess the
first epoch is the warm-up (it includes compilation) and the next `--epochs` are timed (fit's per-epoch
`time`: the compiled epoch plus the fetch of its metrics). `--rounds` repeats the whole sweep, rotating the
order of the device counts, so load from other processes falls on all of them alike; the table shows the
median and the best of all timed epochs per device count.

On a CPU the forced host devices are threads sharing the machine's cores: with 2 physical cores no speed-up
beyond 2 is possible, and XLA already spreads a single device's matmuls over the cores, so this measures
the overhead of the partitioned program (the gradient all-reduce, smaller per-device matmuls) rather than a
speed-up. On GPUs/TPUs each device is real hardware.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SIZES, BATCH, LR, MOMENTUM = [784, 256, 256, 10], 128, 0.01, 0.9
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def worker(devices: int, examples: int, epochs: int) -> dict:
    """Train in this process (started with `devices` forced host devices); returns the epoch times."""
    sys.path.insert(0, ROOT)
    import jax
    import numpy as np

    import jaxnets
    from jaxnets import losses, optim, parallel
    from jaxnets.models import mlp

    if jax.device_count() < max(devices, 1):
        raise SystemExit(f"expected {devices} devices, JAX sees {jax.device_count()}")
    rng = np.random.default_rng(0)
    x = rng.random((examples, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], size=examples).astype(np.int32)
    mesh = parallel.make_mesh(jax.devices()[:devices]) if devices else None
    t0 = time.perf_counter()
    res = jaxnets.fit(mlp(SIZES, activation="relu"), losses.softmax_cross_entropy, optim.sgd(LR, momentum=MOMENTUM),
                      (x, y), epochs=epochs + 1, batch_size=BATCH, key=jax.random.key(0), mesh=mesh,
                      progress=False)
    times = res.history["time"]
    return {"devices": devices, "warmup": times[0], "epochs": times[1:], "total": time.perf_counter() - t0,
            "final_loss": res.history["train_loss"][-1]}


def run_one(devices: int, examples: int, epochs: int, timeout: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={max(devices, 1)}")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(devices), "--examples", str(examples),
           "--epochs", str(epochs)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise SystemExit(f"{devices}-device run exceeded {timeout} s")
    if proc.returncode != 0:
        raise SystemExit(f"{devices}-device run failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", default="0,1,2,4,8", help="comma-separated device counts (0: fit without mesh)")
    ap.add_argument("--examples", type=int, default=60_000)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per run (after one warm-up epoch)")
    ap.add_argument("--rounds", type=int, default=2, help="repeat the sweep, rotating the order")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per subprocess")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.examples, args.epochs)), flush=True)
        return
    counts = [int(c) for c in args.devices.split(",")]
    runs = {d: [] for d in counts}
    for r in range(args.rounds):
        order = counts[r % len(counts):] + counts[:r % len(counts)]
        for d in order:
            res = run_one(d, args.examples, args.epochs, args.timeout)
            runs[d].append(res)
            print(f"round {r + 1}: {d or '1 (no mesh)'} device(s): warm-up {res['warmup']:.2f} s, epochs "
                  + ", ".join(f"{t:.2f}" for t in res["epochs"]) + " s", file=sys.stderr, flush=True)
    base = statistics.median(t for res in runs[counts[0]] for t in res["epochs"])
    print(f"\nmid [784, 256, 256, 10] ReLU, SGD momentum 0.9, batch {BATCH}, {args.examples:,} examples; "
          f"{args.rounds} round(s) × {args.epochs} timed epoch(s); {os.cpu_count()} CPU cores\n")
    print("| devices | epoch time, median (s) | best (s) | warm-up epoch incl. compile (s) | vs first row |")
    print("|---|---|---|---|---|")
    for d in counts:
        times = [t for res in runs[d] for t in res["epochs"]]
        med = statistics.median(times)
        warm = statistics.median(res["warmup"] for res in runs[d])
        label = "1 (no mesh)" if d == 0 else str(d)
        print(f"| {label} | {med:.2f} | {min(times):.2f} | {warm:.2f} | {base / med:.2f}× |")


if __name__ == "__main__":
    main()
