"""Hyper-parameter search: every configuration a lane of the training engine, numeric hyper-parameters traced.

    sweep = grid_search(model, loss, lambda hp: optim.sgd(hp["learning_rate"]), (x, y), val_data=(xv, yv),
                        grid={"learning_rate": [0.01, 0.1, 1.0]}, epochs=10, batch_size=32, key=key)
    sweep = random_search(..., space={"learning_rate": loguniform(1e-3, 1.0)}, n_trials=32, ...)
    print(sweep); sweep.best_config; sweep.result(sweep.best_index); sweep.to_csv("sweep.csv")

Modules: `search` (grid_search, random_search, run_configs), `space` (uniform, loguniform, randint, choice),
`results` (SweepResult).
"""
from jaxnets.sweeps.results import SweepResult
from jaxnets.sweeps.search import grid_search, random_search, run_configs
from jaxnets.sweeps.space import choice, loguniform, randint, uniform

__all__ = ["grid_search", "random_search", "run_configs", "SweepResult", "uniform", "loguniform", "randint", "choice"]
