"""The compiled programs of a training configuration, memoised on (builder, loss, config, data size, lanes).

    p = programs(build, loss, config, n=60000, lanes=None)     # one model
    p = programs(build, loss, config, n=60000, lanes=16)       # 16 lanes: everything vmapped over axis 0

`driver` trains an epoch (`jaxnets.training.drivers`: the scan or the step driver); `evaluate` the evaluation pass (`jaxnets.training.evaluation.Evaluator`) on
validation data; `judge(ts, hp, value)` one reduce-on-plateau judgement on the monitored value (once per epoch);
`observe(ts, hp)` the learning rate of the epoch's last update and the plateau scale (history columns "lr",
"lr_scale"; {} when neither can be read). The frozen `TrainConfig`, the `Builder` (model, optimizer, penalty) and the loss are the cache key,
compared by value (`jaxnets.memo`): equal configurations share compiled programs across `fit` calls however they
were built — "adam" by name twice, or a model made afresh — and a configuration holding a list, dict or NumPy
array is compiled without memoising.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.core import Ctx
from jaxnets.memo import memoised
from jaxnets.optim import plateau
from jaxnets.optim.base import learning_rate_of
from jaxnets.training.config import Builder, TrainConfig
from jaxnets.training import drivers
from jaxnets.training.evaluation import Evaluator


class Programs(NamedTuple):
    driver: Any
    evaluate: Any
    init: Any
    judge: Any
    observe: Any


def _judge_one(build: Builder):
    def judge(ts, hp, value):
        """One update with zero gradients and the monitored `value`, of which only the plateau states are kept."""
        spec = build(hp)
        zeros = jax.tree_util.tree_map(jnp.zeros_like, ts.params)
        _, judged = spec.optimizer.update(zeros, ts.opt_state, ts.params, value=value.astype(jnp.float32))
        return ts._replace(opt_state=plateau.take(ts.opt_state, judged))

    return judge


def _observe_one(build: Builder):
    def observe(ts, hp):
        spec = build(hp)
        out = {}
        rate = learning_rate_of(spec.optimizer)
        if rate is None:
            rate = injected_learning_rate(ts.opt_state)
        elif callable(rate):
            rate = rate(jnp.maximum(ts.step - 1, 0))
        if plateau.has_plateau(ts.opt_state):
            out["lr_scale"] = plateau.scale_of(ts.opt_state)
        if rate is not None:
            out["lr"] = jnp.asarray(rate, jnp.float32) * plateau.scale_of(ts.opt_state)
        return out

    return observe


def injected_learning_rate(opt_state):
    """The learning rate an `optax.inject_hyperparams` state holds (`hyperparams["learning_rate"]`), or None."""
    for node in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda n: hasattr(n, "hyperparams")):
        rate = getattr(node, "hyperparams", {}).get("learning_rate") if hasattr(node, "hyperparams") else None
        if rate is not None:
            return rate
    return None


@memoised(maxsize=32)
def _make(build: Builder, loss, config: TrainConfig, n, lanes, input_shape) -> Programs:
    driver = drivers.make(build, loss, config, n, bool(lanes))
    evaluate = Evaluator(build, loss, config.eval_batch_size, config.loop, bool(lanes))

    def init_one(hp, key):
        from jaxnets.training.state import TrainState

        spec = build(hp)
        _, params, state = spec.model.init(key, tuple(input_shape))
        return TrainState.create(params, state, spec.optimizer)

    init = jax.jit(jax.vmap(init_one) if lanes else init_one)
    judge, observe = _judge_one(build), _observe_one(build)
    judge = jax.jit(jax.vmap(judge) if lanes else judge)
    observe = jax.jit(jax.vmap(observe) if lanes else observe)
    return Programs(driver, evaluate, init, judge, observe)


def programs(build: Builder, loss, config: TrainConfig, n: int | None, lanes: int | None, input_shape) -> Programs:
    """The memoised `Programs` of this configuration (see the module docstring)."""
    return _make(build, loss, config, n, lanes, tuple(input_shape))


def output_shape(build: Builder, hp0: dict, key, input_shape, dtype) -> tuple:
    """The per-example output shape of `build(hp0).model` (abstract evaluation of init and one forward)."""
    x = jax.ShapeDtypeStruct((1,) + tuple(input_shape), dtype)

    def run(hp, k, xb):
        spec = build(hp)
        _, params, state = spec.model.init(k, tuple(input_shape))
        return spec.model.forward(params, state, xb, Ctx(False, None))[0]

    return tuple(jax.eval_shape(run, hp0, key, x).shape[1:])


__all__ = ["Programs", "programs", "output_shape"]
