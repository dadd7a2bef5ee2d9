"""Vectorised research: ensembles and hyper-parameter sweeps as one `vmap`-ed, compiled training program,
greedy layer-wise pretraining, and gradient diagnostics.

    res = fit_ensemble(model, loss, optimizer, (x, y), epochs=10, batch_size=32, keys=jax.random.split(key, 16))
    vote(model, res.params, res.state, x_test, how="plurality")          # or how="mean"
    sweep = grid_search(model, loss, lambda hp: optim.sgd(hp["learning_rate"]), (x, y), val_data=(xv, yv),
                        grid={"learning_rate": [0.01, 0.1, 1.0]}, epochs=10, batch_size=32, key=key)
    sweep = random_search(..., space={"learning_rate": loguniform(1e-3, 1.0)}, n_trials=32, ...)
    pre = pretrain_layerwise([64, 32, 16, 10], x, y=labels, epochs=10, key=key)
    speed = learning_speed(model, loss, optimizer, (x, y), epochs=30, batch_size=10, key=key)

Modules: `ensemble` (fit_ensemble, vote, ensemble_accuracy), `sweep` (grid_search, random_search), `space`
(search spaces), `results` (SweepResult), `pretrain` (Autoencoder, pretrain_layerwise), `diagnostics`
(learning speed, dead ReLUs, per-example gradients), `layers` (TracedDropout), `_lanes` (the shared engine).
Augmentation lives in `jaxnets.data.augment`.
"""
from jaxnets.experiment.diagnostics import (LearningSpeed, dead_relu_fraction, gradient_norms, layer_gradient_norms,
                                            layer_names, learning_speed, make_diagnostic_epoch, per_example_grads,
                                            record_gradient_norms)
from jaxnets.experiment.ensemble import (EnsembleResult, combine, ensemble_accuracy, fit_ensemble, member_outputs,
                                         vote)
from jaxnets.experiment.layers import TracedDropout
from jaxnets.experiment.pretrain import Autoencoder, LayerReport, PretrainResult, encoder, pretrain_layerwise
from jaxnets.experiment.results import SweepResult
from jaxnets.experiment.space import choice, loguniform, randint, uniform
from jaxnets.experiment.sweep import grid_search, random_search, run_configs

__all__ = [
    "fit_ensemble", "EnsembleResult", "vote", "combine", "member_outputs", "ensemble_accuracy",
    "grid_search", "random_search", "run_configs", "SweepResult", "uniform", "loguniform", "randint", "choice",
    "Autoencoder", "encoder", "pretrain_layerwise", "PretrainResult", "LayerReport",
    "learning_speed", "LearningSpeed", "make_diagnostic_epoch", "record_gradient_norms", "gradient_norms",
    "layer_gradient_norms", "layer_names", "dead_relu_fraction", "per_example_grads", "TracedDropout",
]
