"""Experiment 9 — model selection: grid vs random search over (η, λ) at an equal budget; early stopping.

The network [784, 30, 10] (sigmoid, cross-entropy on sigmoid outputs, SGD, mini-batches of 10, L2 penalty
λ/(2n)·Σw²) — network2's — on 10,000 training images with a 10,000-image validation set. Both searches train
16 configurations for the same number of epochs as one compiled vmapped program each
(`jaxnets.grid_search` / `random_search`): a 4×4 grid η ∈ {0.01, 0.1, 1, 10} × λ ∈ {0.01, 0.1, 1,
10} vs 16 log-uniform draws from the same box. Selection by validation accuracy; the selected network's test
accuracy is reported (its params at its best epoch). Then early stopping (`EarlyStopping(patience=5,
monitor="val_accuracy")`) trains the winner for up to 100 epochs and stops when validation accuracy has not
improved for 5 epochs (the book's "no-improvement-in-n" rule), restoring the best epoch's params.
"""
from __future__ import annotations

import jax
import numpy as np

import jaxnets
from jaxnets import losses, models, optim
from jaxnets.sweeps import grid_search, loguniform, random_search

from experiments import common

CLAIM = ("Random search finds (η, λ) at least as good as grid search for the same budget; early stopping halts "
         "near the best validation epoch")


def main(argv=None):
    run = common.start(9, "e09_model_selection", CLAIM, argv)
    ds, ds_name = common.image_data()
    train, val, test = common.splits(ds, n_val=run.size(10_000, 200), n_train=run.size(10_000, 300),
                                     n_test=run.size(None, 300), seed=run.seed)
    n = train[0].shape[0]
    model, loss = models.mlp([common.n_inputs(ds), 30, 10], "sigmoid"), losses.sigmoid_cross_entropy
    epochs = run.size(10, 1)
    key = jax.random.key(run.seed)
    common_args = dict(epochs=epochs, batch_size=10, key=key, val_data=val, monitor="val_accuracy", progress=False,
                       penalty=lambda hp: losses.l2(hp["lmbda"], n))
    make_opt = lambda hp: optim.sgd(hp["learning_rate"])  # noqa: E731
    grid_vals = run.size([0.01, 0.1, 1.0, 10.0], [0.1, 1.0])
    grid = grid_search(model, loss, make_opt, train, grid={"learning_rate": grid_vals, "lmbda": grid_vals},
                       **common_args)
    rand = random_search(model, loss, make_opt, train, space={"learning_rate": loguniform(0.01, 10.0),
                                                              "lmbda": loguniform(0.01, 10.0)},
                         n_trials=len(grid), seed=run.seed, **common_args)
    searches = {}
    for name, res in (("grid", grid), ("random", rand)):
        test_acc = jaxnets.evaluate(model, loss, res.best_params, res.best_state, test)["accuracy"]
        searches[name] = {"configs": res.configs, "val_accuracy": [r["val_accuracy"] for r in res.rows],
                          "best_config": res.best_config, "best_val_accuracy": res.best_row["val_accuracy"],
                          "best_epoch": res.best_row["best_epoch"], "test_accuracy_of_best": test_acc,
                          "seconds": res.seconds, "table": res.table(sort=True)}
        run.log(name, res.best_config, res.best_row["val_accuracy"], test_acc)
        res.to_csv(run.path(f"{name}.csv"))

    best = max(searches.values(), key=lambda s: s["best_val_accuracy"])["best_config"]
    stop = jaxnets.EarlyStopping(patience=5, monitor="val_accuracy")
    max_epochs = run.size(100, 3)
    result, curves = common.fit_tracked(model, loss, optim.sgd(best["learning_rate"]), train, epochs=max_epochs,
                                        batch_size=10, key=key, val=val, test=test,
                                        penalty=losses.l2(best["lmbda"], n), early_stopping=stop)
    restored = jaxnets.evaluate(model, loss, result.params, result.state, test)["accuracy"]
    early = {"config": best, "stopped_at_epoch": result.epochs_run, "best_epoch": result.best_epoch,
             "stop_reason": result.stop_reason, "test_accuracy_restored": restored,
             "peak_test": max(curves["test_accuracy"]), "curves": curves}
    run.log("early stopping", {k: v for k, v in early.items() if k != "curves"})
    jaxnets.plot_history(result.history, run.path("early_stopping.png"), best_epoch=result.best_epoch,
                         title=f"early stopping (patience 5) at η={best['learning_rate']:.3g}, λ={best['lmbda']:.3g}")
    run.figures.append(run.path("early_stopping.png").name)

    fig, axes = common.figure(ncols=3)
    seen = [100 * a for s in searches.values() for a in s["val_accuracy"] if a is not None]
    lo, hi = max(min(seen), max(seen) - 30), max(seen)  # colour range: the top 30 points
    for ax, (name, s) in zip(axes[0][:2], searches.items()):
        lr = [c["learning_rate"] for c in s["configs"]]
        lm = [c["lmbda"] for c in s["configs"]]
        acc = [100 * (a if a is not None else 0.0) for a in s["val_accuracy"]]
        sc = ax.scatter(lr, lm, c=acc, cmap="viridis", s=80, vmin=lo, vmax=hi)
        b = s["best_config"]
        ax.scatter([b["learning_rate"]], [b["lmbda"]], marker="*", s=300, facecolors="none", edgecolors="r",
                   label=f"best: val {100 * s['best_val_accuracy']:.2f} %, "
                         f"test {100 * s['test_accuracy_of_best']:.2f} %")
        ax.set_xscale("log")
        ax.set_yscale("log")
        fig.colorbar(sc, ax=ax, label="validation accuracy (%)")
        common.label(ax, f"{name} search, {len(s['configs'])} configurations × {epochs} epochs",
                     "learning rate η", "L2 strength λ")
    ax = axes[0][2]
    ep = common.epochs_axis(curves["val_accuracy"])
    ax.plot(ep, 100 * np.asarray(curves["val_accuracy"]), label="validation")
    ax.plot(ep, 100 * np.asarray(curves["test_accuracy"]), label="test")
    ax.axvline(result.best_epoch, color="gray", ls=":", label=f"best epoch {result.best_epoch}")
    common.label(ax, f"early stopping: stopped after epoch {result.epochs_run}", "epoch", "accuracy (%)")
    run.savefig(fig, "search")

    g, r = searches["grid"], searches["random"]
    measured = (f"{ds_name}, {len(grid)} configs each, {epochs} epochs: "
                f"grid best val {common.pct(g['best_val_accuracy'])} "
                f"(test {common.pct(g['test_accuracy_of_best'])}) at η={g['best_config']['learning_rate']:.3g}, "
                f"λ={g['best_config']['lmbda']:.3g}; random best val {common.pct(r['best_val_accuracy'])} (test "
                f"{common.pct(r['test_accuracy_of_best'])}) at η={r['best_config']['learning_rate']:.3g}, "
                f"λ={r['best_config']['lmbda']:.3g}. Early stopping: stopped at epoch {early['stopped_at_epoch']} "
                f"(best {early['best_epoch']}), test {common.pct(restored)} (peak {common.pct(early['peak_test'])})")
    run.finish({"dataset": ds_name, "n_train": n, "epochs": epochs, "searches": searches, "early_stopping": early,
                "protocol": "selection on validation accuracy; test accuracy of the selected params"}, measured)


if __name__ == "__main__":
    common.main_guard(main)
