"""Host-side checks run before anything is compiled: each failure is a ValueError/TypeError that names the
argument, the problem and the fix. Shared by `fit`, `evaluate`, `predict`, ensembles and sweeps."""
from __future__ import annotations

import inspect
import math
import numbers
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.core import Ctx, Layer
from jaxnets.memo import memoised

def positive_int(value, name: str, hint: str = "") -> int:
    """`value` as an int ≥ 1, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}{'; ' + hint if hint else ''}")
    return int(value)


def check_gradients(gradients) -> str:
    """The name of a gradient source ("manual" or "autodiff"), else the ValueError of `jaxnets.gradients.get`."""
    import jaxnets.gradients   # (the argument is called `gradients` everywhere, so the module by its full name)

    jaxnets.gradients.get(gradients)
    return gradients


def check_key(key, name: str = "key") -> jax.Array:
    """One PRNG key: a typed key (jax.random.key) or a raw uint32 key (jax.random.PRNGKey)."""
    ok = isinstance(key, jax.Array) and (
        (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 0)
        or (key.dtype == jnp.uint32 and key.shape == (2,)))
    if not ok:
        raise TypeError(f"{name} must be one JAX PRNG key (jax.random.key(0) or jax.random.PRNGKey(0)), got "
                        f"{type(key).__name__}{'' if not hasattr(key, 'shape') else f' of shape {key.shape}'}")
    return key


def check_keys(keys, name: str = "keys") -> jax.Array:
    """K PRNG keys stacked on axis 0 (one per ensemble member): typed keys of shape (K,) or raw uint32 keys of
    shape (K, 2); a list of keys is stacked."""
    if isinstance(keys, (list, tuple)) and keys:
        keys = jnp.stack([jnp.asarray(k) for k in keys])
    hint = f"pass {name}=jax.random.split(jax.random.key(0), K) for K members"
    if not isinstance(keys, jax.Array):
        raise TypeError(f"{name} must be an array of PRNG keys stacked on axis 0, got {type(keys).__name__}; {hint}")
    typed = jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key)
    if not ((typed and keys.ndim == 1) or (keys.dtype == jnp.uint32 and keys.ndim == 2)):
        raise ValueError(f"{name} must hold K keys stacked on axis 0, got dtype {keys.dtype} shape "
                         f"{tuple(keys.shape)}; {hint}")
    if keys.shape[0] < 1:
        raise ValueError(f"{name} is empty; {hint}")
    return keys


def check_model(model, where: str) -> Layer:
    if not isinstance(model, Layer):
        from jaxnets.core import not_a_layer_hint

        raise TypeError(f"{where}: model must be a jaxnets Layer (e.g. serial(Dense(30), Sigmoid(), Dense(10))), got "
                        f"{type(model).__name__}; {not_a_layer_hint(model)}")
    return model


def check_loss(loss, where: str):
    """A `jaxnets.losses.Loss`, a loss's name or alias, or a plain function `f(outputs, targets) -> scalar` (its
    output gradient by autodiff, labelled so): `jaxnets.losses.resolve`."""
    from jaxnets import losses

    return losses.resolve(loss, where)


def check_optimizer(optimizer, where: str = "fit"):
    """An optax-protocol GradientTransformation (a pair of functions init, update), or an optimizer by name."""
    from jaxnets import optim

    if isinstance(optimizer, str):
        return optim.get(optimizer)
    if callable(optimizer) and not isinstance(optimizer, tuple):
        name = getattr(optimizer, "__name__", type(optimizer).__name__)
        raise TypeError(f"{where}: optimizer is the function {name!r}, not a gradient transformation; call it, e.g. "
                        f"{name}(1e-3) (or pass its name as a string for its default learning rate)")
    if not (isinstance(optimizer, tuple) and len(optimizer) == 2 and all(callable(f) for f in optimizer)):
        raise TypeError(f"{where}: optimizer must be an optax-protocol GradientTransformation (init, update), e.g. "
                        f"jaxnets.optim.sgd(0.1) or optax.adam(1e-3), or a name ({', '.join(optim.NAMES)}); got "
                        f"{type(optimizer).__name__}")
    return optimizer


def check_mesh(mesh):
    if mesh is None:
        return None
    from jax.sharding import Mesh

    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh, e.g. jaxnets.parallel.make_mesh(), or None; got "
                        f"{type(mesh).__name__} {mesh!r}")
    return mesh


def check_callable(fn, name: str, signature: str):
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be a function {signature} or None, got {type(fn).__name__} {fn!r}")
    return fn


def check_callbacks(callbacks) -> tuple:
    """A tuple of callbacks `fn(epoch, row, train_state)`, each checked before training starts: a class where an
    instance is meant (`CSVLogger` instead of `CSVLogger("log.csv")`) or a function that cannot take the three
    arguments is refused here, not after the first epoch has trained."""
    if callbacks is None:
        return ()
    if callable(callbacks) and not isinstance(callbacks, type):
        callbacks = (callbacks,)
    if not isinstance(callbacks, (list, tuple)):
        kind = f"the class {callbacks.__name__}" if isinstance(callbacks, type) else type(callbacks).__name__
        raise TypeError(f"callbacks must be a list of functions fn(epoch, row, train_state), got {kind}"
                        + (f"; pass an instance, e.g. callbacks=[{callbacks.__name__}(...)]"
                           if isinstance(callbacks, type) else ""))
    for i, cb in enumerate(callbacks):
        if isinstance(cb, type):
            raise TypeError(f"callbacks[{i}] is the class {cb.__name__}, not an instance: pass {cb.__name__}(...) "
                            "(e.g. CSVLogger('log.csv')), or a function fn(epoch, row, train_state)")
        if not callable(cb):
            raise TypeError(f"callbacks[{i}] is {type(cb).__name__} {cb!r}, not a function fn(epoch, row, train_state)")
        try:
            inspect.signature(cb).bind(1, {}, None)
        except TypeError as err:
            raise TypeError(f"callbacks[{i}] ({getattr(cb, '__name__', type(cb).__name__)}) cannot be called as "
                            f"fn(epoch, row, train_state): {err}; give it three parameters") from None
        except ValueError:  # no signature to read (a builtin): it is called as it is
            pass
    return tuple(callbacks)


def check_penalty(penalty, where: str = "fit"):
    """None, or a penalty with `value(params)` and `grad(params)` (`losses.l2(lmbda, n)`, `losses.l1(...)`)."""
    if penalty is None:
        return None
    if isinstance(penalty, str):
        raise TypeError(f"{where}: penalty={penalty!r} is a name, but a penalty needs its strength and the training-set "
                        f"size: pass losses.{penalty if penalty in ('l1', 'l2') else 'l2'}(lmbda, n), e.g. "
                        "losses.l2(0.1, len(x_train))")
    if not (callable(getattr(penalty, "value", None)) and callable(getattr(penalty, "grad", None))):
        raise TypeError(f"{where}: penalty must be a Penalty with value(params) and grad(params), such as "
                        f"losses.l2(lmbda, n), got {type(penalty).__name__}")
    return penalty


def check_number(value, name: str, *, low=None, high=None, low_open=False, high_open=False, allow_none=False):
    """A finite real number in the given range (bool refused), else ValueError naming `name`."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def _all_finite(a) -> bool:
    if isinstance(a, jax.Array):
        return bool(jnp.all(jnp.isfinite(a)))
    return bool(np.all(np.isfinite(a)))


