"""Experiment 10 — universal approximation (Nielsen ch. 4) and the perceptron's decision table (ch. 1).

(a) One hidden layer of sigmoid neurons with a linear output, y = Σⱼ vⱼ σ(wⱼ x + bⱼ) + c, fitted to sin x on
    [−π, π] (quadratic cost, full-batch Adam). As the width grows the worst-case error on a dense grid falls:
    "a network with a single hidden layer can approximate any continuous function to any desired precision".
(b) The perceptron as a decision maker: weights (3, 1, 5) on (friends go, team is winning, ticket is cheap) and
    threshold 3 (`jaxnets.neurons.perceptron_params([3, 1, 5], 3)`) — the table of all eight situations.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxnets
from jaxnets import losses, models, neurons, optim
from jaxnets.training import init_train_state, make_step

from experiments import common

CLAIM = ("One hidden sigmoid layer approximates sin on [−π, π] ever better as it widens; a perceptron "
         "(weights 3,1,5, threshold 3) implements the football decision table")


def fit_width(width, x, y, steps, key):
    model = models.mlp([1, width, 1], activation="sigmoid")
    tx = optim.adam(0.01)
    step = make_step(model, losses.quadratic, tx)

    @jax.jit
    def train(k):
        ts = init_train_state(model, tx, k, (1,))

        def body(ts, i):
            ts, m = step(ts, x, y, None)
            return ts, m["loss"]

        return lax.scan(body, ts, jnp.arange(steps))

    ts, cost = train(key)
    return model, ts, np.asarray(cost)


def football():
    params = neurons.perceptron_params([3, 1, 5], threshold=3)
    cases = np.array(list(itertools.product([0, 1], repeat=3)), dtype=np.float32)
    go = np.asarray(neurons.perceptron_predict(params, jnp.asarray(cases)))
    rows = [{"friends_go": int(c[0]), "team_winning": int(c[1]), "ticket_cheap": int(c[2]),
             "weighted_sum": int(np.dot(c, [3, 1, 5])), "go": int(g)} for c, g in zip(cases, go)]
    return rows


def main(argv=None):
    run = common.start(10, "e10_universal_approximation", CLAIM, argv)
    x = jnp.linspace(-jnp.pi, jnp.pi, 256)[:, None]
    y = jnp.sin(x)
    grid = jnp.linspace(-jnp.pi, jnp.pi, 2001)[:, None]
    widths = run.size([1, 2, 3, 5, 10, 20, 50], [2, 10])
    steps = run.size(20_000, 500)
    fits = {}
    for w in widths:
        model, ts, cost = fit_width(w, x, y, steps, jax.random.key(run.seed))
        pred = np.asarray(jaxnets.predict(model, ts.params, ts.state, grid))[:, 0]
        err = np.abs(pred - np.sin(np.asarray(grid[:, 0])))
        fits[w] = {"max_abs_error": float(err.max()), "rms_error": float(np.sqrt(np.mean(err ** 2))),
                   "final_cost": float(cost[-1]), "prediction": pred, "cost": cost[::max(1, steps // 200)]}
        run.log(f"width {w}: max |error| {err.max():.4f}")
    table = football()

    fig, axes = common.figure(ncols=3)
    g = np.asarray(grid[:, 0])
    axes[0][0].plot(g, np.sin(g), "k", lw=3, alpha=0.3, label="sin x")
    for w, r in fits.items():
        axes[0][0].plot(g, r["prediction"], label=f"{w} hidden neurons")
    common.label(axes[0][0], "one hidden sigmoid layer fitting sin x", "x (radians)", "network output")
    axes[0][1].plot(list(fits), [r["max_abs_error"] for r in fits.values()], marker="o", label="max |error|")
    axes[0][1].plot(list(fits), [r["rms_error"] for r in fits.values()], marker="s", label="RMS error")
    axes[0][1].set_xscale("log")
    common.label(axes[0][1], f"approximation error after {steps} Adam steps", "hidden neurons (width)",
                 "error on 2,001 grid points", log=True)
    ax = axes[0][2]
    ax.axis("off")
    cells = [[r["friends_go"], r["team_winning"], r["ticket_cheap"], r["weighted_sum"], "go" if r["go"] else "stay"]
             for r in table]
    tab = ax.table(cellText=cells, colLabels=["friends", "winning", "cheap", "3f+t+5c", "> 3 ?"], loc="center")
    tab.scale(1, 1.4)
    ax.set_title("perceptron w = (3, 1, 5), threshold 3: go to the match?")
    run.savefig(fig, "fits")

    goes = [(r["friends_go"], r["team_winning"], r["ticket_cheap"]) for r in table if r["go"]]
    measured = ("sin fit, max |error| by width: " + ", ".join(f"{w}: {r['max_abs_error']:.3g}" for w, r in fits.items())
                + f"; perceptron goes in {len(goes)}/8 situations: {goes}")
    run.finish({"widths": {str(w): r for w, r in fits.items()}, "steps": steps, "football_table": table}, measured)


if __name__ == "__main__":
    common.main_guard(main)
