"""The lanes engine: K training runs ("lanes") advanced together by one vmapped, jitted epoch program.

A lane is one configuration: hyper-parameters `hp` (a dict of scalars, traced inside the program), a PRNG key
and its per-lane bookkeeping. `build(hp) -> LaneSpec(model, optimizer, penalty)` is called *inside* the traced
function, so numeric hyper-parameters (learning rate, momentum, L2 λ, a dropout rate, an init scale) become
traced arrays and all K lanes share one compiled program:

    init:  carry_k = LaneCarry(TrainState(model.init(key_k, input_shape)), ...)         vmapped over k
    epoch: carry_k, metrics_k = lane_epoch(carry_k, hp_k, key_k, e, x, y, xv, yv)          vmapped over k

`lane_epoch` runs the training engine's `make_epoch` with the epoch key `fold_in(key_k, e)` (e 0-based, the
same keys as `jaxnets.fit`), evaluates on the validation data with `make_eval`, and updates early stopping
inside the program: a lane whose monitored value has not improved for `patience` epochs, or whose epoch
diverged (NaN/Inf cost or gradient), is *stopped* — its TrainState is frozen by `jnp.where` from then on while
the other lanes keep training. The best params/state (by the monitored value) are kept per lane.
"""
from __future__ import annotations

import functools
import time
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import Ctx
from jaxnets.training.epoch import make_epoch
from jaxnets.training.evaluation import make_eval
from jaxnets.training._cache import cached
from jaxnets.training.history import History
from jaxnets.training.state import TrainState


class LaneSpec(NamedTuple):
    """What `build(hp)` returns: a Layer, an optax-protocol GradientTransformation, a Penalty or None."""

    model: Any
    optimizer: Any
    penalty: Any = None


class LaneCarry(NamedTuple):
    """Per-lane training state (stacked on axis 0 across lanes). best_score is the monitored value, negated
    for accuracies so that lower is better (inf before the first epoch); best_epoch is 1-based (0: none);
    wait counts epochs without improvement; stopped: the lane no longer trains (early stopping or divergence);
    epochs_run counts completed finite epochs."""

    ts: TrainState
    best_params: Any
    best_state: Any
    best_score: jax.Array
    best_epoch: jax.Array
    wait: jax.Array
    stopped: jax.Array
    diverged: jax.Array
    epochs_run: jax.Array


class LanesOutcome(NamedTuple):
    """carry: the final LaneCarry of all K lanes (device arrays, axis 0 = lane); histories: one History per
    lane (rows of the completed epochs, as `fit` writes them); early: bool (K,) stopped by patience;
    epoch_seconds: wall time of each epoch call (all lanes of a chunk together; the first includes compile);
    seconds: total wall time."""

    carry: LaneCarry
    histories: list
    early: np.ndarray
    epoch_seconds: list
    seconds: float


def _resolve(obj, hp):
    return obj(hp) if callable(obj) else obj


def builder(model, optimizer, penalty=None, static_values=None) -> Callable:
    """`build(hp) -> LaneSpec`: each of model / optimizer / penalty is the object itself or a function of the
    configuration `{**static_values, **hp}` (numeric entries traced, structural ones Python values)."""
    static_values = dict(static_values or {})

    def build(hp):
        full = {**static_values, **hp}
        return LaneSpec(_resolve(model, full), _resolve(optimizer, full), _resolve(penalty, full))

    return build


def _select(flag, new, old):
    return jax.tree_util.tree_map(lambda n, o: jnp.where(flag, n, o), new, old)


