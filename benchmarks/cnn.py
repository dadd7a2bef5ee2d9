"""The textbook CNNs: hand-written backprop vs jax autodiff vs Flax (part "gradients"), and `fit` vs PyTorch
(part "torch").

    python benchmarks/cnn.py                         # gradients: 60,000 examples, batch 64, relu, 3 timed rounds
    python benchmarks/cnn.py --activation sigmoid --rounds 5
    python benchmarks/cnn.py --n 6400 --rounds 1     # a quick smoke run
    python benchmarks/cnn.py --part torch            # fit vs PyTorch on cnn and cnn2, SGD momentum, 3,200 images
    python benchmarks/cnn.py --part torch --n 640 --rounds 1     # its smoke run

Part "torch": `jaxnets.fit` epochs (loop="auto", manual gradients; also autodiff gradients, and the same net
with 0.2.0's convolution kernels forced, `Conv2D(..., kernels="conv")`) of `models.cnn(activation="relu")` and
`models.cnn2(activation="relu")`, batch 64, SGD 0.01 with momentum 0.9, softmax cross-entropy, against PyTorch
(CPU, 2 threads, `OMP_WAIT_POLICY=PASSIVE`) and the plain-JAX jitted-step loop of `peers/cnn_peers.py` on the
same random images (`--n`, default 3,200 = 50 batches). Timing as benchmarks/drivers.py: a warm-up epoch each,
then `--rounds` (default 5) interleaved rounds of one epoch per implementation, the order rotated; medians, and
every ratio from the same run; `os.getloadavg()` printed before and after.

Part "gradients":

Network (Nielsen ch. 6): conv 20×5×5 (28×28 → 24×24) → activation → 2×2 max-pool (12×12) → dense 100 →
activation → dense 10, softmax cross-entropy on the logits, plain SGD (η = 0.1), batch 64. Data: 60,000 random
28×28×1 images (uniform [0, 1)) with random labels, on the device; timing does not depend on the values. The
epoch is ⌊n/64⌋ steps (the last partial batch is left out so every step has the same shape), run as one
compiled `lax.scan`; every variant uses the identical scan, data, optimizer and dtype (float32), only the
gradient function differs:

    manual    jaxnets.gradients.manual(model, loss)     (the layers' hand-written backward passes)
    autodiff  jaxnets.gradients.autodiff(model, loss)   (jax.value_and_grad of the same forward)
    flax      flax.linen CNN of the same shape, jax.value_and_grad (skipped when flax is not installed)

Timing: the first call of each variant (compile + one epoch) is the warm-up; then `--rounds` rounds in which
every variant trains one epoch, in an order rotated each round so that load from other processes falls on all
alike. Reported: median and best wall-clock seconds per epoch, the median process CPU time per epoch (all
threads; less sensitive than wall-clock time to other processes on a shared machine), and ratios of medians.
The machine may be shared: figures are noisy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

import jaxnets
from jaxnets import gradients, losses, models
from jaxnets.core import Ctx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def make_data(n, key):
    kx, ky = jax.random.split(key)
    return jax.random.uniform(kx, (n, 28, 28, 1), jnp.float32), jax.random.randint(ky, (n,), 0, 10, jnp.int32)


def make_epoch(grad_fn, optimizer, batch):
    """epoch(params, opt_state, x, y) -> (params, opt_state, mean loss): one lax.scan over the mini-batches."""

    def epoch(params, opt_state, x, y):
        steps = x.shape[0] // batch
        xb = x[: steps * batch].reshape((steps, batch) + x.shape[1:])
        yb = y[: steps * batch].reshape(steps, batch)

        def step(carry, data):
            params, opt_state = carry
            value, grads = grad_fn(params, *data)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, opt_state), values = jax.lax.scan(step, (params, opt_state), (xb, yb))
        return params, opt_state, jnp.mean(values)

    return jax.jit(epoch, donate_argnums=(0, 1))


def jaxnets_variant(source, activation):
    model = models.cnn(activation=activation)
    loss = losses.softmax_cross_entropy
    grad_fn = gradients.get(source)(model, loss)
    _, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))

    def fn(params, x, y):
        (value, _), grads = grad_fn(params, state, x, y, Ctx(train=True))
        return value, grads

    return fn, params


def flax_variant(activation):
    try:
        import flax.linen as nn
    except ImportError:
        return None
    act = {"relu": nn.relu, "sigmoid": nn.sigmoid}[activation]

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.max_pool(act(nn.Conv(20, (5, 5), padding="VALID")(x)), (2, 2), strides=(2, 2))
            x = act(nn.Dense(100)(x.reshape(x.shape[0], -1)))
            return nn.Dense(10)(x)

    net = CNN()
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))

    def cost(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(net.apply(params, x), y).mean()

    return jax.value_and_grad(cost), params


def previous_kernels_model(cfg):
    """`models.cnn(features=cfg.features, activation="relu")` with every Conv2D on 0.2.0's convolution forms."""
    from jaxnets.layers import Conv2D, Dense, Flatten, MaxPool, Relu

    layers = []
    for f in cfg.features:
        layers += [Conv2D(f, 5, kernels="conv"), Relu, MaxPool(2)]
    return jaxnets.serial(*layers, Flatten(), Dense(cfg.hidden), Relu(), Dense(10))


