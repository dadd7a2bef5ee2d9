"""`check_run`: the arguments of a training run checked once, into one frozen record, the `Run`.

    run = check_run("fit", model, "softmax_cross_entropy", "adam", (x, y), epochs=10, batch_size=32, key=key,
                    val_data=(xv, yv), loop="auto")
    outcome = engine.run(engine.Plan.of(run, lanes=None, hps={}))

`fit`, `fit_ensemble` and the sweeps (`grid_search`, `random_search`; `pretrain_layerwise` trains through `fit`)
call it first, and nothing else checks the arguments they share: each failure is a ValueError/TypeError naming
the argument and the fix, raised before anything compiles, with the same text whichever entry point was called.
Strings welcome at the public boundary are converted here, once: the loss and optimizer by name, `loop="auto"`
to the driver (`loops.resolve`: "scan" or "step"), `plateau="epoch"` to a flag of the `TrainConfig`,
`compute_dtype` to a `Policy`. A run is one of three kinds: one model (`key`, as `fit`), K members (`keys`, as
`fit_ensemble`) or the configurations of a sweep (`key` and `hp`: model, optimizer and penalty may then be
functions of the hyper-parameters, checked on the first configuration).

The record holds what to train (`build`, a `Builder`; `loss`), how (`config`, the `TrainConfig`; `epochs`), on
which data (`data`: `ArrayData` of device arrays or a `Stream`; `val`: (x, y) device arrays or None; `sample`:
the training arrays as given, or a stream's first batch; `input_shape`; `classification`), watching which monitor
(`rule`: the `EarlyStopping` or None; `monitor`: the column the best epoch is chosen on, or None; `keep_best`),
and how it starts (`keys`: one key or K stacked; `ts`: the initial `TrainState` of one model, None for lanes;
`sharding`: where a data-parallel run replicates its arrays).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from jaxnets.training import loops, validate
from jaxnets.training import trainable as trainable_leaves
from jaxnets.training.config import Builder, TrainConfig, train_config
from jaxnets.training.early_stopping import MONITORS, EarlyStopping
from jaxnets.training.evaluation import DEFAULT_CHUNK, check_chunk
from jaxnets.training.progress import shows_bar
from jaxnets.training.streaming import ArrayData, Stream, looks_like_arrays

PLATEAU_MODES = ("epoch", "step")


class Run(NamedTuple):
    """A checked training run (see the module docstring); `engine.Plan.of(run, ...)` makes the engine's plan."""

    build: Builder
    loss: Any
    config: TrainConfig
    data: Any
    val: Any
    classification: bool
    input_shape: tuple
    rule: Optional[EarlyStopping]
    monitor: Optional[str]
    keep_best: bool
    epochs: int
    keys: Any
    ts: Any = None
    sharding: Any = None
    sample: tuple = ()

    @property
    def streamed(self) -> bool:
        """True when the training data is a stream of batches (one model only)."""
        return isinstance(self.data, Stream)


