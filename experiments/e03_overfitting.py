"""Experiment 3 — overfitting and regularisation with 1,000 training images (Nielsen ch. 3, C3-c/d).

network2's setting: [784, 30, 10] sigmoid, cross-entropy (sigmoid outputs, on logits), N(0, 1) "large"
initialisation, η = 0.5, mini-batches of 10, trained on the first 1,000 training images only. Four variants:
none, L2 (λ = 0.1, n = 1000 as in network2), L1 (λ = 0.1 is too weak to matter, so λ = 1.0), dropout (rate 0.2
on the hidden layer's outputs). Training accuracy (evaluation mode, all 1,000 images) and test accuracy are
recorded after every epoch: the gap between them is the overfitting. The book (MNIST, 400 epochs): no
regularisation peaks at 82.27 % test while training accuracy reaches 100 %; L2 λ = 0.1 peaks at 87.1 %.
"""
from __future__ import annotations

import jax
import numpy as np

import jaxnets
from jaxnets import initializers, losses, optim
from jaxnets.layers import Dense, Dropout, Sigmoid

from experiments import common

CLAIM = ("With 1,000 training images an unregularised [784,30,10] net overfits (train→100 %, test stalls); L2, L1 "
         "and dropout narrow the train/test gap and raise test accuracy")


def network(n_in, dropout=None):
    big = dict(w_init=initializers.normal(1.0), b_init=initializers.normal(1.0))
    hidden = [Dense(30, **big), Sigmoid()] + ([Dropout(dropout)] if dropout else [])
    return jaxnets.serial(*hidden, Dense(10, **big), name=f"[{n_in},30,10] dropout={dropout}")


def main(argv=None):
    run = common.start(3, "e03_overfitting", CLAIM, argv)
    ds, ds_name = common.image_data()
    n = run.size(1000, 200)
    train, val, test = common.splits(ds, n_val=run.size(10_000, 200), n_train=n, n_test=run.size(None, 400),
                                     seed=run.seed)
    epochs = run.size(300, 2)
    n_in = common.n_inputs(ds)
    variants = {
        "none": (network(n_in), None),
        "L2 λ=0.1": (network(n_in), jaxnets.losses.l2(0.1, n)),
        "L1 λ=1.0": (network(n_in), jaxnets.losses.l1(1.0, n)),
        "dropout 0.2": (network(n_in, 0.2), None),
    }
    if run.quick:
        variants = {k: variants[k] for k in ("L2 λ=0.1",)}
    results = {}
    for name, (model, penalty) in variants.items():
        _, curves = common.fit_tracked(model, losses.sigmoid_cross_entropy, optim.sgd(0.5), train, epochs=epochs,
                                       batch_size=10, key=jax.random.key(run.seed), val=val, test=test,
                                       train_eval=train, penalty=penalty)
        gap = np.subtract(curves["train_eval_accuracy"], curves["test_accuracy"])
        last = max(1, len(gap) // 10)  # average over the last 10 % of epochs
        results[name] = {"protocols": common.protocols(curves),
                         "final_train_accuracy": curves["train_eval_accuracy"][-1],
                         "final_gap_mean_last_10pct": float(np.mean(gap[-last:])),
                         "max_train_accuracy": max(curves["train_eval_accuracy"]), "curves": curves}
        run.log(name, results[name]["protocols"], "gap", results[name]["final_gap_mean_last_10pct"])

    fig, axes = common.figure(ncols=3)
    for i, (name, r) in enumerate(results.items()):
        c, color = r["curves"], f"C{i}"
        ep = common.epochs_axis(c["test_accuracy"])
        axes[0][0].plot(ep, np.multiply(c["train_eval_accuracy"], 100), "--", color=color, label=f"{name} (train)")
        axes[0][0].plot(ep, np.multiply(c["test_accuracy"], 100), "-", color=color, label=f"{name} (test)")
        axes[0][1].plot(ep, 100 * np.subtract(c["train_eval_accuracy"], c["test_accuracy"]), color=color, label=name)
        axes[0][2].plot(ep, c["test_loss"], color=color, label=name)
    common.label(axes[0][0], f"{ds_name}, {n} training images", "epoch", "accuracy (%)")
    common.label(axes[0][1], "overfitting: train − test accuracy", "epoch", "gap (percentage points)")
    common.label(axes[0][2], "test cost (cross-entropy, no penalty)", "epoch", "cost")
    run.savefig(fig, "gap")

    parts = [f"{k}: test {common.pct(v['protocols']['at_best_val'])} (peak {common.pct(v['protocols']['peak_test'])}), "
             f"train {common.pct(v['final_train_accuracy'])}, gap {100 * v['final_gap_mean_last_10pct']:.1f} pp"
             for k, v in results.items()]
    measured = f"{ds_name}, {n} images, {epochs} epochs — " + "; ".join(parts)
    run.finish({"dataset": ds_name, "n_train": n, "epochs": epochs, "variants": results}, measured)


if __name__ == "__main__":
    common.main_guard(main)
