"""Experiment 11 — skip connections and batch norm against the vanishing gradient in a deep network.

Ten hidden layers of 30 units ([784] + [30]*10 + [10], Glorot-uniform weights, softmax cross-entropy), built
three ways, each with sigmoid and with ReLU units:

- plain: `models.mlp(sizes, σ)`, every hidden layer Dense → σ;
- skip connections: `models.resnet_mlp(n_in, 30, depth=10, classes=10, activation=σ)`, Dense → σ and then nine
  residual blocks h ← h + σ(W h + b), so the cotangent of every block reaches the one below unchanged;
- batch norm: `models.mlp(sizes, σ, batch_norm=True)`, every hidden layer Dense → BatchNorm → σ.

Training: plain SGD, mini-batches of 32, η = 0.5 for sigmoid and 0.02 for ReLU nets (the same η for the three
architectures of one activation; chosen on the training cost of short runs: the ReLU net with skip connections
has large gradients at init and is unsteady at 0.05, the plain ReLU net starts slowly at 0.01), 10,000 training
images for 15 epochs, the same key (init, batches) for all. Quick mode: the three sigmoid nets, 300 images,
2 epochs.

The speed of learning of hidden layer l is ‖δˡ‖ = ‖∂C/∂bˡ‖ (‖∂C/∂βˡ‖ of the BatchNorm in a
batch-norm net, `common.hidden_rows`), measured by `jaxnets.diagnostics.learning_speed`: row 0 over the first 1,000
training images at initialisation (in training mode, so batch norm uses batch statistics), row e the mean over the
mini-batch steps of epoch e. Learning speed of the whole net: the training cost (running mean over each epoch)
and the test accuracy after each epoch (`jaxnets.evaluate`). Reported: ‖δ¹‖/‖δ¹⁰‖ at init and its mean
over the training epochs, and the test accuracy after the last epoch. The claim (Nielsen ch. 5; He et al. 2016; Ioffe
& Szegedy 2015): the plain deep sigmoid net's early layers get far smaller gradients than its late ones and it
learns slowly; skip connections and batch norm even the gradients out and train fast.
"""
from __future__ import annotations

import time

import jax
import numpy as np

import jaxnets
from jaxnets import losses, models, optim
from jaxnets.diagnostics import gradient_norms, learning_speed
from jaxnets.training import TrainingDivergedError

from experiments import common

CLAIM = ("In a deep (10 hidden layers) sigmoid net the early layers get vanishing gradients and it learns slowly; "
         "skip connections (residual blocks) and batch norm keep ‖δˡ‖ even across layers and train fast, for "
         "sigmoid and ReLU")

WIDTH, DEPTH = 30, 10
RATES = {"sigmoid": 0.5, "relu": 0.02}  # SGD learning rate per activation, shared by the three architectures
ARCHITECTURES = ("plain", "skip connections", "batch norm")
# ‖δ¹⁰‖, the last hidden layer's
LAST = f"‖δ{str(DEPTH).translate(str.maketrans('0123456789', '⁰¹²³⁴⁵⁶⁷⁸⁹'))}‖"


def build(architecture, activation, n_in):
    sizes = [n_in] + [WIDTH] * DEPTH + [10]
    if architecture == "plain":
        return models.mlp(sizes, activation)
    if architecture == "skip connections":
        return models.resnet_mlp(n_in, WIDTH, depth=DEPTH, classes=10, activation=activation)
    return models.mlp(sizes, activation, batch_norm=True)


def measure(run, model, eta, train, test, epochs, batch_size, key, batch_norm):
    """Train `model` with `learning_speed` (SGD η) and return its per-layer ‖δˡ‖ (epochs + 1, L), their
    first-to-last ratio, the training cost and the test accuracy per epoch; {"diverged": ...} if SGD blew up."""
    loss = losses.softmax_cross_entropy
    curves = {"test_loss": [], "test_accuracy": []}

    def record(epoch, row, ts):
        m = jaxnets.evaluate(model, loss, ts.params, ts.state, test)
        curves["test_loss"].append(m["loss"])
        curves["test_accuracy"].append(m["accuracy"])

    t0 = time.perf_counter()
    _, p0, s0 = model.init(key, tuple(train[0].shape[1:]))  # learning_speed's own default init, done once here
    try:
        speed = learning_speed(model, loss, optim.sgd(eta), train, epochs=epochs, batch_size=batch_size, key=key,
                               params=p0, state=s0, callbacks=[record])
    except TrainingDivergedError as err:
        run.log(f"{model.name}: diverged at epoch {err.epoch}, step {err.step}")
        return {"diverged": True, "diverged_at_epoch": err.epoch, "learning_rate": eta}
    rows = common.hidden_rows(speed.layers)
    delta = np.asarray(speed.delta)[:, rows]
    if batch_norm:  # row 0 again in training mode: at init BatchNorm's running statistics are just (0, 1)
        delta[0] = gradient_norms(model, loss, p0, s0, train[0][:1000], train[1][:1000], train=True,
                                  key=key)["delta"][rows]
    ratio = delta[:, 0] / delta[:, -1]
    return {"diverged": False, "learning_rate": eta, "layers": [speed.layers[i] for i in rows],
            "delta": delta, "init_delta": delta[0], "ratio_first_to_last": ratio,
            "init_ratio_first_to_last": float(ratio[0]), "train_loss": speed.train_loss, **curves,
            "final_test_accuracy": curves["test_accuracy"][-1], "seconds": time.perf_counter() - t0}


