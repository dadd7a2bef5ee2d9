"""Ensembles trained as one vmapped, compiled program, and voting.

    keys = jax.random.split(jax.random.key(0), 16)
    res = fit_ensemble(model, losses.softmax_cross_entropy, optim.sgd(0.5), (x, y), epochs=10, batch_size=32,
                       keys=keys, val_data=(xv, yv))
    res.params                         # every leaf stacked on axis 0: member k is tree_map(lambda a: a[k], ...)
    labels = vote(model, res.params, res.state, x_test, how="plurality")      # (N,) int32
    ensemble_accuracy(model, res.params, res.state, (x_test, y_test))        # members, plurality, mean

Member k is exactly `fit(model, loss, optimizer, train_data, key=keys[k], ...)`: it is initialised by
`model.init(keys[k], x.shape[1:])` and epoch e draws its data order, dropout masks and augmentation from
`fold_in(keys[k], e - 1)`. The K members advance together: each epoch is one call of
`jit(vmap(epoch))` over the stacked TrainStates, so K small networks cost far less than K separate `fit`s.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.experiment import _common
from jaxnets.experiment._lanes import builder, probe_output_shape, train_lanes
from jaxnets.training.evaluation import DEFAULT_CHUNK, make_predict


class EnsembleResult(NamedTuple):
    """params/state: stacked on axis 0 (K members): the final ones, or each member's best-epoch ones when
    `early_stopping.restore_best`; opt_state: stacked final optimizer states; histories: one `History` per
    member; best_epochs: per member, the 1-based epoch with the best monitored value (None without
    validation data and early stopping); the histories' "time" is the wall time of the epoch call that
    trained all members together; stopped_early, diverged, epochs_run: (K,) numpy arrays;
    train_state: the stacked final TrainState; epoch_seconds: wall time per epoch call (all members; the
    first includes compilation); seconds: total wall time."""

    params: Any
    state: Any
    opt_state: Any
    histories: list
    best_epochs: list
    stopped_early: np.ndarray
    diverged: np.ndarray
    epochs_run: np.ndarray
    train_state: Any
    epoch_seconds: list
    seconds: float

    @property
    def size(self) -> int:
        """The number of members K."""
        return len(self.histories)

    def member(self, k: int):
        """(params, state) of member k."""
        return jax.tree_util.tree_map(lambda a: a[k], (self.params, self.state))


def fit_ensemble(model, loss, optimizer, train_data, *, epochs: int, batch_size: int, keys, val_data=None,
                 gradients: str = "manual", penalty=None, early_stopping=None, progress: bool = True,
                 verbose: bool = False, drop_last: bool = False, augment=None, chunk_size: int | None = None,
                 eval_batch_size: int = DEFAULT_CHUNK) -> EnsembleResult:
    """Train K = len(keys) copies of `model` (different inits and data orders) in one vmapped program.

    Arguments are those of `jaxnets.fit` (x: (N, ...) inputs, y: (N,) labels or targets), with `keys` (K PRNG
    keys stacked on axis 0, e.g. `jax.random.split(key, K)`) in place of `key`. early_stopping: an
    `EarlyStopping`, applied per member inside the program (a stopped member's params are frozen while the
    others train). chunk_size: train at most this many members per compiled program (for memory). A member
    whose cost or gradient becomes NaN/Inf stops with its last finite params (`diverged[k]` True, a warning);
    the others go on. Returns an `EnsembleResult`.
    """
    epochs, batch_size = _common.common_checks(gradients, epochs, batch_size)
    keys = _common.check_keys(keys)
    build = builder(model, optimizer, penalty)

    def out_shape(x):
        try:
            return probe_output_shape(build, {}, keys[0], x)
        except (ValueError, TypeError, IndexError) as err:
            raise ValueError(f"the model cannot take inputs of per-example shape {tuple(x.shape[1:])}: {err}") \
                from err

    x, y, xv, yv, classification = _common.check_data(train_data, val_data, batch_size, out_shape)
    monitor, patience, min_delta = _common.resolve_stopping(early_stopping, xv is not None, classification)
    out = train_lanes(model, optimizer, penalty, {}, {}, keys, loss, x, y, xv, yv, epochs=epochs, batch_size=batch_size,
                      gradients=gradients, monitor=monitor, patience=patience, min_delta=min_delta,
                      drop_last=drop_last, augment=augment, eval_batch_size=eval_batch_size,
                      classification=classification, chunk_size=chunk_size, progress=progress, verbose=verbose,
                      desc="ensemble")
    carry = out.carry
    restore = early_stopping is not None and early_stopping.restore_best
    params, state = (carry.best_params, carry.best_state) if restore else (carry.ts.params, carry.ts.state)
    best = np.asarray(carry.best_epoch)
    tracked = early_stopping is not None or xv is not None
    diverged = np.asarray(carry.diverged)
    if diverged.any():
        warnings.warn(f"fit_ensemble: member(s) {np.flatnonzero(diverged).tolist()} diverged (NaN/Inf cost or "
                      "gradient) and kept their last finite params; lower the learning rate or clip gradients",
                      RuntimeWarning, stacklevel=2)
    return EnsembleResult(
        params=params, state=state, opt_state=carry.ts.opt_state, histories=out.histories,
        best_epochs=[int(b) if tracked and b > 0 else None for b in best],
        stopped_early=out.early, diverged=diverged, epochs_run=np.asarray(carry.epochs_run),
        train_state=carry.ts, epoch_seconds=out.epoch_seconds, seconds=out.seconds)


# ----------------------------------------------------------------------------------------------- voting
def _last_layer(model):
    while getattr(model, "children", ()):
        model = model.children[-1]
    return model


def outputs_are_probabilities(model) -> bool:
    """True when the model ends in a Softmax or Sigmoid layer (its outputs are probabilities), else the
    outputs are taken as logits."""
    return getattr(_last_layer(model), "name", "") in ("Softmax", "Sigmoid")


@functools.lru_cache(maxsize=32)
def _member_outputs_fn(model, batch_size):
    return jax.jit(jax.vmap(make_predict(model, batch_size=batch_size), in_axes=(0, 0, None)))


def member_outputs(model, params, state, x, *, batch_size: int = DEFAULT_CHUNK) -> jax.Array:
    """Every member's evaluation-mode outputs on x (N, ...): shape (K, N) + output shape."""
    return _member_outputs_fn(model, batch_size)(params, state, jnp.asarray(x))


