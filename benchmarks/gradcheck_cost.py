"""What `gradcheck.check_model` and `gradcheck.check_vjp` cost at scale: first and repeated calls, compile apart.

    python benchmarks/gradcheck_cost.py                  # MLP [784, 1000, 1000, 10], batch 32, 3 calls (~15 s)
    python benchmarks/gradcheck_cost.py --sizes 784,256,10 --calls 5
    python benchmarks/gradcheck_cost.py --part vjp       # check_vjp of a custom_vjp softplus on a 1M-element argument

check_vjp: a `jax.custom_vjp` softplus (rule σ(x)·g) of a (1000, 1000) float32 argument: the rule's cotangent, autodiff
of the undecorated function and float64 directional finite differences (4 directions, 4 evaluations each, the
automatic choice above 4,096 entries), in one call; each call compiles its programs afresh (check_vjp does not
memoise closures over the user's arguments).

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


def vjp_cost(side: int, calls: int, clock) -> None:
    """check_vjp of a custom_vjp softplus on a (side, side) argument, `calls` times."""
    import jax
    import jax.numpy as jnp

    from jaxnets import gradcheck

    @jax.custom_vjp
    def softplus(x):
        return jnp.logaddexp(x, 0.0)

    softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g * jax.nn.sigmoid(x),))
    x = jax.block_until_ready(jax.random.normal(jax.random.key(0), (side, side)))
    print(f"check_vjp: custom_vjp softplus of a ({side}, {side}) float32 argument ({side * side:,} entries); load "
          f"average {os.getloadavg()[0]:.1f}")
    for call in range(1, calls + 1):
        clock.current = ("vjp", call)
        start = time.perf_counter()
        report = gradcheck.check_vjp(softplus, x)
        seconds = time.perf_counter() - start
        clock.current = None
        print(f"vjp call {call}: {seconds:6.2f} s, {clock.count.get(('vjp', call), 0)} programs compiled in "
              f"{clock.total.get(('vjp', call), 0.0):.2f} s; finite differences: {report.fd} in {report.fd_dtype}; "
              f"{'passed' if report.passed else 'FAILED'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="784,1000,1000,10", help="layer sizes of the ReLU MLP")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--part", choices=("model", "vjp", "all"), default="model",
                    help="check_model on the MLP, check_vjp on a 1M-element argument, or both")
    ap.add_argument("--side", type=int, default=1000, help="check_vjp's argument is (side, side)")
    args = ap.parse_args()
    import jax

    import jaxnets as jn
    from jaxnets import gradcheck, losses

    clock = CompileClock()
    if args.part in ("vjp", "all"):
        vjp_cost(args.side, args.calls, clock)
        if args.part == "vjp":
            print(f"load average at the end {os.getloadavg()[0]:.1f}")
            return 0
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