def part_torch(n, rounds, peers, log):
    """{config: {implementation: median s/epoch}} of fit against PyTorch and plain JAX (see the docstring)."""
    import numpy as np

    from drivers import peer_runners, timed
    from peers import jaxnets_fit
    from peers.cnn_peers import MOMENTUM_CONFIGS, jaxnets_model, optax_sgd

    from jaxnets.training import loops

    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    results = {}
    for name, cfg in MOMENTUM_CONFIGS.items():
        loss = losses.softmax_cross_entropy
        model = jaxnets_model(cfg)
        _, params, state = model.init(jax.random.PRNGKey(0), (28, 28, 1))
        auto = loops.resolve("auto", model, params, state, (28, 28, 1))
        other = {"scan": "step", "step": "scan"}[auto]
        runners = {}
        for label, net, grads, loop in (("fit manual", model, "manual", "auto"),
                                        ("fit autodiff", model, "autodiff", "auto"),
                                        (f"fit manual loop={other}", model, "manual", other),
                                        ("fit manual, 0.2.0 kernels", previous_kernels_model(cfg), "manual", "auto")):
            runners[label] = jaxnets_fit.runner(net, loss, optax_sgd(cfg), x, y, cfg.batch, 0, gradients=grads,
                                                fit_kwargs={"loop": loop})
        runners.update(peer_runners(peers, cfg, x, y, log))
        log(f"{name}: {n} images, batch {cfg.batch}, SGD {cfg.lr} momentum {cfg.momentum}, loop='auto' -> {auto}; "
            f"load average {os.getloadavg()}")
        res = timed(runners, rounds, log)
        results[name] = {impl: med for impl, (med, _, _) in res.items()}
        base = results[name]["fit manual"]
        for impl, med in results[name].items():
            log(f"  {impl:28s} {med:8.3f} s/epoch   ÷ fit manual {med / base:5.2f}")
    log(f"load average at the end {os.getloadavg()}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["gradients", "torch"], default="gradients")
    parser.add_argument("--peers", default="torch,jax", help="part torch: comma list of torch, jax, linen")
    parser.add_argument("--n", type=int, default=None,
                        help="training examples per epoch (default 60,000; 3,200 for part torch)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--activation", choices=["relu", "sigmoid"], default="relu")
    parser.add_argument("--rounds", type=int, default=None, help="timed epochs per variant (3; 5 for torch)")
    parser.add_argument("--variants", default="manual,autodiff,flax")
    args = parser.parse_args(argv)
    if args.part == "torch":
        return part_torch(args.n or 3200, 5 if args.rounds is None else args.rounds,
                          [p for p in args.peers.split(",") if p], lambda msg: print(msg, flush=True))
    args.n = args.n or 60_000
    args.rounds = 3 if args.rounds is None else args.rounds

    x, y = make_data(args.n, jax.random.PRNGKey(42))
    optimizer = optax.sgd(0.1)
    variants = {}
    for name in args.variants.split(","):
        built = flax_variant(args.activation) if name == "flax" else jaxnets_variant(name, args.activation)
        if built is None:
            print(f"{name}: not installed, skipped")
            continue
        variants[name] = (make_epoch(built[0], optimizer, args.batch), built[1])

    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} device(s)); "
          f"{args.n} examples, batch {args.batch}, {args.n // args.batch} steps/epoch, {args.activation}")
    live, times, cpu, losses_seen = {}, {name: [] for name in variants}, {name: [] for name in variants}, {}
    for name, (epoch, params) in variants.items():
        start = time.perf_counter()
        p, s, value = epoch(params, optax.sgd(0.1).init(params), x, y)
        value.block_until_ready()
        live[name] = (p, s)
        losses_seen[name] = float(value)
        print(f"  warm-up {name:9s} {time.perf_counter() - start:7.2f} s (compile + 1 epoch), loss {float(value):.4f}")
    names = list(variants)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            epoch = variants[name][0]
            p, s = live[name]
            start, start_cpu = time.perf_counter(), time.process_time()
            p, s, value = epoch(p, s, x, y)
            value.block_until_ready()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            live[name] = (p, s)
    print(f"{'variant':10s}{'median s/epoch':>16s}{'best':>8s}{'median CPU s':>14s}   all wall-clock s")
    for name in names:
        t = times[name]
        print(f"{name:10s}{statistics.median(t):16.2f}{min(t):8.2f}{statistics.median(cpu[name]):14.2f}   "
              + " ".join(f"{v:.2f}" for v in t))
    med = {name: statistics.median(t) for name, t in times.items()}
    med_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    for other, goal in (("autodiff", 1.0), ("flax", 1.1)):
        if "manual" in med and other in med:
            print(f"manual / {other:8s} = {med['manual'] / med[other]:.3f} wall, "
                  f"{med_cpu['manual'] / med_cpu[other]:.3f} CPU time  (goal <= {goal})")
    return med


if __name__ == "__main__":
    main()
