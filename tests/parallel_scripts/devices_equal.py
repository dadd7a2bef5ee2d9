"""1 device vs 8 devices: the same training from the same key, then the differences, as one JSON line.

Run with XLA_FLAGS=--xla_force_host_platform_device_count=8 (tests/test_parallel.py does). Prints
`RESULT {...}` with, per case, the max abs/rel differences of params and layer state between fit(mesh=None)
and fit(mesh=make_mesh()) over 8 devices; the collectives in the compiled 8-device epoch; an ensemble
(vmap) + data-sharding check; and the messages of the device-count errors.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import problem  # noqa: E402
from jaxnets import parallel  # noqa: E402
from jaxnets.training import init_train_state, make_epoch, make_step  # noqa: E402


def collectives(mesh, x, y):
    """Counts of collective ops in the compiled 8-device epoch, and whether the dense layers see B/8 rows."""
    model, loss, optimizer, gradients = problem.setup("manual")
    epoch = make_epoch(model, loss, optimizer, batch_size=problem.BATCH, gradients=gradients, mesh=mesh)
    ts = parallel.replicate(init_train_state(model, optimizer, jax.random.key(0), (problem.FEATURES,)), mesh)
    text = jax.jit(epoch).lower(ts, x, y, jax.random.key(1)).compile().as_text()
    ops = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
    per_device = problem.BATCH // mesh.devices.size
    return {"ops": {op: len(re.findall(rf"\b{op}(?:-start)?\(", text)) for op in ops},
            "local_batch_dot": bool(re.search(rf"f32\[{per_device},{problem.HIDDEN}\]\S* dot\(", text))}


def ensemble(mesh, x, y):
    """vmap over 2 ensemble members of the sharded epoch vs the unsharded one: max abs param difference."""
    model, loss, optimizer, gradients = problem.setup("manual")
    keys = jax.random.split(jax.random.key(3), 2)
    members = jax.vmap(lambda k: init_train_state(model, optimizer, k, (problem.FEATURES,)))(keys)
    out = {}
    for name, m in (("one", None), ("eight", mesh)):
        epoch = make_epoch(model, loss, optimizer, batch_size=problem.BATCH, gradients=gradients, mesh=m)
        args = (members, x, y) if m is None else parallel.replicate((members, x, y), m)
        out[name], _ = jax.jit(jax.vmap(epoch, in_axes=(0, None, None, 0)))(*args, keys)
    return problem.difference(parallel.to_host(out["eight"].params), parallel.to_host(out["one"].params))


def custom_loop(mesh, x, y):
    """A hand-written loop's step: jit(make_step(mesh=...)) on a batch placed with shard_batch, 3 steps,
    vs the same steps on one device: max abs / rel param difference."""
    model, loss, optimizer, gradients = problem.setup("batchnorm-manual")
    ts0 = init_train_state(model, optimizer, jax.random.key(5), (problem.FEATURES,))
    out = {}
    for name, m in (("one", None), ("eight", mesh)):
        step = jax.jit(make_step(model, loss, optimizer, gradients=gradients, mesh=m))
        ts = ts0 if m is None else parallel.replicate(ts0, m)
        for i in range(3):
            batch = (x[i * problem.BATCH:(i + 1) * problem.BATCH], y[i * problem.BATCH:(i + 1) * problem.BATCH])
            if m is not None:
                batch = parallel.shard_batch(batch, m)
            ts, _ = step(ts, *batch, jax.random.key(i))
        out[name] = parallel.to_host(ts.params)
    return problem.difference(out["eight"], out["one"])


def error(fn):
    try:
        fn()
    except ValueError as err:
        return str(err)
    return None


def main():
    if jax.device_count() != 8:
        raise SystemExit(f"expected 8 devices (XLA_FLAGS=--xla_force_host_platform_device_count=8), got "
                         f"{jax.device_count()}")
    mesh = parallel.make_mesh()
    data = problem.make_data()
    result = {"devices": jax.device_count(), "cases": {}}
    for case in problem.CASES:
        p1, s1, l1 = problem.train(case, None)
        info = {}
        p8, s8, l8 = problem.train(case, mesh, info=info)
        abs_p, rel_p = problem.difference(p8, p1)
        entry = {"params_max_abs": abs_p, "params_max_rel": rel_p, "loss_1": l1, "loss_8": l8,
                 "param_devices": info["devices"]}
        if jax.tree_util.tree_leaves(s1):
            entry["state_max_abs"], entry["state_max_rel"] = problem.difference(s8, s1)
        result["cases"][case] = entry
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    result["hlo"] = collectives(mesh, *parallel.replicate((x, y), mesh))
    result["ensemble_max_abs"], result["ensemble_max_rel"] = ensemble(mesh, x, y)
    result["step_max_abs"], result["step_max_rel"] = custom_loop(mesh, data[0], data[1])
    odd = problem.make_data(196)                  # 196 = 6·32 + 4: the last batch of 4 cannot split over 8
    result["errors"] = {
        "batch": error(lambda: problem.train("manual", mesh, data, batch_size=12)),
        "remainder": error(lambda: problem.train("manual", mesh, odd)),
    }
    # drop_last=True is the documented way around the remainder error: it must train.
    _, _, loss_drop = problem.train("manual", mesh, odd, drop_last=True)
    result["drop_last_loss"] = loss_drop
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
