"""Experiment 2 — learning slowdown of the quadratic cost and its cure, the cross-entropy (Nielsen ch. 3).

(a) The book's single sigmoid neuron: input 1, target 0, η = 0.15, 300 epochs of one-example SGD. Starting at
    w = b = 0.6/0.9 (output 0.82) both costs learn at once; starting at w = b = 2.0 (output 0.98, saturated) the
    quadratic cost's gradient (a − y)·σ′(z) is tiny and learning stalls for ~150 epochs, while the
    cross-entropy's gradient (a − y) has no σ′ factor and learning starts immediately.
(b) A network: [784, 30, 10] sigmoid with N(0, 1) weights (large, hence saturated), quadratic vs cross-entropy
    (sigmoid outputs, `sigmoid_cross_entropy` on the logits), same η and batch size: cost and accuracy vs epoch.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxnets
from jaxnets import gradients, initializers, losses, neurons, optim
from jaxnets.layers import Dense, Sigmoid

from experiments import common

CLAIM = ("Quadratic cost learns slowly from a saturated sigmoid neuron (w=b=2, η=0.15); cross-entropy does not; "
         "same on a network")


def neuron_run(w0, b0, loss, epochs, eta=0.15, _compiled={}):
    """Cost and output after each epoch of one-example SGD (input 1 -> target 0), hand-written gradients."""
    model = neurons.sigmoid_neuron()
    params = ({"w": jnp.array([[w0]]), "b": jnp.array([b0])}, ())
    if (loss.name, epochs) not in _compiled:
        grad_fn = gradients.manual(model, loss)
        x, t = jnp.ones((1, 1)), jnp.zeros((1, 1))

        def epoch(p, _):
            (_, _), g = grad_fn(p, ((), ()), x, t, jaxnets.Ctx(train=True))
            p = jax.tree_util.tree_map(lambda a, d: a - eta * d, p, g)
            out, _ = jaxnets.apply(model, p, ((), ()), x)
            return p, (loss.value(out, t), out[0, 0])

        _compiled[(loss.name, epochs)] = jax.jit(lambda p: lax.scan(epoch, p, None, length=epochs)[1])
    cost, out = _compiled[(loss.name, epochs)](params)
    return np.asarray(cost), np.asarray(out)


def network(n_in):
    return jaxnets.serial(Dense(30, w_init=initializers.normal(1.0), b_init=initializers.normal(1.0)), Sigmoid(),
                          Dense(10, w_init=initializers.normal(1.0), b_init=initializers.normal(1.0)),
                          name=f"[{n_in},30,10] logits")


def with_sigmoid(model):
    return jaxnets.serial(model, Sigmoid(), name="sigmoid outputs")


def main(argv=None):
    run = common.start(2, "e02_learning_slowdown", CLAIM, argv)
    epochs = run.size(300, 20)
    neuron = {}
    for start in ((0.6, 0.9), (2.0, 2.0)):
        for loss in (losses.quadratic, losses.binary_cross_entropy):
            cost, out = neuron_run(*start, loss, epochs)
            # "learning has started" = the output has fallen by 0.1 from its initial value
            moved = np.flatnonzero(out < out[0] - 0.1)
            neuron[f"w={start[0]},b={start[1]} {loss.name}"] = {
                "cost": cost, "output": out, "final_output": float(out[-1]),
                "epochs_until_output_drops_0.1": int(moved[0]) + 1 if moved.size else None}
    run.log({k: (v["final_output"], v["epochs_until_output_drops_0.1"]) for k, v in neuron.items()})

    ds, ds_name = common.image_data()
    train, val, test = common.splits(ds, n_val=run.size(10_000, 200), n_train=run.size(20_000, 400),
                                     n_test=run.size(None, 400), seed=run.seed)
    net_epochs = run.size(15, 2)
    net = {}
    n_in = common.n_inputs(ds)
    for name, model, loss in (("quadratic (sigmoid outputs)", with_sigmoid(network(n_in)), losses.quadratic),
                              ("cross-entropy (sigmoid outputs)", network(n_in), losses.sigmoid_cross_entropy)):
        for eta in run.size((0.5, 3.0), (0.5,)):
            _, curves = common.fit_tracked(model, loss, optim.sgd(eta), train, epochs=net_epochs, batch_size=10,
                                           key=jax.random.key(run.seed), val=val, test=test)
            net[f"{name}, η={eta}"] = {"curves": curves, "protocols": common.protocols(curves),
                                       "test_accuracy_after_epoch_1": curves["test_accuracy"][0]}
            run.log(name, eta, net[f"{name}, η={eta}"]["protocols"])

    fig, axes = common.figure(ncols=2, nrows=2)
    for col, start in enumerate(("w=0.6,b=0.9", "w=2.0,b=2.0")):
        for loss_name, style in (("quadratic", "-"), ("binary_cross_entropy", "--")):
            r = neuron[f"{start} {loss_name}"]
            ep = common.epochs_axis(r["cost"])
            axes[0][col].plot(ep, r["cost"], style, label=f"{loss_name} cost")
            axes[0][col].plot(ep, r["output"], style, alpha=0.5, label=f"output a ({loss_name})")
        common.label(axes[0][col], f"neuron from {start}, η=0.15 (x=1 → y=0)", "epoch",
                     "cost / output")
    for name, r in net.items():
        c = r["curves"]
        axes[1][0].plot(common.epochs_axis(c["train_loss"]), c["train_loss"], label=name)
        axes[1][1].plot(common.epochs_axis(c["test_accuracy"]), np.multiply(c["test_accuracy"], 100), label=name)
    common.label(axes[1][0], f"{ds_name} [{n_in},30,10], N(0,1) init: training cost", "epoch", "cost (own scale)",
                 log=True)
    common.label(axes[1][1], f"{ds_name} [{n_in},30,10]: test accuracy", "epoch", "accuracy (%)")
    run.savefig(fig, "costs")

    q, ce = neuron["w=2.0,b=2.0 quadratic"], neuron["w=2.0,b=2.0 binary_cross_entropy"]
    nq, nce = net["quadratic (sigmoid outputs), η=0.5"], net["cross-entropy (sigmoid outputs), η=0.5"]
    measured = (f"saturated neuron (w=b=2): output falls by 0.1 after {q['epochs_until_output_drops_0.1']} epochs "
                f"(quadratic) vs {ce['epochs_until_output_drops_0.1']} (cross-entropy); final output "
                f"{q['final_output']:.3f} vs {ce['final_output']:.3f}. {ds_name} net, η=0.5, epoch 1: "
                f"{common.pct(nq['test_accuracy_after_epoch_1'])} (quadratic) vs "
                f"{common.pct(nce['test_accuracy_after_epoch_1'])} (CE); at best val "
                f"{common.pct(nq['protocols']['at_best_val'])} vs {common.pct(nce['protocols']['at_best_val'])}")
    run.finish({"neuron": neuron, "network": net, "dataset": ds_name}, measured)


if __name__ == "__main__":
    common.main_guard(main)