def check_inputs(x, name: str):
    """`x` as an array with a batch axis, floating point, finite, non-empty."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"{name}: x has shape {tuple(x.shape)} but needs a batch axis and feature axes, "
                         f"e.g. (N, D): for one example of {x.shape[0] if x.ndim else 1} features write x[None] "
                         f"(shape (1, {x.shape[0] if x.ndim else 1})); for {x.shape[0] if x.ndim else 1} examples of "
                         "one feature, x[:, None]")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (x has shape {tuple(x.shape)}); pass at least one example")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: x has dtype {x.dtype}; convert inputs to floating point, e.g. x.astype('float32')")
    if not _all_finite(x):
        raise ValueError(f"{name}: x contains NaN or infinite values; clean or impute the data before training")
    return x


def check_arrays(data, name: str):
    """`data` must be an (x, y) pair of arrays with a common, non-zero leading length and finite values."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be an (x, y) tuple of arrays, got {type(data).__name__}; "
                        f"pass {name}=(x, y)")
    x, y = data
    x = check_inputs(x, name)
    if not hasattr(y, "shape") or not hasattr(y, "dtype"):
        y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: x has {x.shape[0]} examples but y has shape {tuple(y.shape)}; "
                         "x and y need the same leading length")
    if jnp.issubdtype(y.dtype, jnp.floating) and not _all_finite(y):
        raise ValueError(f"{name}: y contains NaN or infinite values; clean the targets before training")
    if not (jnp.issubdtype(y.dtype, jnp.floating) or jnp.issubdtype(y.dtype, jnp.integer)):
        raise TypeError(f"{name}: y has dtype {y.dtype}; use integer class labels or float targets")
    return x, y


