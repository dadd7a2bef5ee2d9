"""Which driver runs an epoch: "scan" (the whole epoch as one compiled `lax.scan`) or "step" (one jitted step per
mini-batch, called from Python). `loop="auto"` picks by measurement (benchmarks/README.md, "Drivers"):

- XLA:CPU runs convolutions inside a loop body far slower than at top level (jax-ml/jax#12868): on the 2-core
  CPU a `models.cnn2` epoch took 10–20× longer under `lax.scan` than as a loop of jitted steps. So a model whose
  forward pass contains a convolution trains with "step" on the CPU backend.
- Everything else (MLPs on CPU, every model on GPU/TPU) uses "scan", which saves the per-step dispatch.

A convolution is found by looking at the model's computation, not its layers' names: the forward pass is traced
once (`jax.make_jaxpr`, no compute) and searched for `conv_general_dilated`, so a user's own conv layer counts.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.core import Ctx
from jaxnets.training.config import LOOPS

LOOP_CHOICES = ("auto",) + LOOPS
_SLOW_IN_LOOPS = ("conv_general_dilated",)


def _primitives(jaxpr, found: set) -> None:
    for eqn in jaxpr.eqns:
        found.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in (value if isinstance(value, (list, tuple)) else (value,)):
                # a Jaxpr (remat, shard_map) or a ClosedJaxpr (pjit, scan, cond) holding one
                inner = sub if hasattr(sub, "eqns") else getattr(sub, "jaxpr", None)
                if inner is not None:
                    _primitives(inner if hasattr(inner, "eqns") else inner.jaxpr, found)


def primitives_of(model, params, state, input_shape, dtype=jnp.float32) -> set:
    """Names of the primitives in `model`'s evaluation-mode forward pass on one example (traced, not run)."""
    x = jax.ShapeDtypeStruct((1,) + tuple(input_shape), dtype)
    closed = jax.make_jaxpr(lambda p, s, xb: model.forward(p, s, xb, Ctx(False, None))[0])(params, state, x)
    found: set = set()
    _primitives(closed.jaxpr, found)
    return found


def check_loop(loop) -> str:
    if loop not in LOOP_CHOICES:
        raise ValueError(f"loop={loop!r}: choose 'auto' (the measured-faster driver), 'scan' (the epoch as one "
                         "compiled lax.scan) or 'step' (one jitted step per mini-batch)")
    return loop


def resolve(loop: str, model, params, state, input_shape, dtype=jnp.float32, backend: str | None = None) -> str:
    """"scan" or "step" for `loop` ("auto" decides as the module docstring says)."""
    check_loop(loop)
    if loop != "auto":
        return loop
    backend = jax.default_backend() if backend is None else backend
    if backend != "cpu":
        return "scan"
    slow = primitives_of(model, params, state, input_shape, dtype) & set(_SLOW_IN_LOOPS)
    return "step" if slow else "scan"
