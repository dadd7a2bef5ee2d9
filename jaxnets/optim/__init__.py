"""jaxnets.optim: optimizers as optax-compatible gradient transformations, written in jaxnets.

    tx = jaxnets.optim.adam(1e-3)                 # same name, arguments, defaults and state as optax.adam
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = jaxnets.optim.apply_updates(params, updates)

Building blocks compose with `chain`; a jaxnets transformation works inside `optax.chain` and an optax one inside
`jaxnets.optim.chain`. `parity(jaxnets_tx, optax_tx, params, grads_fn, steps)` checks a trajectory step by step
against optax. See docs/optimizers.md for the mapping from textbook formulas to arguments.
"""
from jaxnets.optim.aliases import adagrad, adam, adamw, rmsprop, sgd
from jaxnets.optim.base import (
    EmptyState,
    GradientTransformation,
    MaskedNode,
    MaskedState,
    apply_updates,
    chain,
    identity,
    init_empty_state,
    learning_rate_of,
    masked,
)
from jaxnets.optim.freeze import freeze, selective_transform, set_to_zero
from jaxnets.optim.plateau import ReduceLROnPlateauState, reduce_on_plateau
from jaxnets.optim.clipping import clip, clip_by_global_norm, global_norm
from jaxnets.optim.parity import ParityReport, parity, relative_difference
from jaxnets.optim.schedules import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_schedule,
    piecewise_constant_schedule,
    warmup_cosine_decay_schedule,
)
from jaxnets.optim.transforms import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    ScaleByScheduleState,
    TraceState,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_schedule,
    scale_by_stddev,
    trace,
)
from jaxnets.optim.weight_decay import WeightDecaySchedule, add_decayed_weights
from jaxnets.optim.names import NAMES, get

__all__ = [
    "EmptyState", "GradientTransformation", "MaskedNode", "MaskedState", "ParityReport", "ScaleByAdamState",
    "ScaleByRStdDevState", "ScaleByRStdDevWithCountState", "ScaleByRmsState", "ScaleByRmsWithCountState",
    "ScaleByRssState", "ScaleByScheduleState", "TraceState", "WeightDecaySchedule", "adagrad", "adam", "adamw",
    "add_decayed_weights", "apply_updates", "chain", "clip", "clip_by_global_norm", "constant_schedule",
    "cosine_decay_schedule", "exponential_decay", "global_norm", "identity", "init_empty_state", "join_schedules",
    "linear_schedule", "masked", "parity", "piecewise_constant_schedule", "relative_difference", "rmsprop",
    "scale", "scale_by_adam", "scale_by_learning_rate", "scale_by_rms", "scale_by_rss", "scale_by_schedule",
    "scale_by_stddev", "sgd", "trace", "warmup_cosine_decay_schedule", "get", "NAMES",
    "freeze", "selective_transform", "set_to_zero", "reduce_on_plateau", "ReduceLROnPlateauState", "learning_rate_of",
]