def make_lane_program(build: Callable, loss, *, input_shape, batch_size: int, gradients: str, drop_last: bool,
                      augment, monitor: str, eval_batch_size):
    """(init(hp, key) -> LaneCarry, epoch(carry, hp, key, e, rule, x, y, xv, yv) -> (carry, metrics)) for ONE
    lane; vmap both over lanes. rule = (patience, min_delta) as int32/float32 scalars (traced: changing them
    does not recompile). metrics are scalars: train_loss, train_accuracy, [val_loss, val_accuracy], finite,
    active (the lane trained this epoch), stopped (after the epoch), early (stopped by patience now)."""
    sign = -1.0 if monitor.endswith("accuracy") else 1.0

    def init(hp, key):
        spec = build(hp)
        _, params, state = spec.model.init(key, tuple(input_shape))
        ts = TrainState.create(params, state, spec.optimizer)
        false, zero = jnp.bool_(False), jnp.int32(0)
        return LaneCarry(ts, ts.params, ts.state, jnp.float32(jnp.inf), zero, zero, false, false, zero)

    def epoch(carry: LaneCarry, hp, key, e, rule, x, y, xv, yv):
        patience, min_delta = rule
        spec = build(hp)
        run = make_epoch(spec.model, loss, spec.optimizer, batch_size=batch_size, gradients=gradients,
                         penalty=spec.penalty, drop_last=drop_last, augment=augment)
        ts, m = run(carry.ts, x, y, jax.random.fold_in(key, e))
        active = ~carry.stopped
        ok = active & m["finite"]
        ts = _select(active, ts, carry.ts)  # a stopped lane stays frozen
        metrics = {"train_loss": m["loss"], "train_accuracy": m["accuracy"]}
        if xv is not None:
            vm = make_eval(spec.model, loss, batch_size=eval_batch_size)(ts.params, ts.state, xv, yv)
            metrics["val_loss"], metrics["val_accuracy"] = vm["loss"], vm["accuracy"]
        score = (sign * metrics[monitor]).astype(jnp.float32)
        improved = ok & jnp.isfinite(score) & (score < carry.best_score - min_delta)
        wait = jnp.where(ok, jnp.where(improved, 0, carry.wait + 1), carry.wait)
        early = ok & (wait >= patience)
        diverged = carry.diverged | (active & ~m["finite"])
        new = LaneCarry(
            ts=ts,
            best_params=_select(improved, ts.params, carry.best_params),
            best_state=_select(improved, ts.state, carry.best_state),
            best_score=jnp.where(improved, score, carry.best_score),
            best_epoch=jnp.where(improved, e + 1, carry.best_epoch).astype(jnp.int32),
            wait=wait.astype(jnp.int32),
            stopped=carry.stopped | early | diverged,
            diverged=diverged,
            epochs_run=carry.epochs_run + ok.astype(jnp.int32),
        )
        metrics.update(finite=m["finite"], active=active, stopped=new.stopped, early=early)
        return new, metrics

    return init, epoch


def probe_output_shape(build: Callable, hp0: dict, key0, x) -> tuple:
    """The per-example output shape of `build(hp0).model` on inputs like `x` (abstract evaluation)."""
    spec_x = jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype)

    def run(hp, key, xb):
        spec = build(hp)
        _, params, state = spec.model.init(key, tuple(x.shape[1:]))
        return spec.model.forward(params, state, xb, Ctx(False, None))[0]

    return tuple(jax.eval_shape(run, hp0, key0, spec_x).shape[1:])


def _pad(tree, start: int, stop: int, size: int):
    """Rows [start, stop) of every leaf, padded to `size` rows by repeating the last row."""
    def take(a):
        idx = np.minimum(np.arange(start, start + size), stop - 1)
        return a[idx]

    return jax.tree_util.tree_map(take, tree)


def _progress(total: int, desc: str, enabled: bool):
    import sys

    if not enabled or not getattr(sys.stderr, "isatty", lambda: False)():
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="epoch", dynamic_ncols=True, leave=True)


@functools.lru_cache(maxsize=16)
def _programs(model, optimizer, penalty, static_items, loss, input_shape, batch_size, gradients, drop_last, augment,
              monitor, eval_batch_size):
    """The jitted (init, epoch) programs of one lane configuration, memoised so that repeated searches and
    ensembles with the same objects reuse their compiled programs."""
    init_one, epoch_one = make_lane_program(
        builder(model, optimizer, penalty, dict(static_items)), loss, input_shape=input_shape,
        batch_size=batch_size, gradients=gradients, drop_last=drop_last, augment=augment, monitor=monitor,
        eval_batch_size=eval_batch_size)
    # lax.map, not vmap: the same per-lane values, and a vmapped threefry compiles about twice as slowly on CPU
    init_fn = jax.jit(lambda hp, keys: jax.lax.map(lambda a: init_one(*a), (hp, keys)))
    epoch_fn = jax.jit(jax.vmap(epoch_one, in_axes=(0, 0, 0, None, None, None, None, None, None)), donate_argnums=0)
    return init_fn, epoch_fn