def warn_if_channels_first(x, name: str) -> None:
    """Image batches are NHWC; a (N, C, H, W) batch with few channels first is most likely NCHW."""
    if getattr(x, "ndim", 0) == 4 and x.shape[1] in (1, 2, 3, 4) and x.shape[3] > 4 and x.shape[2] > 4:
        warnings.warn(f"{name}: images of shape {tuple(x.shape)} look channels-first (NCHW, {x.shape[1]} channel(s) "
                      f"of {x.shape[2]}x{x.shape[3]}); jaxnets images are NHWC (batch, height, width, channels), so "
                      f"this trains on {x.shape[1]}x{x.shape[2]} images with {x.shape[3]} channels. Transpose with "
                      "x.transpose(0, 2, 3, 1) if that is not what you mean", UserWarning, stacklevel=3)


def output_shape(model, params, state, x) -> tuple:
    """Per-example output shape of `model` on inputs like `x` (abstract evaluation, no compute). A model whose
    output is not one array (a tuple from `FanOut` or `branches` at the end) is refused: training, evaluation and
    prediction need one output per example."""
    def run(p, s, xb):
        return model.forward(p, s, xb, Ctx(False, None))[0]

    try:
        out = jax.eval_shape(run, params, state, jax.ShapeDtypeStruct((1,) + tuple(x.shape[1:]), x.dtype))
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise ValueError(f"the model cannot take inputs of per-example shape {tuple(x.shape[1:])}: {err}") from err
    if not hasattr(out, "shape"):
        kind = f"a {type(out).__name__} of {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
        raise ValueError(f"{getattr(model, 'name', 'the model')} outputs {kind} arrays, not one array: end the model "
                         "with a layer that joins its branches (FanInSum, FanInConcat) so that each example has one "
                         "output")
    return tuple(out.shape[1:])


@memoised(maxsize=16)
def _init_program(model, shape):
    return jax.jit(lambda k: model.init(k, shape)[1:])


def init_params(model, key, x):
    """`model.init(key, x.shape[1:])` with a clear error when the data does not fit the model."""
    shape = tuple(x.shape[1:])
    try:
        params, state = _init_program(model, shape)(key)  # one compiled program, not op by op
    except (ValueError, TypeError, IndexError) as err:
        raise ValueError(f"cannot initialise the model for inputs of per-example shape {tuple(x.shape[1:])}: "
                         f"{err}") from err
    return params, state


