"""Ensembles trained as lanes of the training engine, and voting.

    keys = jax.random.split(jax.random.key(0), 16)
    res = fit_ensemble(model, losses.softmax_cross_entropy, optim.sgd(0.5), (x, y), epochs=10, batch_size=32,
                       keys=keys, val_data=(xv, yv))
    res.params                         # every leaf stacked on axis 0: member k is res.member(k), a FitResult
    labels = vote(model, res.params, res.state, x_test, how="plurality")      # (N,) int32
    ensemble_accuracy(model, res.params, res.state, (x_test, y_test))        # members, plurality, mean

Member k is exactly `fit(model, loss, optimizer, train_data, key=keys[k], ...)`: it is initialised by
`model.init(keys[k], x.shape[1:])` and epoch e draws its data order, dropout masks and augmentation from
`fold_in(keys[k], e - 1)`. The K members advance together through the one training engine
(`jaxnets.training.engine`, K lanes of one vmapped program), so K small networks cost far less than K `fit`s.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.training import engine, lanes, loops, validate
from jaxnets.training.early_stopping import StopReason
from jaxnets.training.evaluation import DEFAULT_CHUNK, predictor
from jaxnets.training.fit import FitResult, fit_result
from jaxnets.training.run import check_run


class EnsembleResult(NamedTuple):
    """The same fields as `FitResult`, one entry per member: params/state stacked on axis 0 (K members) — the
    final ones, or each member's best-epoch ones when `early_stopping.restore_best`; opt_state and train_state:
    stacked final ones; histories, best_epochs, stop_reasons: lists of K; epoch_seconds: wall time per epoch
    call (all members; the first includes compilation); seconds: total wall time. `member(k)` is member k's
    FitResult; stopped_early, diverged, epochs_run are (K,) numpy arrays derived from the lists."""

    params: Any
    state: Any
    opt_state: Any
    histories: list
    best_epochs: list
    stop_reasons: list
    train_state: Any
    epoch_seconds: list
    seconds: float
    outcome: Any = None       # the engine's Outcome of every member, for member(k)
    keep_best: bool = False   # whether member(k) restores its best epoch

    @property
    def size(self) -> int:
        """The number of members K."""
        return len(self.histories)

    @property
    def stopped_early(self) -> np.ndarray:
        return np.array([StopReason(r).stopped_early for r in self.stop_reasons])

    @property
    def diverged(self) -> np.ndarray:
        return np.array([r == StopReason.DIVERGED for r in self.stop_reasons])

    @property
    def epochs_run(self) -> np.ndarray:
        return np.array([len(h) for h in self.histories])

    def member(self, k: int) -> FitResult:
        """Member k as a FitResult (its params, history, best epoch, stop reason)."""
        if not 0 <= k < self.size:
            raise IndexError(f"member {k} out of range 0..{self.size - 1}")
        return fit_result(self.outcome, self.keep_best, lane=k)


def fit_ensemble(model, loss, optimizer, train_data, *, epochs: int, batch_size: int, keys, val_data=None,
                 gradients: str = "manual", penalty=None, early_stopping=None, progress: bool = True,
                 verbose: bool = False, drop_last: bool = False, augment=None, chunk_size: int | None = None,
                 eval_batch_size: int = DEFAULT_CHUNK, loop: str = "auto", shuffle: bool = True,
                 compute_dtype=None, loss_scale: float | None = None) -> EnsembleResult:
    """Train K = len(keys) copies of `model` (different inits and data orders) as K lanes of one program.

    Arguments are those of `jaxnets.fit` (x: (N, ...) inputs, y: (N,) labels or targets), with `keys` (K PRNG
    keys stacked on axis 0, e.g. `jax.random.split(key, K)`) in place of `key`. early_stopping: an
    `EarlyStopping`, applied per member (a stopped member's params are frozen while the others train).
    chunk_size: train at most this many members per compiled program (for memory). A member whose cost,
    gradient or update becomes NaN/Inf stops with its last finite params (stop reason "diverged", a warning);
    the others go on. Returns an `EnsembleResult`.
    """
    run = check_run("fit_ensemble", model, loss, optimizer, train_data, epochs=epochs, batch_size=batch_size,
                    keys=keys, val_data=val_data, gradients=gradients, penalty=penalty, early_stopping=early_stopping,
                    loop=loop, drop_last=drop_last, shuffle=shuffle, augment=augment, compute_dtype=compute_dtype,
                    loss_scale=loss_scale, eval_batch_size=eval_batch_size)
    try:
        out = lanes.train_lanes(run, {}, run.keys, chunk_size=chunk_size, progress=progress, verbose=verbose,
                                desc="ensemble")
    except BaseException as err:   # an error after training started carries the members trained so far
        if isinstance(getattr(err, "result", None), engine.Outcome):
            err.result = _ensemble_result(err.result, run.keep_best)
        raise
    diverged = [r == StopReason.DIVERGED for r in out.stop_reasons]
    if any(diverged):
        warnings.warn(f"fit_ensemble: member(s) {[k for k, d in enumerate(diverged) if d]} diverged (NaN/Inf cost, "
                      "gradient or update) and kept their last finite params; lower the learning rate or clip "
                      "gradients", RuntimeWarning, stacklevel=2)
    return _ensemble_result(out, run.keep_best)


def _ensemble_result(out: engine.Outcome, keep_best: bool) -> EnsembleResult:
    """The EnsembleResult of the members' engine Outcome: each member's best epoch restored where early stopping
    asks for it (a run without validation data or early stopping has no best epochs)."""
    diverged = [r == StopReason.DIVERGED for r in out.stop_reasons]
    params, state = out.ts.params, out.ts.state
    if keep_best and out.best is not None:  # each member's best epoch, except those that never improved or diverged
        restored = np.array([b is not None and not d for b, d in zip(out.best_epochs, diverged)])
        params, state = jax.tree_util.tree_map(
            lambda b, f: jnp.where(restored.reshape((-1,) + (1,) * (b.ndim - 1)), b, f), out.best, (params, state))
    return EnsembleResult(params=params, state=state, opt_state=out.ts.opt_state, histories=out.histories,
                          best_epochs=out.best_epochs, stop_reasons=out.stop_reasons, train_state=out.ts,
                          epoch_seconds=out.epoch_seconds, seconds=out.seconds, outcome=out, keep_best=keep_best)


# ----------------------------------------------------------------------------------------------- voting
def _last_layer(model):
    while getattr(model, "children", ()):
        model = model.children[-1]
    return model


def outputs_are_probabilities(model) -> bool:
    """True when the model's last layer declares probability outputs (`Meta(outputs="probabilities")`, as Softmax
    and Sigmoid do), else the outputs are taken as logits. Read from the layer's metadata, never its name."""
    return getattr(getattr(_last_layer(model), "meta", None), "outputs", None) == "probabilities"