def _member_labels(out, probabilities):
    if out.shape[-1] == 1:
        return (out[..., 0] > (0.5 if probabilities else 0.0)).astype(jnp.int32)
    return jnp.argmax(out, axis=-1).astype(jnp.int32)


def combine(outputs, how: str = "plurality", probabilities: bool = False) -> jax.Array:
    """Ensemble labels (N,) from member outputs (K, N, k).

    "plurality": each member votes for its argmax class (with k = 1 output unit: class 1 when the output
    exceeds 0.5 for probabilities, 0 for logits); the class with most votes wins, ties going to the lowest
    class index. "mean": the class with the highest mean probability over members, where a member's
    probabilities are its outputs when `probabilities` (Softmax/Sigmoid outputs, averaged as they are) and
    softmax(logits) (sigmoid for k = 1) otherwise.
    """
    if how not in ("plurality", "mean"):
        raise ValueError(f"vote(how=...) must be 'plurality' or 'mean', got {how!r}")
    outputs = jnp.asarray(outputs)
    if outputs.ndim != 3:
        raise ValueError(f"member outputs must have shape (K, N, k), got {tuple(outputs.shape)}; vote works on "
                         "class scores of flat outputs")
    return _combine(outputs, how, bool(probabilities))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _combine(outputs, how, probabilities):
    k = outputs.shape[-1]
    if how == "plurality":
        labels = _member_labels(outputs, probabilities)
        votes = jnp.sum(jax.nn.one_hot(labels, max(k, 2), dtype=jnp.int32), axis=0)
        return jnp.argmax(votes, axis=-1).astype(jnp.int32)
    if k == 1:
        p = outputs[..., 0] if probabilities else jax.nn.sigmoid(outputs[..., 0])
        return (jnp.mean(p, axis=0) > 0.5).astype(jnp.int32)
    p = outputs if probabilities else jax.nn.softmax(outputs, axis=-1)
    return jnp.argmax(jnp.mean(p, axis=0), axis=-1).astype(jnp.int32)


def vote(model, params, state, x, how: str = "plurality", *, outputs: str = "auto",
         batch_size: int = DEFAULT_CHUNK) -> jax.Array:
    """The ensemble's predicted labels (N,) int32 for x (N, ...), from members stacked on axis 0.

    how: "plurality" (majority of the members' argmax; ties to the lowest class) or "mean" (argmax of the
    mean probability). outputs: "auto" (probabilities when the model ends in Softmax/Sigmoid, logits
    otherwise), "logits" or "probabilities". See `combine`.
    """
    if outputs not in ("auto", "logits", "probabilities"):
        raise ValueError(f"vote(outputs=...) must be 'auto', 'logits' or 'probabilities', got {outputs!r}")
    probabilities = outputs_are_probabilities(model) if outputs == "auto" else outputs == "probabilities"
    return combine(member_outputs(model, params, state, x, batch_size=batch_size), how, probabilities)


def _labels(y):
    y = jnp.asarray(y)
    if jnp.issubdtype(y.dtype, jnp.integer):
        return y.reshape(-1) if y.ndim > 1 and y.shape[-1] == 1 else y
    return (y[:, 0] > 0.5).astype(jnp.int32) if y.ndim == 2 and y.shape[1] == 1 else jnp.argmax(y, axis=-1)


def ensemble_accuracy(model, params, state, data, *, outputs: str = "auto",
                      batch_size: int = DEFAULT_CHUNK) -> dict:
    """Accuracy of every member and of both votes on data = (x, y) (y: int labels or one-hot rows):
    {"members": (K,) numpy array, "member_mean": float, "plurality": float, "mean": float}."""
    x, y = data
    if outputs not in ("auto", "logits", "probabilities"):
        raise ValueError(f"outputs must be 'auto', 'logits' or 'probabilities', got {outputs!r}")
    probabilities = outputs_are_probabilities(model) if outputs == "auto" else outputs == "probabilities"
    out = member_outputs(model, params, state, x, batch_size=batch_size)
    truth = _labels(y)
    members = np.asarray(jnp.mean(_member_labels(out, probabilities) == truth[None], axis=1))
    return {"members": members, "member_mean": float(members.mean()),
            "plurality": float(jnp.mean(combine(out, "plurality", probabilities) == truth)),
            "mean": float(jnp.mean(combine(out, "mean", probabilities) == truth))}