def train_lanes(model, optimizer, penalty, static_values: dict, hps: dict, keys, loss, x, y, xv=None, yv=None, *,
                epochs: int, batch_size: int,
                gradients: str = "manual", monitor: str = "val_loss", patience: Optional[int] = None,
                min_delta: float = 0.0, drop_last: bool = False, augment=None, eval_batch_size=1024,
                classification: bool = True, chunk_size: Optional[int] = None, progress: bool = True,
                verbose: bool = False, desc: str = "lanes") -> LanesOutcome:
    """Train K lanes (K = len(keys); `hps` maps names to arrays of K scalars; model / optimizer / penalty as
    for `builder`) on device arrays x, y (and xv, yv) for up to `epochs` epochs, `chunk_size` lanes per
    compiled program at a time (default: all K). The program is compiled once per chunk size; a short last
    chunk is padded with copies of its last lane."""
    k_total = int(keys.shape[0])
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int (lanes per compiled program) or None, got {chunk_size!r}")
    chunk = k_total if chunk_size is None else min(int(chunk_size), k_total)
    init_fn, epoch_fn = cached(_programs, model, optimizer, penalty, tuple(dict(static_values or {}).items()), loss,
                               tuple(x.shape[1:]), batch_size, gradients, drop_last, augment, monitor,
                               eval_batch_size)
    rule = (jnp.int32(2**31 - 1 if patience is None else patience), jnp.float32(min_delta))
    hps = {name: jnp.asarray(v) for name, v in hps.items()}
    histories = [History() for _ in range(k_total)]
    early = np.zeros(k_total, bool)
    carries, epoch_seconds = [], []
    n_chunks = -(-k_total // chunk)
    bar = _progress(epochs * n_chunks, desc, progress)
    t_start = time.perf_counter()
    try:
        for c in range(n_chunks):
            lo, hi = c * chunk, min((c + 1) * chunk, k_total)
            hp_c, keys_c = _pad((hps, keys), lo, hi, chunk)
            carry = init_fn(hp_c, keys_c)
            for e in range(epochs):
                t0 = time.perf_counter()
                carry, m = epoch_fn(carry, hp_c, keys_c, jnp.int32(e), rule, x, y, xv, yv)
                m = jax.device_get(m)
                dt = time.perf_counter() - t0
                epoch_seconds.append(dt)
                for j in range(hi - lo):
                    early[lo + j] |= bool(m["early"][j])
                    if m["active"][j] and m["finite"][j]:
                        histories[lo + j].append(_row(m, j, e + 1, dt, classification, xv is not None))
                running = int(np.sum(~m["stopped"][: hi - lo]))
                if bar is not None:
                    bar.set_postfix_str(f"chunk {c + 1}/{n_chunks}  running {running}/{hi - lo}", refresh=False)
                    bar.update(1)
                if verbose:
                    print(f"{desc} chunk {c + 1}/{n_chunks} epoch {e + 1}/{epochs}: {running} of {hi - lo} lanes "
                          f"running, best {monitor} this epoch {_best(m, monitor, hi - lo):.4f}, {dt:.2f}s",
                          flush=True)
                if running == 0:
                    if bar is not None:
                        bar.update(epochs - e - 1)
                    break
            carries.append(jax.tree_util.tree_map(lambda a, n=hi - lo: a[:n], carry))
    finally:
        if bar is not None:
            bar.close()
    carry = carries[0] if len(carries) == 1 else jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *carries)
    return LanesOutcome(carry, histories, early, epoch_seconds, time.perf_counter() - t_start)


def _best(m, monitor, n):
    vals = np.asarray(m[monitor][:n], np.float64)[np.asarray(m["active"][:n]) & np.asarray(m["finite"][:n])]
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return float("nan")
    return float(vals.max() if monitor.endswith("accuracy") else vals.min())


def _row(m, j, epoch, dt, classification, has_val):
    row = {"epoch": epoch, "train_loss": float(m["train_loss"][j])}
    if classification:
        row["train_accuracy"] = float(m["train_accuracy"][j])
    if has_val:
        row["val_loss"] = float(m["val_loss"][j])
        if classification:
            row["val_accuracy"] = float(m["val_accuracy"][j])
    row["time"] = dt
    return row