def member_outputs(model, params, state, x, *, batch_size: int = DEFAULT_CHUNK, loop: str = "auto") -> jax.Array:
    """Every member's evaluation-mode outputs on x (N, ...): shape (K, N) + output shape."""
    x = jnp.asarray(validate.check_inputs(x, "x"))
    one = jax.tree_util.tree_map(lambda a: a[0], (params, state))
    chosen = loops.resolve(loop, model, one[0], one[1], x.shape[1:], x.dtype)
    return predictor(model, batch_size, chosen, True)(params, state, x)


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


def _check_stacked(model, params, state, x, where: str = "vote") -> None:
    """params/state must be the members' stacked on axis 0 (as fit_ensemble returns them): every leaf of shape
    (K,) + the leaf's shape for one model, with one K. One model's params (or anything else) is a ValueError
    saying so."""
    _, p0, s0 = jax.eval_shape(lambda k: model.init(k, tuple(x.shape[1:])), jax.random.key(0))
    one = jax.tree_util.tree_structure((p0, s0))
    if jax.tree_util.tree_structure((params, state)) != one:
        raise ValueError(f"{where}: params/state do not have the structure of {model.name}'s; pass the stacked params "
                         "and state of fit_ensemble (res.params, res.state)")
    pairs = list(zip(jax.tree_util.tree_leaves((params, state)), jax.tree_util.tree_leaves((p0, s0))))
    if pairs and all(np.shape(a) == tuple(r.shape) for a, r in pairs):
        raise ValueError(f"{where}: params and state are one model's (their leaves have the shapes {model.name}'s init "
                         f"gives); {where} needs several members stacked on axis 0, as fit_ensemble returns them "
                         "(res = fit_ensemble(...); vote(model, res.params, res.state, x)). For one model use "
                         "jaxnets.predict, or stack models with jax.tree.map(lambda *a: jnp.stack(a), p1, p2, ...)")
    stacked = all(np.ndim(a) == r.ndim + 1 and np.shape(a)[1:] == tuple(r.shape) for a, r in pairs)
    if not stacked or len({np.shape(a)[0] for a, _ in pairs}) > 1:
        raise ValueError(f"{where}: the params/state leaves are not {model.name}'s stacked on one leading axis of K "
                         "members; pass fit_ensemble's res.params and res.state for inputs of per-example shape "
                         f"{tuple(x.shape[1:])}")


def vote(model, params, state, x, how: str = "plurality", *, outputs: str = "auto",
         batch_size: int = DEFAULT_CHUNK) -> jax.Array:
    """The ensemble's predicted labels (N,) int32 for x (N, ...), from members stacked on axis 0.

    how: "plurality" (majority of the members' argmax; ties to the lowest class) or "mean" (argmax of the
    mean probability). outputs: "auto" (probabilities when the last layer declares them with
    `Meta(outputs="probabilities")`, as Softmax and Sigmoid do; logits otherwise), "logits" or "probabilities".
    See `combine`.
    """
    if outputs not in ("auto", "logits", "probabilities"):
        raise ValueError(f"vote(outputs=...) must be 'auto', 'logits' or 'probabilities', got {outputs!r}")
    validate.check_model(model, "vote")
    _check_stacked(model, params, state, validate.check_inputs(x, "vote: x"))
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
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"ensemble_accuracy(data): an (x, y) pair of arrays, got {type(data).__name__}")
    x, y = data
    _check_stacked(model, params, state, x, "ensemble_accuracy")
    if outputs not in ("auto", "logits", "probabilities"):
        raise ValueError(f"outputs must be 'auto', 'logits' or 'probabilities', got {outputs!r}")
    probabilities = outputs_are_probabilities(model) if outputs == "auto" else outputs == "probabilities"
    out = member_outputs(model, params, state, x, batch_size=batch_size)
    truth = _labels(y)
    members = np.asarray(jnp.mean(_member_labels(out, probabilities) == truth[None], axis=1))
    return {"members": members, "member_mean": float(members.mean()),
            "plurality": float(jnp.mean(combine(out, "plurality", probabilities) == truth)),
            "mean": float(jnp.mean(combine(out, "mean", probabilities) == truth))}
