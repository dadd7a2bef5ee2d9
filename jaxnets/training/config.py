"""What a training run is made of, as two frozen, hashable values: the `Spec` (what to train) and the
`TrainConfig` (how). Together with the loss they are the cache key of every compiled program, so two `fit`
calls with equal specs and configs share one compiled epoch.

    build = Builder(model, optimizer, penalty)          # build(hp) -> Spec, hp a dict of (traced) numbers
    config = train_config(32, "manual", loop="scan")      # the one place a TrainConfig is made

A `Builder` entry may be the object itself or a function of the hyper-parameters `hp` (called inside the
traced program, so numeric entries are traced arrays: a sweep over learning rates is one compiled program).
`static` holds structural hyper-parameters (Python values) passed to the functions too.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import jax.numpy as jnp

LOOPS = ("scan", "step")


class Spec(NamedTuple):
    """A model (Layer), an optimizer (optax-protocol GradientTransformation) and a penalty (or None)."""

    model: Any
    optimizer: Any
    penalty: Any = None


class Builder(NamedTuple):
    """`builder(hp) -> Spec`: model / optimizer / penalty, each the object or a function of {**static, **hp}."""

    model: Any
    optimizer: Any
    penalty: Any = None
    static: tuple = ()

    def __call__(self, hp: dict) -> Spec:
        full = {**dict(self.static), **hp}

        def resolve(entry):
            # a Layer or GradientTransformation is a tuple of functions, never called; a bare function is hp -> x
            return entry(full) if callable(entry) and not isinstance(entry, tuple) else entry

        return Spec(resolve(self.model), resolve(self.optimizer), resolve(self.penalty))


class Policy(NamedTuple):
    """Mixed precision: master params, optimizer state and layer state (BatchNorm statistics) stay in their own
    dtype (float32); the forward and backward passes run with params and inputs cast to `compute_dtype`; the
    loss and its output gradient are computed in float32; gradients come back to the params' dtype before the
    optimizer sees them. `loss_scale` multiplies the output gradient before the backward pass and divides the
    gradients after it (for float16, whose small gradients would otherwise flush to zero)."""

    compute_dtype: Any
    loss_scale: float = 1.0

    @property
    def name(self) -> str:
        return jnp.dtype(self.compute_dtype).name


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train. batch_size: B (None for streamed batches, which bring their own); gradients: "manual" or
    "autodiff"; drop_last: skip the N mod B remainder (else one smaller step); shuffle: reshuffle every epoch;
    augment: `fn(key, xb) -> xb` per batch; mesh: data-parallel `jax.sharding.Mesh`; loop: "scan" (the epoch as
    one `lax.scan`) or "step" (one jitted step per mini-batch); donate: let the compiled programs reuse the
    train state's buffers; progress_every: report progress every k steps from inside a scanned epoch (0: off);
    policy: mixed precision (`Policy`) or None; eval_batch_size: chunk size of evaluation passes;
    plateau_per_step: a reduce-on-plateau state in the optimizer is judged on every batch's cost (optax's own use)
    when True, else the steps only apply its scale and the engine judges it once per epoch on the monitored value
    (`fit`'s default, as Keras's ReduceLROnPlateau)."""

    batch_size: Optional[int]
    gradients: str = "manual"
    drop_last: bool = False
    shuffle: bool = True
    augment: Optional[Callable] = None
    mesh: Any = None
    loop: str = "scan"
    donate: bool = True
    progress_every: int = 0
    policy: Optional[Policy] = None
    eval_batch_size: Optional[int] = 1024
    plateau_per_step: bool = True

    def __post_init__(self):
        if self.loop not in LOOPS:
            raise ValueError(f"TrainConfig(loop): one of {LOOPS}, got {self.loop!r}")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)



def train_config(batch_size: Optional[int], gradients: str = "manual", *, drop_last: bool = False,
                 shuffle: bool = True, augment: Optional[Callable] = None, mesh: Any = None, loop: str = "scan",
                 progress_every: int = 0, policy: Optional[Policy] = None, eval_batch_size: Optional[int] = 1024,
                 plateau: str = "step") -> TrainConfig:
    """The `TrainConfig` of checked values, made here and nowhere else (`jaxnets.training.run.check_run` for
    `fit`, ensembles and sweeps; the building blocks `make_step`, `make_epoch`). plateau: "epoch" (the engine
    judges a reduce-on-plateau transformation once per epoch) or "step" (on every batch's cost), the public
    string turned into `plateau_per_step`."""
    return TrainConfig(batch_size=batch_size, gradients=gradients, drop_last=drop_last, shuffle=shuffle,
                       augment=augment, mesh=mesh, loop=loop, progress_every=progress_every, policy=policy,
                       eval_batch_size=eval_batch_size, plateau_per_step=plateau == "step")