def check_run(where: str, model, loss, optimizer, train_data, *, epochs, batch_size, key=None, keys=None,
              hp: Optional[dict] = None, static=(), val_data=None, gradients="manual", penalty=None,
              early_stopping=None, monitor: Optional[str] = None, loop="auto", drop_last=False, shuffle=True,
              augment=None, compute_dtype=None, loss_scale=None, eval_batch_size=DEFAULT_CHUNK, plateau="epoch",
              steps_per_epoch=None, mesh=None, params=None, state=None, trainable=None, progress=False) -> Run:
    """Check every argument of a run and return its `Run`.

    where: the entry point named in errors ("fit", "fit_ensemble", "grid_search/random_search"). key: one PRNG
    key (one model, or every configuration of a sweep); keys: K stacked keys (ensemble members; then `key` is
    None). hp / static: a sweep's first configuration, numeric values and structural (name, value) pairs; with
    `hp`, model / optimizer / penalty may each be a function of the hyper-parameters. monitor: the column a
    sweep selects on without early stopping (default "val_loss" with val_data, else "train_loss"). params /
    state / trainable / mesh / steps_per_epoch (a stream) / progress (a bar's step reports): one model only.
    The other arguments are those of `jaxnets.fit`.
    """
    swept = hp is not None
    lanes = swept or keys is not None
    model, optimizer, penalty = _checked_parts(where, model, optimizer, penalty, swept)
    loss = validate.check_loss(loss, f"{where}(model, loss, optimizer, train_data)")
    validate.check_gradients(gradients)
    if plateau not in PLATEAU_MODES:
        raise ValueError(f"plateau must be one of {PLATEAU_MODES} (when a reduce-on-plateau transformation is judged: "
                         f"once per epoch on the monitored value, or on every batch's cost), got {plateau!r}")
    epochs = validate.positive_int(epochs, "epochs")
    if keys is not None:   # K members, member k initialised from keys[k]: the first one stands for them all
        keys = validate.check_keys(keys)
        key0 = keys[0]
    else:
        keys = key0 = validate.check_key(key)
    mesh = validate.check_mesh(mesh)
    validate.check_callable(augment, "augment", "fn(key, xb) -> xb")
    loops.check_loop(loop)
    policy = validate.policy_of(compute_dtype, loss_scale)
    check_chunk(eval_batch_size, "eval_batch_size")
    for flag, name in ((drop_last, "drop_last"), (shuffle, "shuffle")):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError("early_stopping must be an EarlyStopping(patience=...) or None")
    if early_stopping is None and monitor is not None and monitor not in MONITORS:
        raise ValueError(f"monitor must be one of {MONITORS}, got {monitor!r}")

    source, x, y, batch_size = _checked_data(train_data, batch_size, steps_per_epoch, streams=not lanes)
    streamed = isinstance(source, Stream)
    validate.warn_if_channels_first(x, "train_data")
    if swept:
        build = Builder(model, optimizer, penalty, tuple(dict(static).items()))
        out_shape = _swept_output_shape(build, hp, key0, x)
        model = build(hp).model
        params, state = validate.init_params(model, key0, x)
    else:
        if params is None or state is None:
            init_p, init_s = validate.init_params(model, key0, x)
            params = init_p if params is None else params
            state = init_s if state is None else state
        validate.check_params_like(model, params, state, x.shape[1:], where)
        optimizer, penalty = trainable_leaves.apply(trainable_leaves.resolve(trainable, params), optimizer, penalty)
        trainable_leaves.warn_raw_gradients(optimizer, params, where)
        build = Builder(model, optimizer, penalty)
        out_shape = validate.output_shape(model, params, state, x)
    if gradients == "manual":
        validate.check_backward_structure(model, params, state, x, key0, batch_size or x.shape[0], f"in {where}")
    validate.check_targets(y, out_shape, "train_data", loss)
    classification = validate.is_classification(y, out_shape)
    val = None
    if val_data is not None:
        xv, yv = validate.check_arrays(val_data, "val_data")
        validate.check_same_features(x, xv)
        validate.check_targets(yv, out_shape, "val_data", loss)
        val = (xv, yv)
    rule = early_stopping
    monitor = _monitor(rule, monitor, val is not None, classification, swept)
    sharding = None
    if mesh is not None:
        from jaxnets.parallel import check_batches, replicated

        if not streamed:
            check_batches(mesh, x.shape[0], batch_size, drop_last)  # every batch, the last one too, splits
        sharding = replicated(mesh)
    if streamed and loop == "scan":
        raise ValueError("loop='scan' needs (x, y) arrays on the device; streamed batches run with loop='step' "
                         "(or 'auto')")
    driver = "step" if streamed else loops.resolve(loop, model, params, state, x.shape[1:], x.dtype)
    shows = not lanes and driver == "scan" and shows_bar(progress) and jax.process_index() == 0
    config = train_config(batch_size, gradients, drop_last=drop_last, shuffle=shuffle, augment=augment, mesh=mesh,
                          loop=driver, progress_every=_progress_every(x.shape[0], batch_size) if shows else 0,
                          policy=policy, eval_batch_size=eval_batch_size, plateau=plateau)
    data = source if streamed else ArrayData(*jax.device_put((jnp.asarray(x), jnp.asarray(y)), sharding))
    if val is not None:
        val = jax.device_put((jnp.asarray(val[0]), jnp.asarray(val[1])), sharding)
    # the cost at the initial params must be finite; for one model the same program builds its TrainState
    ts = validate.check_initial_cost(model, loss, params, state, x, y, None if lanes else optimizer)
    return Run(build=build, loss=loss, config=config, data=data, val=val, classification=classification,
               input_shape=tuple(x.shape[1:]), rule=rule, monitor=monitor,
               keep_best=swept or (rule is not None and rule.restore_best), epochs=epochs, keys=keys, ts=ts,
               sharding=sharding, sample=(x, y))


def _checked_parts(where: str, model, optimizer, penalty, swept: bool):
    """(model, optimizer, penalty) checked; in a sweep an entry may be a function of the hyper-parameters (a
    Layer or GradientTransformation is a tuple of functions, never such a function), checked when it is built."""
    def of_hp(entry):
        return swept and callable(entry) and not isinstance(entry, tuple)

    model = model if of_hp(model) else validate.check_model(model, where)
    optimizer = optimizer if of_hp(optimizer) else validate.check_optimizer(optimizer, where)
    penalty = penalty if of_hp(penalty) else validate.check_penalty(penalty, where)
    return model, optimizer, penalty


