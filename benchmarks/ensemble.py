"""Ensembles and sweeps as one vmapped program against loops of `fit`, measured in the same run.

    python benchmarks/ensemble.py                 # both parts (~10 min on 2 busy cores)
    python benchmarks/ensemble.py --part ensemble --members 16 --epochs 4
    python benchmarks/ensemble.py --part grid --points 64 --quick
    python benchmarks/ensemble.py --part table     # a 4 x 4 (eta, lambda) sweep on the digits, printed as a table

Part 1 (ensemble): K = 16 networks [784, 30, 10] (sigmoid hidden and output units, quadratic cost, plain SGD
η = 3.0, mini-batches of 10: the textbook's chapter-1 network) on MNIST-shaped random data (60,000 × 784
float32 uniform in [0, 1), labels uniform in 0..9, fixed seed; throughput does not depend on the values).
`fit_ensemble(keys=16 keys)` against 16 sequential `fit(key=keys[k])` calls (the same members: same inits,
same data orders), each for `--epochs` epochs, without validation data. Reported: the steady-state time of
one epoch of all 16 members (ensemble: median epoch call after the first; loop: 16 × the median over all
members' epochs after their first), and the time to train all 16 for one epoch from a cold start, compile
included (ensemble: its first call's wall time minus its later epochs; loop: the 16 fits' wall time minus
their later epochs; `fit` memoises its compiled program, so only the first fit compiles).

Part 2 (grid): a `--points`-point learning-rate grid (log-spaced, 0.01 to 30) for the same network and cost on
a smaller MNIST-shaped random set (`--grid-n` training examples, 1,000 validation; batch 10; `--grid-epochs`
epochs): `grid_search` (one compiled program, the learning rate a traced array) against a loop of `fit` calls
(each learning rate is a new optimizer, so each fit compiles its own program). Reported: total wall time of
each, and the loop's time without compilation (the sum of its epochs' times from the histories).

Timings are medians; the machine may be shared, so compare figures from the same run only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jax  # noqa: E402

import jaxnets as jn  # noqa: E402
from jaxnets import losses, optim  # noqa: E402
from jaxnets import fit_ensemble, grid_search  # noqa: E402

N_IN, N_CLASSES = 784, 10


def make_data(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, N_IN), dtype=np.float32), rng.integers(0, N_CLASSES, size=n).astype(np.int32)


SIZES = [N_IN, 30, N_CLASSES]


def network():
    return jn.models.mlp(SIZES, activation="sigmoid", output="sigmoid")


def bench_ensemble(members, epochs, n, batch_size, out=print):
    x, y = make_data(n)
    model, loss, opt = network(), losses.quadratic, optim.sgd(3.0)
    keys = jax.random.split(jax.random.key(0), members)
    out(f"## ensemble: {members} x {SIZES}, {n} examples, batch {batch_size}, {epochs} epochs each")
    t0 = time.perf_counter()
    ens = fit_ensemble(model, loss, opt, (x, y), epochs=epochs, batch_size=batch_size, keys=keys, progress=False)
    ens_wall = time.perf_counter() - t0
    ens_epochs = ens.epoch_seconds
    ens_steady = statistics.median(ens_epochs[1:]) if len(ens_epochs) > 1 else float("nan")
    ens_cold = ens_wall - sum(ens_epochs[1:])
    out(f"fit_ensemble: wall {ens_wall:.1f}s, epoch calls {[round(t, 2) for t in ens_epochs]}")

    t0 = time.perf_counter()
    later, firsts, results = [], [], []
    for k in range(members):
        r = jn.fit(model, loss, opt, (x, y), epochs=epochs, batch_size=batch_size, key=keys[k], progress=False)
        times = r.history["time"]
        firsts.append(times[0])
        later.extend(times[1:])
        results.append(r)
    loop_wall = time.perf_counter() - t0
    loop_steady = members * statistics.median(later) if later else float("nan")
    loop_cold = loop_wall - sum(later)
    out(f"{members} x fit: wall {loop_wall:.1f}s, first epochs {[round(t, 2) for t in firsts]}, "
        f"median later epoch {statistics.median(later) if later else float('nan'):.2f}s")

    diffs = [float(np.max(np.abs(np.asarray(ens.params[0]["w"][k]) - np.asarray(results[k].params[0]["w"]))))
             for k in range(members)]
    out(f"max |W1 ensemble member - fit alone| over members: {max(diffs):.2e}")
    out("")
    out(f"| {members} members, one epoch | fit_ensemble | {members} x fit | speed-up |")
    out("|---|---|---|---|")
    out(f"| steady state (s) | {ens_steady:.2f} | {loop_steady:.2f} | {loop_steady / ens_steady:.1f}x |")
    out(f"| cold, compile included (s) | {ens_cold:.2f} | {loop_cold:.2f} | {loop_cold / ens_cold:.1f}x |")
    return {"ens_steady": ens_steady, "loop_steady": loop_steady, "ens_cold": ens_cold, "loop_cold": loop_cold}


def bench_grid(points, epochs, n, batch_size, out=print):
    x, y = make_data(n, seed=1)
    xv, yv = make_data(1000, seed=2)
    model, loss = network(), losses.quadratic
    lrs = [float(v) for v in np.geomspace(0.01, 30.0, points)]
    key = jax.random.key(0)
    out(f"## grid: {points} learning rates, {n} examples (+1000 val), batch {batch_size}, {epochs} epochs")
    t0 = time.perf_counter()
    res = grid_search(model, loss, lambda hp: optim.sgd(hp["learning_rate"]), (x, y), val_data=(xv, yv),
                      grid={"learning_rate": lrs}, epochs=epochs, batch_size=batch_size, key=key, progress=False)
    grid_wall = time.perf_counter() - t0
    grid_steady = statistics.median(res.histories[0]["time"][1:]) if epochs > 1 else float("nan")
    t0 = time.perf_counter()
    loop_epochs = 0.0
    for lr in lrs:
        r = jn.fit(model, loss, optim.sgd(lr), (x, y), val_data=(xv, yv), epochs=epochs, batch_size=batch_size,
                   key=key, progress=False)
        times = r.history["time"]  # the first epoch includes this fit's compilation
        loop_epochs += epochs * statistics.median(times[1:]) if len(times) > 1 else float("nan")
    loop_wall = time.perf_counter() - t0
    out(f"grid_search: {grid_wall:.1f}s ({res.programs} program, steady epoch {grid_steady:.2f}s); loop of {points} "
        f"fits: {loop_wall:.1f}s (of which {loop_epochs:.1f}s steady-state epochs, the rest compilation and set-up)")
    out(f"best: {res.best_config} val_loss {res.best_row['val_loss']:.4f}")
    out("")
    out(f"| {points}-point grid | grid_search | loop of fit | speed-up |")
    out("|---|---|---|---|")
    out(f"| total wall (s) | {grid_wall:.1f} | {loop_wall:.1f} | {loop_wall / grid_wall:.1f}x |")
    out(f"| training only, no compilation (s) | {epochs * grid_steady:.1f} | {loop_epochs:.1f} | "
        f"{loop_epochs / (epochs * grid_steady):.1f}x |")
    return {"grid_wall": grid_wall, "loop_wall": loop_wall, "loop_epochs": loop_epochs, "grid_steady": grid_steady}


def sweep_table(out=print):
    """A 4 x 4 (η, λ) grid on the digits (1,437 training images split 1,150 / 287 for validation): [64, 30, 10]
    sigmoid, softmax cross-entropy, SGD with momentum 0.9, L2 penalty λ/(2n)·Σw², batch 32, up to 40 epochs with
    early stopping (patience 5) on the validation loss, all 16 configurations in one program."""
    ds = jn.data.load("digits")
    x, y, xv, yv = jn.data.train_val_split(ds.x_train, ds.y_train, val_fraction=0.2, seed=0)
    n = len(x)
    res = grid_search(jn.models.mlp([64, 30, 10]), losses.softmax_cross_entropy,
                      lambda hp: optim.sgd(hp["eta"], momentum=0.9), (x, y), val_data=(xv, yv),
                      penalty=lambda hp: losses.l2(hp["lmbda"], n),
                      grid={"eta": [0.01, 0.03, 0.1, 0.3], "lmbda": [0.0, 1.0, 10.0, 100.0]}, epochs=40,
                      batch_size=32, key=jax.random.key(0), early_stopping=jn.EarlyStopping(patience=5),
                      progress=False)
    out(f"## sweep table: digits, {n} train / {len(xv)} validation, 4 x 4 (eta, lambda) grid")
    out(str(res))
    best_p, best_s = res.best_params, res.best_state
    test = jn.evaluate(jn.models.mlp([64, 30, 10]), losses.softmax_cross_entropy, best_p, best_s,
                       (ds.x_test, ds.y_test))
    out(f"best configuration on the 360 test images: accuracy {test['accuracy']:.4f}")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("ensemble", "grid", "both", "table"), default="both",
                    help="both = ensemble + grid; table = a 4 x 4 (eta, lambda) sweep on the digits")
    ap.add_argument("--members", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=4, help="epochs per member (the first includes compile)")
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--grid-n", type=int, default=5_000)
    ap.add_argument("--grid-epochs", type=int, default=2)
    ap.add_argument("--sizes", default="784,30,10", help="layer sizes of the network (first = 784)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 4 members, 6,000 examples, 8 grid points")
    args = ap.parse_args(argv)
    global SIZES
    SIZES = [int(s) for s in args.sizes.split(",")]
    if SIZES[0] != N_IN or SIZES[-1] != N_CLASSES:
        ap.error(f"--sizes must start with {N_IN} and end with {N_CLASSES}")
    if args.quick:
        args.members, args.n, args.epochs, args.points, args.grid_n = 4, 6_000, 2, 8, 1_000
    print(f"jax {jax.__version__}, devices {jax.devices()}, cpu count {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.part in ("ensemble", "both"):
        bench_ensemble(args.members, args.epochs, args.n, args.batch_size)
    if args.part in ("grid", "both"):
        bench_grid(args.points, args.grid_epochs, args.grid_n, args.batch_size)
    if args.part == "table":
        sweep_table()


if __name__ == "__main__":
    main()
