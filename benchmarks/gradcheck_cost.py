"""What `gradcheck.check_model` costs on a large model: first call and repeated calls, compile time apart.

    python benchmarks/gradcheck_cost.py                  # MLP [784, 1000, 1000, 10], batch 32, 3 calls (~15 s)
    python benchmarks/gradcheck_cost.py --sizes 784,256,10 --calls 5

Each call checks the whole model, the loss and every layer in place, float32, with directional finite
differences (4 directions: the automatic choice above 4,096 entries). The XLA backend-compile seconds and the
number of programs compiled during each call come from `jax.monitoring`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import CompileClock  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="784,1000,1000,10", help="layer sizes of the ReLU MLP")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--calls", type=int, default=3)
    args = ap.parse_args()
    import jax

    import jaxnets as jn
    from jaxnets import gradcheck, losses

    clock = CompileClock()
    sizes = [int(s) for s in args.sizes.split(",")]
    model = jn.models.mlp(sizes, activation="relu")
    _, params, state = model.init(jax.random.key(0), (sizes[0],))
    x = jax.random.uniform(jax.random.key(1), (args.batch, sizes[0]))
    y = jax.random.randint(jax.random.key(2), (args.batch,), 0, sizes[-1])
    ctx = jn.Ctx(train=True, key=jax.random.key(3))
    jax.block_until_ready((x, y))
    count = sum(a.size for a in jax.tree_util.tree_leaves(params))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; mlp({sizes}), {count:,} parameters, batch "
          f"{args.batch}; load average {os.getloadavg()[0]:.1f}")
    for call in range(1, args.calls + 1):
        clock.current = call
        start = time.perf_counter()
        report = gradcheck.check_model(model, losses.softmax_cross_entropy, params, state, x, y, ctx)
        seconds = time.perf_counter() - start
        clock.current = None
        print(f"call {call}: {seconds:6.2f} s, {clock.count.get(call, 0)} programs compiled in "
              f"{clock.total.get(call, 0.0):.2f} s; "
              f"finite differences: {report.fd}; {'passed' if not report.failures() else 'FAILED'}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
