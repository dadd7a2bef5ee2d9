"""Experiment 6 — convolutional network vs fully connected network on Fashion-MNIST (Nielsen ch. 6).

Part A (headline, 50k train / 10k validation / 10k test): the best MLP we could afford, [784, 512, 256, 10]
ReLU with dropout 0.3 (20 epochs), against a two-stage ConvNet in the book's shape (conv 20×5×5 → 2×2 max-pool
→ conv 40×5×5 → 2×2 max-pool → dense 256 → dropout 0.25 → 10, ReLU; 20 epochs, each mini-batch randomly
shifted by one pixel as in the book's expanded data), both with Adam and a cosine-decayed learning rate, mini-batches of
128 (MLP) and 64 (CNN). Targets:
MLP ≥ 0.89, CNN ≥ 0.92 (the Fashion-MNIST paper's MLP baseline is ≈ 0.87).
Part B (ablations, 10k training images, 5k validation images): the book's one-stage ConvNet (conv 20×5×5, pool 2×2,
dense 100) with max vs L2 pooling, with/without dropout 0.5 and with/without random one-pixel shifts (the book's
expanded data, sampled per mini-batch), next to an MLP [784, 100, 10] on the same images.

Every net trains with `jaxnets.fit` (through `common.fit_tracked`); its default `loop="auto"` drives the
ConvNets on the CPU one jitted step per mini-batch from Python, since XLA:CPU runs convolutions inside a compiled
epoch's `lax.scan` ~12-15x slower (jax-ml/jax#12868), and `jaxnets.evaluate` does the same per chunk.
Accuracies: test accuracy at the epoch of best validation accuracy.
"""
from __future__ import annotations

import jax
import numpy as np

import jaxnets
from jaxnets import losses, models, optim
from jaxnets.data import augment
from jaxnets.layers import Conv2D, Dense, Dropout, Flatten, MaxPool, Relu

from experiments import common

CLAIM = ("A ConvNet beats an MLP on Fashion-MNIST (targets: MLP ≥ 0.89, CNN ≥ 0.92); ablations: max vs L2 "
         "pooling, dropout, shift augmentation")


