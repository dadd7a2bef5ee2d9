"""What the divergence guard costs per training step, measured in one run.

    python benchmarks/guard.py               # large config, 7 rounds (~40 s on 2 cores)
    python benchmarks/guard.py --rounds 3 --config mid

Every variant is one jitted training step with the train state donated, called from Python on 8 device-resident
mini-batches per round (the step driver's situation); gradients by `jax.value_and_grad`, so only the guard
differs:
- no guard: plain optax update (what the plain-JAX peer does);
- check only: the guard's finiteness test (cost, gradients, new params and optimizer state; one sum per leaf,
  `jaxnets.training.step.all_finite`) computed and returned, the new state kept whatever it says;
- check + keep last finite: the test decides, by `lax.cond`, between the new state and the old one — what
  "divergence stops with the last finite state" needs;
- recompute in branch: an alternative tried — the test on an update computed for it alone, the update
  recomputed inside the taken branch (to spare the branch's copy of the state);
- jaxnets make_step: the library's own step (the same guard, plus the step's metrics).
Rounds interleave the variants, the order rotated each round; medians; ratios to "no guard".
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drivers import timed  # noqa: E402
from peers import CONFIGS, optax_optimizer  # noqa: E402
from peers.jaxnets_fit import model_and_loss  # noqa: E402


def variants(cfg):
    import jax
    import jax.numpy as jnp
    import optax

    import jaxnets
    from jaxnets.training.state import TrainState
    from jaxnets.training.step import all_finite, make_step

    model, loss = model_and_loss(cfg)
    _, params, state = model.init(jax.random.key(0), (cfg.sizes[0],))
    tx = optax_optimizer(cfg)
    ctx = jaxnets.Ctx(True, None)

    def cost(p, xb, yb):
        return loss.value(model.forward(p, state, xb, ctx)[0], yb)

    def update(carry, xb, yb):
        p, o = carry
        value, grads = jax.value_and_grad(cost)(p, xb, yb)
        updates, o2 = tx.update(grads, o, p)
        return value, grads, (optax.apply_updates(p, updates), o2)

    def no_guard(carry, xb, yb):
        value, _, new = update(carry, xb, yb)
        return new, value

    def check_only(carry, xb, yb):
        value, grads, new = update(carry, xb, yb)
        good = jnp.isfinite(value) & all_finite(grads) & all_finite(new)
        return new, jnp.where(good, value, jnp.nan)

    def keep_last_finite(carry, xb, yb):
        value, grads, new = update(carry, xb, yb)
        good = jnp.isfinite(value) & all_finite(grads) & all_finite(new)
        return jax.lax.cond(good, lambda: new, lambda: carry), value

    def recompute(carry, xb, yb):
        p, o = carry
        value, grads = jax.value_and_grad(cost)(p, xb, yb)

        def apply(grads, carry):
            updates, o2 = tx.update(grads, carry[1], carry[0])
            return optax.apply_updates(carry[0], updates), o2

        good = jnp.isfinite(value) & all_finite(grads) & all_finite(apply(grads, carry))
        return jax.lax.cond(good, apply, lambda g, c: c, grads, carry), value

    library_step = make_step(model, loss, tx, gradients="autodiff")

    def jaxnets_step(ts, xb, yb):
        ts, m = library_step(ts, xb, yb, None)
        return ts, m["loss"]

    def pair():
        return params, tx.init(params)

    return {"no guard": (no_guard, pair), "check only": (check_only, pair),
            "check + keep last finite": (keep_last_finite, pair),
            "recompute in branch": (recompute, pair),
            "jaxnets make_step": (jaxnets_step, lambda: TrainState.create(params, state, tx))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="large", choices=sorted(CONFIGS))
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    import jax
    import jax.numpy as jnp

    cfg = CONFIGS[args.config]
    rng = np.random.default_rng(0)
    xs = [jax.device_put(rng.random((cfg.batch, cfg.sizes[0]), dtype=np.float32)) for _ in range(8)]
    labels = [rng.integers(0, cfg.sizes[-1], cfg.batch).astype(np.int32) for _ in range(8)]
    ys = [jax.device_put(y if cfg.loss != "quadratic" else np.eye(cfg.sizes[-1], dtype=np.float32)[y])
          for y in labels]
    found = variants(cfg)
    carries = {name: jax.tree_util.tree_map(jnp.array, make()) for name, (_, make) in found.items()}

    def runner(name, step):
        def run():   # one timed sample: 8 steps, the donated carry passed on
            carry = carries[name]
            for xb, yb in zip(xs, ys):
                carry, _ = step(carry, xb, yb)
            carries[name] = jax.block_until_ready(carry)

        return run

    runners = {name: runner(name, jax.jit(fn, donate_argnums=0)) for name, (fn, _) in found.items()}
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; config {args.config} (batch {cfg.batch}); "
          f"{args.rounds} rounds of {len(xs)} steps; load average {os.getloadavg()[0]:.1f}")
    results = timed(runners, args.rounds, print)   # the first call of each is its warm-up (compilation)
    names = list(runners)
    times = {name: [t / len(xs) for t in results[name][1]] for name in names}
    base = statistics.median(times["no guard"])
    print(f"{'variant':26s} {'ms/step':>8s} {'ratio':>6s}   per round")
    for name in names:
        med = statistics.median(times[name])
        print(f"{name:26s} {1e3 * med:8.3f} {med / base:6.3f}   " + " ".join(f"{1e3 * t:.2f}" for t in times[name]))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
