"""Experiment 4 — optimizers: SGD, momentum, Nesterov, Adagrad, RMSProp, Adam on the same network.

Each optimizer trains [784, 100, 10] (ReLU, softmax cross-entropy, Glorot init) twice from the same key: once
with the jaxnets implementation and once with optax's. Everything else being equal, the two learning curves
must coincide; we report the largest difference of the curves and of the final weights. A second check,
`jaxnets.optim.parity`, follows both trajectories step by step on real mini-batch gradients.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxnets
from jaxnets import gradients, losses, models, optim

from experiments import common

CLAIM = ("SGD, momentum, Nesterov, Adagrad, RMSProp, Adam (jaxnets) train like their optax twins — curves coincide")

OPTIMIZERS = {  # name: (jaxnets optimizer, optax optimizer), same hyper-parameters
    "SGD η=0.1": (optim.sgd(0.1), optax.sgd(0.1)),
    "momentum 0.9, η=0.01": (optim.sgd(0.01, momentum=0.9), optax.sgd(0.01, momentum=0.9)),
    "Nesterov 0.9, η=0.01": (optim.sgd(0.01, momentum=0.9, nesterov=True),
                             optax.sgd(0.01, momentum=0.9, nesterov=True)),
    "Adagrad η=0.05": (optim.adagrad(0.05), optax.adagrad(0.05)),
    "RMSProp η=1e-3": (optim.rmsprop(1e-3), optax.rmsprop(1e-3)),
    "Adam η=1e-3": (optim.adam(1e-3), optax.adam(1e-3)),
}


def parity_check(model, loss, params, state, x, y, tx_a, tx_b, steps, batch):
    """`optim.parity` on mini-batch gradients of the real cost (batch t = examples t·batch … (t+1)·batch)."""
    grad_fn = gradients.manual(model, loss)
    n_batches = x.shape[0] // batch

    def grads_fn(p, t):
        start = (t % n_batches) * batch
        xb = jax.lax.dynamic_slice_in_dim(x, start, batch)
        yb = jax.lax.dynamic_slice_in_dim(y, start, batch)
        return grad_fn(p, state, xb, yb, jaxnets.Ctx(train=True))[1]

    return optim.parity(tx_a, tx_b, params, grads_fn, steps=steps)


def main(argv=None):
    run = common.start(4, "e04_optimizers", CLAIM, argv)
    ds, ds_name = common.image_data()
    train, val, test = common.splits(ds, n_val=run.size(10_000, 200), n_train=run.size(10_000, 300),
                                     n_test=run.size(None, 300), seed=run.seed)
    n_in = common.n_inputs(ds)
    model, loss = models.mlp([n_in, 100, 10], activation="relu"), losses.softmax_cross_entropy
    epochs, batch = run.size(10, 2), 32
    names = list(OPTIMIZERS) if not run.quick else ["Adam η=1e-3"]
    key = jax.random.key(run.seed)
    _, p0, s0 = jax.jit(lambda k: model.init(k, (n_in,)))(key)
    results = {}
    for name in names:
        pair = {}
        for impl, tx in zip(("jaxnets", "optax"), OPTIMIZERS[name]):
            res, curves = common.fit_tracked(model, loss, tx, train, epochs=epochs, batch_size=batch, key=key,
                                             val=val, test=test)
            pair[impl] = (res, curves)
        (ra, ca), (rb, cb) = pair["jaxnets"], pair["optax"]
        leaves = list(zip(jax.tree_util.tree_leaves(ra.params), jax.tree_util.tree_leaves(rb.params)))
        report = parity_check(model, loss, p0, s0, jnp.asarray(train[0]), jnp.asarray(train[1]), *OPTIMIZERS[name],
                              steps=run.size(300, 20), batch=batch)
        results[name] = {
            "protocols": common.protocols(ca),
            "curve_max_abs_diff": {c: float(np.max(np.abs(np.subtract(ca[c], cb[c]))))
                                   for c in ("train_loss", "val_loss", "test_accuracy")},
            "final_params_max_abs_diff": max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in leaves),
            "parity_max_relative": report.max, "parity_steps": len(report.params),
            "curves": {"jaxnets": ca, "optax": cb},
        }
        run.log(name, results[name]["protocols"], results[name]["curve_max_abs_diff"], report)

    fig, axes = common.figure(ncols=2)
    for i, (name, r) in enumerate(results.items()):
        for impl, style in (("jaxnets", "-"), ("optax", ":")):
            c = r["curves"][impl]
            ep = common.epochs_axis(c["train_loss"])
            axes[0][0].plot(ep, c["train_loss"], style, color=f"C{i}", lw=2 if style == "-" else 3,
                            label=f"{name} ({impl})")
            axes[0][1].plot(ep, np.multiply(c["test_accuracy"], 100), style, color=f"C{i}", lw=2 if style == "-" else 3,
                            label=f"{name} ({impl})")
    common.label(axes[0][0], f"{ds_name} [784,100,10] ReLU: training cost", "epoch", "cross-entropy", log=True)
    common.label(axes[0][1], "test accuracy (solid: jaxnets, dotted: optax)", "epoch", "accuracy (%)")
    run.savefig(fig, "curves")

    worst_curve = max(max(r["curve_max_abs_diff"].values()) for r in results.values())
    worst_params = max(r["final_params_max_abs_diff"] for r in results.values())
    worst_parity = max(r["parity_max_relative"] for r in results.values())
    best = max(results, key=lambda k: results[k]["protocols"]["at_best_val"])
    measured = (f"jaxnets vs optax, {len(results)} optimizers, {epochs} epochs: max |Δ| curves {worst_curve:.1e}, "
                f"final weights {worst_params:.1e}; parity (relative, per step) {worst_parity:.1e}. "
                "Test acc. at best val: "
                + ", ".join(f"{k} {common.pct(v['protocols']['at_best_val'])}" for k, v in results.items())
                + f" (best: {best})")
    run.finish({"dataset": ds_name, "optimizers": results}, measured)


if __name__ == "__main__":
    common.main_guard(main)