def cosine_adam(lr, epochs, n, batch):
    return optim.adam(optim.cosine_decay_schedule(lr, epochs * -(-n // batch)))


def plot(results, ds_name, n, n_ab):
    """Test (solid) and running training (dotted) accuracy per epoch; the legend gives test at best val."""
    fig, axes = common.figure(ncols=2, width=6.0)
    for ax, (part, title) in zip(axes[0], (("headline", f"{ds_name}: {n} training images"),
                                           ("ablation", f"ablations: {n_ab} training images"))):
        for i, (name, r) in enumerate(results[part].items()):
            cc = r["curves"]
            ep = common.epochs_axis(cc["test_accuracy"])
            ax.plot(ep, np.multiply(cc["test_accuracy"], 100), color=f"C{i}",
                    label=f"{name} ({100 * r['protocols']['at_best_val']:.2f} %)")
            ax.plot(ep, np.multiply(cc["train_accuracy"], 100), ":", color=f"C{i}", alpha=0.6)
        common.label(ax, title, "epoch", "accuracy (%) — solid: test, dotted: training")
    return fig


def main(argv=None):
    run = common.start(6, "e06_cnn_vs_mlp", CLAIM, argv)
    flat, ds_name = common.image_data(flatten=True)
    imgs, _ = common.image_data(flatten=False)
    q = run.quick
    cut = dict(n_val=run.size(10_000, 200), n_test=run.size(None, 200), seed=run.seed)
    trf, valf, testf = common.splits(flat, n_train=run.size(None, 256), **cut)
    tri, vali, testi = common.splits(imgs, n_train=run.size(None, 256), **cut)
    key = jax.random.key(run.seed)
    loss = losses.softmax_cross_entropy
    results = {"headline": {}, "ablation": {}}

    # --- Part A: headline MLP and CNN on the full training set -------------------------------------------------
    e_mlp, e_cnn, batch = run.size(20, 1), run.size(20, 1), 64
    n = trf[0].shape[0]
    n_in = common.n_inputs(flat)
    mlp = models.mlp([n_in, 512, 256, 10], "relu", dropout=0.3)
    _, c = common.fit_tracked(mlp, loss, cosine_adam(1e-3, e_mlp, n, 128), trf, epochs=e_mlp, batch_size=128,
                              key=key, val=valf, test=testf)
    results["headline"][f"MLP [{n_in},512,256,10] ReLU, dropout 0.3"] = {"curves": c, "protocols": common.protocols(c)}
    run.log("MLP", common.protocols(c))
    # 28×28 images: the book's VALID convolutions (28 → 24 → 12 → 8 → 4); smaller images (the 8×8 digits when
    # Fashion-MNIST is absent) keep their size through SAME convolutions (8 → 8 → 4 → 4 → 2).
    pad = "VALID" if imgs.x_train.shape[1] >= 28 else "SAME"
    cnn = jaxnets.serial(Conv2D(20, 5, padding=pad), Relu(), MaxPool(2), Conv2D(40, 5, padding=pad), Relu(), MaxPool(2),
                         Flatten(), Dense(256), Relu(), Dropout(0.25), Dense(10), name="conv20-pool-conv40-pool-256")
    shift = augment.random_shift(1)
    _, c = common.fit_tracked(cnn, loss, cosine_adam(1e-3, e_cnn, n, batch), tri, epochs=e_cnn, batch_size=batch,
                              key=key, val=vali, test=testi, augment=shift, verbose=True)
    results["headline"]["CNN conv20-pool-conv40-pool-256 ReLU, dropout 0.25, shifts"] = {"curves": c,
                                                                                "protocols": common.protocols(c)}
    run.log("CNN", common.protocols(c))

    # --- Part B: ablations on 10k images ------------------------------------------------------------------------
    n_ab, e_ab = run.size(10_000, 256), run.size(6, 1)
    sub_i = (tri[0][:n_ab], tri[1][:n_ab])
    sub_f = (trf[0][:n_ab], trf[1][:n_ab])
    n_vab = run.size(5000, 200)  # ablations select on the first 5,000 validation images (time)
    vali, valf = (vali[0][:n_vab], vali[1][:n_vab]), (valf[0][:n_vab], valf[1][:n_vab])
    variants = {
        "max pool": dict(pooling="max"),
        "L2 pool": dict(pooling="l2"),
        "max pool + dropout 0.5": dict(pooling="max", dropout=0.5),
        "max pool + shifts": dict(pooling="max", aug=True),
        "max pool + dropout 0.5 + shifts": dict(pooling="max", dropout=0.5, aug=True),
    }
    if q:  # quick mode: one ConvNet compile (part A) is enough; skip the ablations
        variants = {}
    for name, v in variants.items():
        model = models.cnn(20, activation="relu", pooling=v["pooling"], dropout=v.get("dropout"))
        _, c = common.fit_tracked(model, loss, optim.adam(1e-3), sub_i, epochs=e_ab, batch_size=batch, key=key,
                                  val=vali, test=testi, augment=shift if v.get("aug") else None)
        results["ablation"][f"CNN {name}"] = {"curves": c, "protocols": common.protocols(c)}
        run.log(name, common.protocols(c))
    if not q:
        _, c = common.fit_tracked(models.mlp([n_in, 100, 10], "relu"), loss, optim.adam(1e-3), sub_f, epochs=e_ab,
                                  batch_size=batch, key=key, val=valf, test=testf)
        results["ablation"][f"MLP [{n_in},100,10] ReLU"] = {"curves": c, "protocols": common.protocols(c)}

    run.savefig(plot(results, ds_name, n, n_ab), "accuracy")

    head = results["headline"]
    mlp_acc = next(v for k, v in head.items() if k.startswith("MLP"))["protocols"]["at_best_val"]
    cnn_acc = next(v for k, v in head.items() if k.startswith("CNN"))["protocols"]["at_best_val"]
    measured = (f"{ds_name} test at best val: MLP {common.pct(mlp_acc)} ({e_mlp} ep), CNN {common.pct(cnn_acc)} "
                f"({e_cnn} ep); ablation ({n_ab} imgs, {e_ab} ep): "
                + ", ".join(f"{k} {common.pct(v['protocols']['at_best_val'])}" for k, v in results["ablation"].items()))
    results.update(dataset=ds_name, protocol="test accuracy at the epoch of best validation accuracy",
                   targets={"mlp": 0.89, "cnn": 0.92}, mlp_meets_target=mlp_acc >= 0.89,
                   cnn_meets_target=cnn_acc >= 0.92)
    run.finish(results, measured)


if __name__ == "__main__":
    common.main_guard(main)
