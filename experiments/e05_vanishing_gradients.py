"""Experiment 5 — vanishing gradients (Nielsen ch. 5): how fast each layer of a deep network learns.

The speed of learning of layer l is ‖δˡ‖ = ‖∂C/∂bˡ‖ (BP3). For [784, 30, 30, 30, 30, 10] sigmoid networks
initialised N(0, 1/n_in), trained on 1,000 images with η = 0.1 and mini-batches of 10 as in the book, the early
layers learn far more slowly (the book: 0.003, 0.017, 0.070, 0.285 for the four hidden layers at
initialisation, on MNIST). Compared here: sigmoid vs ReLU vs sigmoid with batch normalisation (same init, same
optimizer), and for the sigmoid network three initialisations: N(0, 1) (the book's first, "large" one),
N(0, 1/n_in) (Nielsen / LeCun) and Glorot uniform. Norms are measured with
`jaxnets.diagnostics.learning_speed` (per-epoch means over the mini-batch gradients, inside the compiled epoch);
the initial row is recomputed with `gradient_norms` over the 1,000 images in training mode (batch statistics for
batch norm). With batch norm the bias of a layer is BatchNorm's β (the Dense bias in front of it has a zero
gradient), so ‖∂C/∂βˡ‖ is measured there, at initialisation and in training.
"""
from __future__ import annotations

import jax
import numpy as np

import jaxnets
from jaxnets import initializers, losses, models, optim
from jaxnets.diagnostics import gradient_norms, learning_speed

from experiments import common

CLAIM = ("In a deep sigmoid net the early layers learn much more slowly "
         "(‖∂C/∂bˡ‖ shrinks towards the input); ReLU "
         "and batch norm reduce the imbalance; the initialisation (N(0,1), 1/√n, Glorot) changes it")

HIDDEN = [30, 30, 30, 30]  # sizes = [n_in] + HIDDEN + [10], n_in from the data (784 for Fashion-MNIST)


def measure(run, model, train, test, epochs, key):
    """Train with `learning_speed` and read ‖δˡ‖ of the hidden layers: ‖∂C/∂bˡ‖ of the hidden Dense
    layers, or ‖∂C/∂βˡ‖ of the BatchNorm layers in a batch-norm net (`common.hidden_rows`). The initial norms
    are taken over the first 1,000 training images in training mode (batch statistics for batch norm)."""
    loss = losses.softmax_cross_entropy
    speed = learning_speed(model, loss, optim.sgd(0.1), train, epochs=epochs, batch_size=10, key=key)
    rows = common.hidden_rows(speed.layers)
    dense = [i for i, name in enumerate(speed.layers[:-1]) if "Dense" in name]  # the hidden layers' weights
    _, p0, s0 = jax.jit(lambda k: model.init(k, tuple(train[0].shape[1:])))(key)
    at_init = gradient_norms(model, loss, p0, s0, train[0][:1000], train[1][:1000], train=True, key=key)
    init = at_init["delta"][rows]
    acc = jaxnets.evaluate(model, loss, speed.params, speed.state, test)["accuracy"]
    delta, weight = np.asarray(speed.delta)[:, rows], np.asarray(speed.weight)[:, dense]
    return {"layers": [speed.layers[i] for i in rows], "bias_grad_norm": delta, "weight_grad_norm": weight,
            "train_loss": speed.train_loss, "test_accuracy": acc, "init_hidden_speed": init,
            "init_ratio_first_to_last_hidden": float(init[0] / init[-1]),
            # during training: the mean over epochs of the per-epoch mean mini-batch ratio
            "training_ratio_first_to_last_hidden": float(np.mean(delta[1:, 0] / delta[1:, -1]))}


def main(argv=None):
    run = common.start(5, "e05_vanishing_gradients", CLAIM, argv)
    ds, ds_name = common.image_data()
    train, _, test = common.splits(ds, n_val=run.size(10_000, 200), n_train=run.size(1000, 200),
                                   n_test=run.size(None, 300), seed=run.seed)
    epochs = run.size(30, 2)
    key = jax.random.key(run.seed)
    nielsen = initializers.nielsen_normal
    sizes = [common.n_inputs(ds)] + HIDDEN + [10]
    variants = {
        "sigmoid": models.mlp(sizes, "sigmoid", w_init=nielsen),
        "ReLU": models.mlp(sizes, "relu", w_init=nielsen),
        "sigmoid + batch norm": models.mlp(sizes, "sigmoid", w_init=nielsen, batch_norm=True),
        "sigmoid, N(0,1) init": models.mlp(sizes, "sigmoid", w_init=initializers.normal(1.0)),
        "sigmoid, Glorot init": models.mlp(sizes, "sigmoid", w_init=initializers.glorot_uniform),
    }
    if run.quick:
        variants = {k: variants[k] for k in ("sigmoid",)}
    results = {}
    for name, model in variants.items():
        results[name] = measure(run, model, train, test, epochs, key)
        r = results[name]
        run.log(name, "init speed hidden:", np.round(r["init_hidden_speed"], 5), "test", r["test_accuracy"])

    fig, axes = common.figure(ncols=3)
    layers = np.arange(1, len(sizes) - 1)
    for i, (name, r) in enumerate(results.items()):
        axes[0][0].plot(layers, r["init_hidden_speed"], marker="o", color=f"C{i}", label=name)
        axes[0][2].plot(common.epochs_axis(r["train_loss"]), r["train_loss"], color=f"C{i}",
                        label=f"{name} (test {100 * r['test_accuracy']:.1f} %)")
    common.label(axes[0][0], "speed of learning at initialisation", "hidden layer (1 = next to the input)",
                 "‖∂C/∂bˡ‖ (batch norm: ‖∂C/∂βˡ‖), 1,000 images", log=True)
    axes[0][0].set_xticks(layers)
    first = next(iter(results))
    sig = results[first]["bias_grad_norm"]
    for l in range(sig.shape[1]):
        axes[0][1].plot(np.arange(sig.shape[0]), sig[:, l], label=f"hidden layer {l + 1}")
    common.label(axes[0][1], f"{first} {sizes}: speed per layer", "epoch (0 = initialisation)",
                 "mean mini-batch ‖∂C/∂bˡ‖", log=True)
    common.label(axes[0][2], f"{ds_name}, 1,000 images, η=0.1: training cost", "epoch", "cross-entropy", log=True)
    run.savefig(fig, "speed")

    s = results[first]
    parts = [f"{k}: ‖δ¹‖/‖δ⁴‖ = {v['init_ratio_first_to_last_hidden']:.3f} at init, "
             f"{v['training_ratio_first_to_last_hidden']:.3f} in training, "
             f"test {common.pct(v['test_accuracy'])}" for k, v in results.items()]
    measured = (f"{first} {sizes} init ‖δˡ‖ (hidden 1→4): "
                + ", ".join(f"{d:.4f}" for d in s["init_hidden_speed"])
                + "; " + "; ".join(parts))
    run.finish({"dataset": ds_name, "sizes": sizes, "epochs": epochs, "variants": results,
                "protocol": "test accuracy after the last epoch (no validation selection)"}, measured)


if __name__ == "__main__":
    common.main_guard(main)
