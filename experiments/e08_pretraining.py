"""Experiment 8 — greedy layer-wise autoencoder pretraining vs random initialisation with few labels.

A sigmoid network [784, 256, 64, 10]. Pretraining (`jaxnets.pretrain_layerwise`, no labels): each
hidden layer is the encoder of an autoencoder (sigmoid decoder, quadratic reconstruction cost) trained on the
codes of the layer below, over 20,000 unlabelled images, 10 epochs per layer, with Adam (1e-3) — and, for
comparison, with the library's default optimizer SGD(0.5, momentum 0.9), which on 784-pixel inputs drives the
first layer's sigmoid codes into saturation (reported as the fraction of codes < 0.02 or > 0.98). Then the network is
fine-tuned with only L labelled images (L = 100 … 3,000), and compared with the same network trained from
Glorot-random weights on the same L images (same optimizer, epochs and data order). The claim (Bengio et al. 2007; Erhan
et al. 2010): pretraining helps most when labels are scarce. Accuracy: test at the epoch of best validation accuracy (a
10,000-image validation set, generous for a few-label setting; the same for both arms).
"""
from __future__ import annotations

import jax
import numpy as np

from jaxnets import losses, optim
from jaxnets.pretraining import pretrain_layerwise

from experiments import common

CLAIM = "Greedy layer-wise autoencoder pretraining beats random init when few labels are available"

SIZES = [784, 256, 64, 10]


def main(argv=None):
    run = common.start(8, "e08_pretraining", CLAIM, argv)
    ds, ds_name = common.image_data()
    train, val, test = common.splits(ds, n_val=run.size(10_000, 200), n_test=run.size(None, 300), seed=run.seed)
    n_unlabelled = run.size(20_000, 300)
    key = jax.random.key(run.seed)
    sizes = [common.n_inputs(ds)] + run.size(SIZES, [784, 32, 10])[1:]
    pretrained, recon, saturation = {}, {}, {}
    for arm, opt in (("pretrained (Adam 1e-3)", optim.adam(1e-3)),
                     ("pretrained (library default SGD 0.5, m 0.9)", None)):
        pre = pretrain_layerwise(sizes, train[0][:n_unlabelled], epochs=run.size(10, 1), key=key, batch_size=32,
                                 optimizer=opt)
        pretrained[arm] = pre
        recon[arm] = [{"layer": r.layer, "n_in": r.n_in, "n_hidden": r.n_hidden, "before": r.recon_before,
                       "after": r.recon_after} for r in pre.layers]
        h = np.asarray(jax.nn.sigmoid(train[0][:2000] @ pre.encoder_params[0]["w"] + pre.encoder_params[0]["b"]))
        saturation[arm] = float(np.mean((h < 0.02) | (h > 0.98)))
        run.log(arm, "reconstruction", recon[arm], "first-layer saturated fraction", saturation[arm])
        if run.quick:
            break
    model = pre.model

    labels = run.size([100, 300, 1000, 3000], [100])
    epochs = run.size(60, 2)
    loss, results = losses.softmax_cross_entropy, {}
    for n in labels:
        few = (train[0][-n:], train[1][-n:])  # labelled images: the end of the training part
        row = {}
        arms = [(a, p.params, p.state) for a, p in pretrained.items()] + [("random init", None, None)]
        for arm, params, state in arms:
            kwargs = {"params": params, "state": state} if params is not None else {}
            _, c = common.fit_tracked(model, loss, optim.sgd(0.1, momentum=0.9), few, epochs=epochs,
                                      batch_size=10, key=key, val=val, test=test, **kwargs)
            row[arm] = {"protocols": common.protocols(c), "test_accuracy": c["test_accuracy"]}
        results[n] = row
        run.log(n, {a: r["protocols"]["at_best_val"] for a, r in row.items()})

    fig, axes = common.figure(ncols=2)
    for (arm, _, _), marker in zip(arms, "os^"):
        axes[0][0].plot(labels, [100 * results[n][arm]["protocols"]["at_best_val"] for n in labels], marker=marker,
                        label=arm)
    axes[0][0].set_xscale("log")
    common.label(axes[0][0], f"{ds_name}, {sizes} sigmoid", "labelled training images", "test accuracy (%)")
    n0 = labels[0]
    for arm, _, _ in arms:
        t = results[n0][arm]["test_accuracy"]
        axes[0][1].plot(common.epochs_axis(t), 100 * np.asarray(t), label=arm)
    common.label(axes[0][1], f"fine-tuning on {n0} labelled images", "epoch", "test accuracy (%)")
    run.savefig(fig, "labels")

    acc = {n: {arm: results[n][arm]["protocols"]["at_best_val"] for arm, _, _ in arms} for n in labels}
    gains = {n: {arm: a - acc[n]["random init"] for arm, a in acc[n].items() if arm != "random init"} for n in labels}
    short = {arm: arm.split(" (")[0] + (" (Adam)" if "Adam" in arm else " (default)" if "default" in arm else "")
             for arm, _, _ in arms}
    measured = (f"{ds_name}, pretrained on {n_unlabelled} unlabelled images; test at best val: "
                + "; ".join(f"{n} labels " + ", ".join(f"{short[a]} {common.pct(v)}" for a, v in acc[n].items())
                            for n in labels)
                + "; first-layer codes saturated: "
                + ", ".join(f"{short[a]} {100 * v:.0f} %" for a, v in saturation.items()))
    run.finish({"dataset": ds_name, "sizes": sizes, "n_unlabelled": n_unlabelled, "reconstruction": recon,
                "first_layer_saturated_fraction": saturation,
                "fine_tune_epochs": epochs, "by_labels": {str(n): r for n, r in results.items()},
                "gain_pretrained_minus_random": {str(n): g for n, g in gains.items()}}, measured)


if __name__ == "__main__":
    common.main_guard(main)