def _checked_data(train_data, batch_size, steps_per_epoch, streams: bool):
    """(arrays or a Stream, x, y, batch_size): for arrays x, y are the data, for a stream its first batch.
    Lanes (`streams=False`) train on arrays only."""
    if not streams or looks_like_arrays(train_data):
        x, y = validate.check_arrays(train_data, "train_data")
        batch_size = validate.positive_int(batch_size, "batch_size", "the number of examples per mini-batch")
        if batch_size > x.shape[0]:
            raise ValueError(f"batch_size {batch_size} is larger than the {x.shape[0]} training examples; use "
                             f"batch_size <= {x.shape[0]}")
        if steps_per_epoch is not None:
            raise ValueError("steps_per_epoch bounds a stream of batches; with (x, y) arrays an epoch is one pass "
                             "over them (drop it, or pass the batches as a stream)")
        return "arrays", x, y, batch_size
    if isinstance(train_data, (tuple, list)) and len(train_data) == 2 and not isinstance(train_data[0], (tuple, list)):
        if all(hasattr(part, "__iter__") and not hasattr(part, "shape") for part in train_data):
            raise TypeError("train_data is a pair of iterables (inputs, targets); a stream yields (xb, yb) pairs: pass "
                            "zip(x_batches, y_batches), or a function returning them")
        validate.check_arrays(train_data, "train_data")  # raises the array errors (e.g. a 1-D x)
    if steps_per_epoch is not None:
        steps_per_epoch = validate.positive_int(steps_per_epoch, "steps_per_epoch")
    stream = Stream(train_data, steps_per_epoch)
    x, y = validate.check_arrays(stream.first, "train_data (epoch 1, batch 1)")   # checked exactly like arrays
    if batch_size is not None and batch_size != x.shape[0]:
        raise ValueError(f"batch_size={batch_size} but the stream's batches have {x.shape[0]} examples; streamed "
                         "batches bring their own size (leave batch_size=None)")
    return stream, x, y, None


def _swept_output_shape(build: Builder, hp: dict, key, x) -> tuple:
    """The output shape of a sweep's first configuration, with errors that name the hyper-parameters."""
    from jaxnets.training.programs import output_shape

    try:
        return output_shape(build, hp, key, x.shape[1:], x.dtype)
    except KeyError as err:
        raise ValueError(f"building the model/optimizer/penalty asked for the hyper-parameter {err}, which this run "
                         f"does not define: it has {sorted({**dict(build.static), **hp})} (the grid/space keys); "
                         "use one of those names") from None
    except (ValueError, TypeError, IndexError, jax.errors.ConcretizationTypeError) as err:
        raise ValueError(f"building the model/optimizer/penalty and running it on inputs of per-example shape "
                         f"{tuple(x.shape[1:])} failed: {err}\nNumeric hyper-parameters arrive as traced arrays; if "
                         "one must be a Python value (a layer size, a flag), list it in static=(...)") from err


def _monitor(rule, monitor, has_val: bool, classification: bool, swept: bool) -> Optional[str]:
    """The column the best epoch is chosen on: early stopping's monitor, else a sweep's `monitor`, else val_loss
    with validation data, else train_loss for a sweep (which must select) and None otherwise; checked against the
    data."""
    if rule is not None:
        monitor = rule.monitor
    elif monitor is None:
        monitor = "val_loss" if has_val else ("train_loss" if swept else None)
    if monitor is None:
        return None
    if monitor.startswith("val") and not has_val:
        if rule is not None:
            raise ValueError(f"early stopping monitors {monitor!r} but no val_data was given; pass "
                             "val_data=(x_val, y_val) or EarlyStopping(..., monitor='train_loss')")
        raise ValueError(f"selecting on {monitor!r} but no val_data was given; pass val_data=(x_val, y_val) or "
                         "monitor='train_loss'")
    if monitor.endswith("accuracy") and not classification:
        raise ValueError(f"{'early stopping' if rule is not None else 'selecting'} on accuracy needs classification "
                         "targets; monitor a loss instead")
    return monitor


def _progress_every(n: int | None, batch_size: int | None) -> int:
    """How often a scanned epoch reports its steps to the bar: about 50 times per epoch."""
    if not n or not batch_size:
        return 0
    return max(1, (n // batch_size) // 50)
