"""The training engine's two drivers and its streaming path, against hand-written loops, measured in one run.

    python benchmarks/drivers.py                      # all three parts (~10 min on 2 shared cores)
    python benchmarks/drivers.py --part cnn           # fit vs plain JAX / Flax linen / PyTorch on cnn and cnn2
    python benchmarks/drivers.py --part mlp           # scan vs step driver on the nielsen/mid/large MLPs
    python benchmarks/drivers.py --part stream        # fit over a generator of batches vs over arrays (mid)
    python benchmarks/drivers.py --quick              # smoke test: tiny epochs, one round

cnn: `jaxnets.fit` epochs (loop="auto", which is "step" for conv nets on the CPU; loop="scan" to show the cliff
it avoids; manual and autodiff gradients) of `models.cnn(activation="relu")` and `models.cnn2(...)`, batch 64,
SGD 0.1, on random 28×28×1 images with random labels, against the peers of `benchmarks/peers/cnn_peers.py`.
mlp: `fit` with loop="scan" and loop="step" on the configs of benchmarks/throughput.py. stream: `fit` over
`peers.jaxnets_fit.host_batches` (numpy mini-batches of a host-side permutation, each moved to the device by
fit's prefetch) against `fit` over the same data as device arrays.

Timing (as benchmarks/throughput.py): every implementation runs a warm-up epoch (compilation; reported apart),
then `--rounds` rounds in which each implementation trains one epoch, the order rotated each round; medians.
Every ratio divides times measured in the same run. Slow configurations are timed on their first `--batches`
mini-batches per epoch (the data is cut to that many) and marked.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import CONFIGS  # noqa: E402
from peers import jaxnets_fit  # noqa: E402
from peers.cnn_peers import BUILDERS, CNN_CONFIGS, jaxnets_model  # noqa: E402

QUICK = {"images": 256, "mlp_batches": {"nielsen": 100, "mid": 10, "large": 2}, "rounds": 1}
FULL = {"images": 1280, "mlp_batches": {"nielsen": None, "mid": None, "large": 12}, "rounds": 5}


PEER_LABELS = {"jax": "plain JAX jit step", "linen": "Flax linen", "torch": "PyTorch CPU"}


def peer_runners(peers, cfg, x, y, log) -> dict:
    """{label: runner} of the CNN peers (benchmarks/peers/cnn_peers.py) whose library imports; the others are
    logged as skipped."""
    runners = {}
    for peer in peers:
        try:
            runners[PEER_LABELS[peer]] = BUILDERS[peer](cfg, x, y, 0)
        except ImportError as err:
            log(f"  {peer}: skipped ({err})")
    return runners


def timed(runners: dict, rounds: int, log) -> dict:
    """{name: (median s, [s per round], warm-up s)} of interleaved epochs."""
    warm, times = {}, {name: [] for name in runners}
    for name, run in runners.items():
        t = time.perf_counter()
        run()
        warm[name] = time.perf_counter() - t
        log(f"  warm-up {name:28s} {warm[name]:7.2f} s")
    names = list(runners)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - t)
        log(f"  round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.3f}" for n in names))
    for run in runners.values():
        getattr(run, "close", lambda: None)()
    return {name: (statistics.median(times[name]), times[name], warm[name]) for name in names}


def _fit_runner(cfg, x, y, *, model, loss, optimizer, gradients="manual", stream=False, **fit_kwargs):
    return jaxnets_fit.runner(model, loss, optimizer, x, y, cfg.batch, 0, gradients=gradients, fit_kwargs=fit_kwargs,
                              stream=stream)


def part_cnn(sizes, rounds, peers, log):
    import optax

    from jaxnets import losses

    rng = np.random.default_rng(0)
    n = sizes["images"]
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    rows = []
    for name, cfg in CNN_CONFIGS.items():
        model, loss = jaxnets_model(cfg), losses.softmax_cross_entropy
        common = dict(model=model, loss=loss, optimizer=optax.sgd(cfg.lr))
        runners = {"fit manual (auto: step)": _fit_runner(cfg, x, y, **common),
                   "fit autodiff (auto: step)": _fit_runner(cfg, x, y, gradients="autodiff", **common),
                   "fit manual loop=scan": _fit_runner(cfg, x, y, loop="scan", **common)}
        runners.update(peer_runners(peers, cfg, x, y, log))
        log(f"{name}: {n} images, batch {cfg.batch}")
        res = timed(runners, rounds, log)
        base = res["fit manual (auto: step)"][0]
        for impl, (med, _, warm) in res.items():
            rows.append((name, impl, med, warm, med / base))
    return rows


def part_mlp(sizes, rounds, log):
    from peers import builder

    x_all = np.random.default_rng(0).random((60_000, 784), dtype=np.float32)
    y_all = np.random.default_rng(1).integers(0, 10, 60_000).astype(np.int32)
    rows = []
    for name, cfg in CONFIGS.items():
        batches = sizes["mlp_batches"][name]
        n = 60_000 if batches is None else batches * cfg.batch
        x, y = x_all[:n], y_all[:n]
        model, loss = jaxnets_fit.model_and_loss(cfg)
        from peers import optax_optimizer

        runners = {f"fit loop={loop}": _fit_runner(cfg, x, y, model=model, loss=loss, optimizer=optax_optimizer(cfg),
                                                   loop=loop) for loop in ("scan", "step")}
        runners["plain JAX jit step"] = builder("jax")(cfg, x, y, 0)
        log(f"{name}: {n} examples ({'full epoch' if batches is None else f'{batches} batches'}), batch {cfg.batch}")
        res = timed(runners, rounds, log)
        base = res["fit loop=step"][0]
        for impl, (med, _, warm) in res.items():
            rows.append((name + ("" if batches is None else "*"), impl, med, warm, med / base))
    return rows


def part_stream(sizes, rounds, log):
    from peers import optax_optimizer

    cfg = CONFIGS["mid"]
    batches = sizes["mlp_batches"]["mid"]
    n = 60_000 if batches is None else batches * cfg.batch
    x = np.random.default_rng(0).random((n, 784), dtype=np.float32)
    y = np.random.default_rng(1).integers(0, 10, n).astype(np.int32)
    model, loss = jaxnets_fit.model_and_loss(cfg)
    runners = {"fit arrays (auto: scan)": _fit_runner(cfg, x, y, model=model, loss=loss,
                                                      optimizer=optax_optimizer(cfg)),
               "fit arrays loop=step": _fit_runner(cfg, x, y, model=model, loss=loss, optimizer=optax_optimizer(cfg),
                                                   loop="step"),
               "fit streamed batches": _fit_runner(cfg, x, y, model=model, loss=loss, optimizer=optax_optimizer(cfg),
                                                   stream=True)}
    log(f"stream: mid, {n} examples, batch {cfg.batch}")
    res = timed(runners, rounds, log)
    base = res["fit arrays (auto: scan)"][0]
    return [("mid", impl, med, warm, med / base) for impl, (med, _, warm) in res.items()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", default="cnn,mlp,stream", help="comma list of cnn, mlp, stream")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5; 1 with --quick)")
    ap.add_argument("--peers", default="jax,linen,torch", help="CNN peers: jax, linen, torch")
    ap.add_argument("--quick", action="store_true", help="smoke test: small epochs, one round")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    rounds = args.rounds or sizes["rounds"]

    def log(msg):
        print(msg, flush=True)

    import jax

    log(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.devices()[0].device_kind}), "
        f"{os.cpu_count()} CPU cores, {rounds} round(s); load average {os.getloadavg()[0]:.1f}")
    tables = {}
    for part in [p for p in args.part.split(",") if p]:
        if part == "cnn":
            tables["cnn"] = (part_cnn(sizes, rounds, [p for p in args.peers.split(",") if p], log),
                             "fit manual (auto: step)")
        elif part == "mlp":
            tables["mlp"] = (part_mlp(sizes, rounds, log), "fit loop=step")
        elif part == "stream":
            tables["stream"] = (part_stream(sizes, rounds, log), "fit arrays (auto: scan)")
        else:
            ap.error(f"unknown part {part!r}")
    for part, (rows, base) in tables.items():
        log(f"\n{part}: s/epoch (median), ratio = s/epoch ÷ {base}")
        log(f"{'config':9s} {'implementation':28s} {'s/epoch':>9s} {'warm-up s':>10s} {'ratio':>7s}")
        for config, impl, med, warm, ratio in rows:
            log(f"{config:9s} {impl:28s} {med:9.3f} {warm:10.2f} {ratio:7.2f}")
    log("(* timed on the first batches of the epoch: the data cut to that many)")
    log(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