def _path(path) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def check_params_like(model, params, state, input_shape, where: str) -> None:
    """Given params/state must have the structure, shapes and float dtypes `model.init` gives, and finite values."""
    _, p0, s0 = jax.eval_shape(lambda k: model.init(k, tuple(input_shape)), jax.random.key(0))
    for what, tree, ref in (("params", params, p0), ("state", state, s0)):
        got = jax.tree_util.tree_structure(tree)
        want = jax.tree_util.tree_structure(ref)
        if got != want:
            have = {_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)}
            need = {_path(p) for p, _ in jax.tree_util.tree_leaves_with_path(ref)}
            missing, extra = sorted(need - have), sorted(have - need)
            detail = (f"missing {missing[:3]}" if missing else "") + (", " if missing and extra else "") + \
                (f"unexpected {extra[:3]}" if extra else "")
            raise ValueError(f"{where}: the given {what} do not have the structure of {model.name}'s {what} "
                             f"({detail or f'{got} vs {want}'}); pass the {what} returned by this model's init")
        for (path, leaf), r in zip(jax.tree_util.tree_leaves_with_path(tree), jax.tree_util.tree_leaves(ref)):
            shape = tuple(np.shape(leaf))
            if shape != tuple(r.shape):
                raise ValueError(f"{where}: {what}{_path(path)} has shape {shape} but {model.name} expects "
                                 f"{tuple(r.shape)} for inputs of per-example shape {tuple(input_shape)}")
            dtype = np.asarray(leaf).dtype if not hasattr(leaf, "dtype") else leaf.dtype
            if jnp.issubdtype(r.dtype, jnp.floating) and not jnp.issubdtype(dtype, jnp.floating):
                raise TypeError(f"{where}: {what}{_path(path)} has dtype {dtype}; params must be floating point "
                                f"(cast with jax.tree_util.tree_map(lambda a: a.astype('float32'), {what}))")
            if jnp.issubdtype(dtype, jnp.floating) and not _all_finite(leaf):
                raise ValueError(f"{where}: {what}{_path(path)} contains NaN or infinite values; start from finite "
                                 "params (e.g. the model's init, or the last good params of a diverged run)")


def check_model_params(model, params, state, where: str) -> None:
    """Light checks for evaluate/predict: a Layer, and float, finite params."""
    check_model(model, where)
    for what, tree in (("params", params), ("state", state)):
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            dtype = getattr(leaf, "dtype", np.asarray(leaf).dtype)
            if what == "params" and not jnp.issubdtype(dtype, jnp.floating):
                raise TypeError(f"{where}: params{_path(path)} has dtype {dtype}; params must be floating point")
            if jnp.issubdtype(dtype, jnp.floating) and not _all_finite(leaf):
                raise ValueError(f"{where}: {what}{_path(path)} contains NaN or infinite values")


def _host(a):
    return np.asarray(jax.device_get(a))


def is_classification(y, out_shape) -> bool:
    """True for integer labels, and for dense targets whose entries are all 0/1 with one 1 per row (k > 1) or
    a single 0/1 column (k = 1); False for real-valued (regression) targets."""
    if jnp.issubdtype(y.dtype, jnp.integer):
        return True
    if y.ndim != 2 or tuple(y.shape[1:]) != tuple(out_shape):
        return False
    yh = _host(y)
    binary = np.all((yh == 0) | (yh == 1))
    return bool(binary and (yh.shape[1] == 1 or np.all(yh.sum(axis=1) == 1)))


def check_targets(y, out_shape, name: str, loss=None) -> None:
    """Targets must be integer labels in [0, classes) (shape (N,)) or dense targets of the output shape, and make
    sense for the loss (`loss.check`: e.g. softmax over one unit, BCE targets outside [0, 1])."""
    n_out = out_shape[-1] if out_shape else 1
    if jnp.issubdtype(y.dtype, jnp.integer):
        if y.ndim != 1:
            raise ValueError(f"{name}: integer labels must have shape (N,), got {tuple(y.shape)}; "
                             "pass class indices or float one-hot rows")
        yh = _host(y)
        lo, hi = int(yh.min()), int(yh.max())
        top = 1 if n_out == 1 else n_out - 1
        if lo < 0 or hi > top:
            raise ValueError(
                f"{name}: labels span [{lo}, {hi}] but the model has {n_out} output unit(s), so labels must lie in "
                f"[0, {top}]; give the last layer one unit per class or fix the labels"
            )
    elif tuple(y.shape[1:]) != tuple(out_shape):
        hint = " (use y[:, None])" if y.ndim == 1 and tuple(out_shape) == (1,) else ""
        raise ValueError(
            f"{name}: targets of per-example shape {tuple(y.shape[1:])} do not match the model's output shape "
            f"{tuple(out_shape)}{hint}; pass integer labels (N,) or float targets (N,) + output shape"
        )
    if loss is not None and getattr(loss, "check", None) is not None:
        try:
            loss.check(tuple(out_shape), _host(y))
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None


