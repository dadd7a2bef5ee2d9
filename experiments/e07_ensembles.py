"""Experiment 7 — ensembles (Nielsen ch. 6): members vs plurality vote vs mean-probability vote.

K networks [784, 100, 10] (ReLU, softmax cross-entropy, SGD with momentum) differ only by their PRNG key
(initial weights, data order); `jaxnets.fit_ensemble` trains all K as one vmapped program. The
ensemble's test accuracy by plurality vote (the book's `conv.ensemble`) and by the mean of the members'
softmax probabilities is compared with the members' own, and plotted against the ensemble size.
Accuracies are after the last epoch (no selection).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import losses, models, optim
from jaxnets.ensembles import combine, ensemble_accuracy, fit_ensemble, member_outputs

from experiments import common

CLAIM = "An ensemble's vote beats its members (plurality and mean-probability voting)"


def main(argv=None):
    run = common.start(7, "e07_ensembles", CLAIM, argv)
    ds, ds_name = common.image_data()
    train, _, test = common.splits(ds, n_val=run.size(10_000, 200), n_train=run.size(20_000, 300),
                                   n_test=run.size(None, 300), seed=run.seed)
    k, epochs = run.size(10, 3), run.size(10, 1)
    n_in = common.n_inputs(ds)
    model = models.mlp([n_in, 100, 10], "relu")
    keys = jax.random.split(jax.random.key(run.seed), k)
    res = fit_ensemble(model, losses.softmax_cross_entropy, optim.sgd(0.05, momentum=0.9), train, epochs=epochs,
                       batch_size=32, keys=keys, progress=False)
    acc = ensemble_accuracy(model, res.params, res.state, test)
    run.log(acc)
    out = member_outputs(model, res.params, res.state, jnp.asarray(test[0]))
    truth = jnp.asarray(test[1])
    by_size = {"plurality": [], "mean": []}
    for size in range(1, k + 1):
        for how in by_size:
            by_size[how].append(float(jnp.mean(combine(out[:size], how) == truth)))
    members = np.asarray(acc["members"])

    fig, axes = common.figure(ncols=2)
    ax = axes[0][0]
    ax.bar(np.arange(k), 100 * members, color="C7", label="members")
    ax.axhline(100 * acc["plurality"], color="C0", label=f"plurality vote ({100 * acc['plurality']:.2f} %)")
    ax.axhline(100 * acc["mean"], color="C1", ls="--", label=f"mean-probability vote ({100 * acc['mean']:.2f} %)")
    ax.set_ylim(100 * members.min() - 2, 100 * max(acc["plurality"], acc["mean"]) + 1)
    common.label(ax, f"{ds_name}: {k} × [784,100,10], {epochs} epochs", "member", "test accuracy (%)", integer_x=True)
    ax = axes[0][1]
    sizes = np.arange(1, k + 1)
    ax.plot(sizes, 100 * np.asarray(by_size["plurality"]), marker="o", label="plurality vote")
    ax.plot(sizes, 100 * np.asarray(by_size["mean"]), marker="s", label="mean-probability vote")
    ax.axhline(100 * members.mean(), color="C7", ls=":", label="mean member")
    common.label(ax, "ensemble of the first k members", "ensemble size k", "test accuracy (%)", integer_x=True)
    run.savefig(fig, "votes")

    measured = (f"{ds_name}, {k} members, {train[0].shape[0]} images, {epochs} epochs: members "
                f"{common.pct(members.mean())} mean ({common.pct(members.min())}–{common.pct(members.max())}); "
                f"plurality {common.pct(acc['plurality'])}; mean-probability {common.pct(acc['mean'])}")
    run.finish({"dataset": ds_name, "members": members, "member_mean": acc["member_mean"],
                "plurality": acc["plurality"], "mean": acc["mean"], "by_size": by_size, "epochs": epochs,
                "n_train": train[0].shape[0], "ensemble_seconds": res.seconds,
                "protocol": "test accuracy after the last epoch"}, measured)


if __name__ == "__main__":
    common.main_guard(main)