def plot(run, results, ds_name, n_train):
    fig, axes = common.figure(ncols=2, nrows=2, width=6.0, height=4.2)
    (a, b), (c, d) = axes
    for name, r in results.items():
        if r["diverged"]:
            continue
        arch, act = name.split(", ")
        style = dict(color=f"C{ARCHITECTURES.index(arch)}", ls="-" if act == "sigmoid" else "--")
        layers = np.arange(1, len(r["init_delta"]) + 1)
        a.plot(layers, r["init_delta"], marker="o", markersize=3, label=name, **style)
        b.plot(np.arange(len(r["ratio_first_to_last"])), r["ratio_first_to_last"], marker="o", markersize=3,
               label=name, **style)
        c.plot(common.epochs_axis(r["train_loss"]), r["train_loss"], label=name, **style)
        d.plot(common.epochs_axis(r["test_accuracy"]), 100 * np.asarray(r["test_accuracy"]),
               label=f"{name} ({100 * r['final_test_accuracy']:.1f} %)", **style)
    common.label(a, f"(a) speed of learning at initialisation, {DEPTH} hidden layers",
                 "hidden layer (1 = next to the input)", "‖∂C/∂bˡ‖ (batch norm: ‖∂C/∂βˡ‖)", log=True,
                 integer_x=True)
    b.axhline(1.0, color="gray", lw=0.8, ls=":")
    common.label(b, "(b) first vs last hidden layer", "epoch (0 = initialisation)",
                 f"‖δ¹‖ / {LAST} (mean over the epoch's mini-batches)", log=True)
    common.label(c, f"(c) {ds_name}, {n_train} images: training cost", "epoch", "cross-entropy (running mean)",
                 log=True)
    common.label(d, "(d) test accuracy (final in the legend)", "epoch", "accuracy (%)")
    run.savefig(fig, "gradients")


def main(argv=None):
    run = common.start(11, "e11_skip_connections", CLAIM, argv)
    ds, ds_name = common.image_data()
    train, _, test = common.splits(ds, n_val=run.size(10_000, 200), n_train=run.size(10_000, 300),
                                   n_test=run.size(None, 300), seed=run.seed)
    epochs, batch_size = run.size(15, 2), 32
    key = jax.random.key(run.seed)
    n_in = common.n_inputs(ds)
    results = {}
    for act in run.size(("sigmoid", "relu"), ("sigmoid",)):  # quick: the three architectures, one activation
        for arch in ARCHITECTURES:
            name = f"{arch}, {'ReLU' if act == 'relu' else act}"
            results[name] = measure(run, build(arch, act, n_in), RATES[act], train, test, epochs, batch_size, key,
                                    batch_norm=arch == "batch norm")
            r = results[name]
            if not r["diverged"]:
                run.log(f"{name}: init ‖δˡ‖ {np.round(r['init_delta'], 5)}, "
                        f"ratio {r['init_ratio_first_to_last']:.3g}, "
                        f"test {r['test_accuracy']}")
    plot(run, results, ds_name, train[0].shape[0])

    def summary(name, r):
        if r["diverged"]:
            return f"{name}: diverged (η={r['learning_rate']}) at epoch {r['diverged_at_epoch']}"
        return (f"{name}: ‖δ¹‖/{LAST} = {r['init_ratio_first_to_last']:.3g} at init, "
                f"{np.mean(r['ratio_first_to_last'][1:]):.3g} in training, test {common.pct(r['final_test_accuracy'])}")

    measured = (f"{ds_name}, [{n_in}] + [{WIDTH}]×{DEPTH} + [10], {train[0].shape[0]} images, {epochs} epochs, SGD "
                f"η={RATES['sigmoid']} (sigmoid) / {RATES['relu']} (ReLU): "
                + "; ".join(summary(k, v) for k, v in results.items()))
    run.finish({"dataset": ds_name, "n_train": train[0].shape[0], "epochs": epochs, "batch_size": batch_size,
                "width": WIDTH, "depth": DEPTH, "learning_rates": RATES, "variants": results,
                "protocol": "test accuracy after the last epoch (no validation selection)"}, measured)


if __name__ == "__main__":
    common.main_guard(main)