def check_backward_structure(model, params, state, x, key, batch_size, where: str = "in fit") -> None:
    """Before training with gradients="manual": every layer's backward must return (dparams, dx) shaped like
    (params, x) — the same diagnosis `gradcheck.check_model` gives (`gradcheck.structure.model_problems`), traced
    at a batch of `batch_size` examples, nothing compiled. A ValueError names the first layer at fault."""
    from jaxnets.gradcheck.structure import model_problems

    batch = jax.ShapeDtypeStruct((batch_size,) + tuple(x.shape[1:]), x.dtype)
    problems = model_problems(model, params, state, batch, Ctx(train=True, key=key), where=where)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(problems[0] + more + "; fix the layer's backward, or train with gradients='autodiff' "
                         "while you write it")


def check_same_features(x_train, x_val) -> None:
    if tuple(x_val.shape[1:]) != tuple(x_train.shape[1:]):
        raise ValueError(f"val_data: x has per-example shape {tuple(x_val.shape[1:])} but train_data has "
                         f"{tuple(x_train.shape[1:])}; validation inputs must look like training inputs")


def check_initial_cost(model, loss, params, state, x, y, optimizer=None):
    """The cost must be finite at the initial params on the first examples; else the loss cannot be evaluated on
    the model's outputs (e.g. binary_cross_entropy on outputs outside (0, 1)) and training would diverge at once.
    With `optimizer`, the same compiled program also builds and returns the initial `TrainState` (one program
    instead of two before the first epoch); without, returns None."""
    n = min(int(x.shape[0]), 8)
    value, outputs, ts = _initial_cost(model, loss, optimizer)(params, state, jnp.asarray(x[:n]), jnp.asarray(y[:n]))
    value = float(value)
    if not np.isfinite(value):
        low, high = float(jnp.min(outputs)), float(jnp.max(outputs))
        several = int(outputs.shape[-1]) > 1 if outputs.ndim > 1 else False
        unit, logits = ("Softmax()", "softmax_cross_entropy") if several else ("Sigmoid()", "sigmoid_cross_entropy")
        hint = (f" {getattr(loss, 'name', 'the loss')} takes probabilities in (0, 1): end the model with {unit}, "
                f"or use a loss on logits such as {logits}." if getattr(loss, "on_probabilities", False) else "")
        raise ValueError(f"the cost {getattr(loss, 'name', 'loss')} is {value} at the initial params on the first "
                         f"{n} training examples (model outputs in [{low:.4g}, {high:.4g}]): the loss is undefined on "
                         f"these outputs.{hint} Check that the loss matches the model's output layer")
    return ts


@memoised(maxsize=32)
def _initial_cost(model, loss, optimizer):
    """A jitted evaluation-mode (cost, outputs, TrainState or None) of `model` (memoised on values, so repeated
    fits compile it once)."""
    from jaxnets.training.state import TrainState

    def cost(params, state, xb, yb):
        outputs = model.forward(params, state, xb, Ctx(False, None))[0]
        ts = None if optimizer is None else TrainState.create(params, state, optimizer)
        return loss.value(outputs, yb), outputs, ts

    return jax.jit(cost)


COMPUTE_DTYPES = ("bfloat16", "float16", "float32", "float64")


def policy_of(compute_dtype, loss_scale):
    """The mixed-precision `Policy` for `compute_dtype` (None: none), checked: a floating dtype (an integer compute
    dtype would freeze the params silently), float64 only under 64-bit JAX, a loss scale > 0."""
    from jaxnets.training.config import Policy

    if compute_dtype is None:
        if loss_scale is not None:
            raise ValueError("loss_scale needs compute_dtype (it scales the float16/bfloat16 backward pass)")
        return None
    try:
        dtype = jnp.dtype(compute_dtype)
    except TypeError:
        raise TypeError(f"compute_dtype must be a floating dtype such as jnp.bfloat16, got {compute_dtype!r}") from None
    if dtype.name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype={dtype.name} is not supported: the forward and backward passes need a "
                         f"floating dtype, one of {COMPUTE_DTYPES} (bfloat16 for mixed precision)")
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("compute_dtype=float64 needs 64-bit JAX: jax.config.update('jax_enable_x64', True) first")
    scale = 1.0 if loss_scale is None else check_number(loss_scale, "loss_scale", low=0, low_open=True)
    return Policy(dtype.type, float(scale))
