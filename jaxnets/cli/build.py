"""What the command-line arguments build: the model and its loss, the penalty, the optimizer with its schedule and
clipping, the gradient check's problem. Nothing here parses or validates; `jaxnets.cli.checks` has done that.
Defaults are the API's: a model option not given is left to the `jaxnets.models` factory, and the learning rate
of an optimizer name is `jaxnets.optim.names.DEFAULT_LEARNING_RATES`."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxnets import losses, models
from jaxnets.gradients import cast_floats
from jaxnets.optim.names import DEFAULT_LEARNING_RATES

__all__ = ["output_unit", "build_model", "train_model", "model_recipe", "input_shape", "build_penalty",
           "build_optimizer", "default_learning_rate", "gradcheck_problem", "gradcheck_targets", "IMAGE_MODELS"]

CNN_INPUT = (8, 8, 1)
IMAGE_MODELS = ("cnn", "cnn2", "resnet_cnn")
# The CLI's own names for sgd with momentum take sgd's learning rate from the API's table.
_SAME_AS = {"momentum": "sgd", "nesterov": "sgd"}


def default_learning_rate(optimizer: str) -> float:
    """The learning rate `--optimizer NAME` means without --learning-rate: the API's for that name."""
    return DEFAULT_LEARNING_RATES[_SAME_AS.get(optimizer, optimizer)]


def output_unit(args, regression: bool = False):
    """The output unit --output resolves to: a name from models.OUTPUTS, or None for raw scores (logits)."""
    if args.output == "none":
        return None
    if args.output != "auto":
        return args.output
    loss = losses.get(args.loss)
    if loss.on_logits:
        return None
    if loss.on_probabilities:
        return "sigmoid"
    if regression:
        return "identity"
    return args.activation if args.activation in models.OUTPUTS else "identity"   # relu, elu, ...: linear output


def build_model(args, regression: bool = False, kind: str = "mlp"):
    """(model, loss) for `jaxnets gradcheck`; kind: "mlp", "bn" (BatchNorm after each hidden Dense) or "cnn"
    (a small conv net on 8x8x1 images with args.sizes[-1] outputs)."""
    output = output_unit(args, regression)
    if kind == "cnn":
        model = models.cnn(features=4, kernel=3, hidden=16, classes=args.sizes[-1], activation=args.activation,
                           output=output)
    else:
        model = models.mlp(list(args.sizes), activation=args.activation, output=output, batch_norm=kind == "bn")
    return model, losses.get(args.loss)


def model_recipe(args, n_in: int, n_out: int, regression: bool = False) -> tuple[str, dict]:
    """(factory name, keyword arguments) for `jaxnets train --model ...`: only the options given, so the rest are
    the factory's defaults. n_in: features per example (mlp, resnet_mlp); n_out: outputs (classes)."""
    kw = {"activation": args.activation}
    output = output_unit(args, regression)
    if output is not None:
        kw["output"] = output
    if args.model == "mlp":
        kw["sizes"] = list(args.sizes)
    elif args.model == "resnet_mlp":
        kw.update(n_in=n_in, width=args.width, depth=args.depth, classes=n_out)
    else:
        kw["classes"] = n_out
    given = {name: getattr(args, name) for name in ("features", "kernel", "pool", "pooling", "padding", "hidden",
                                                    "blocks", "dropout")}
    kw.update({name: (list(v) if isinstance(v, tuple) else v) for name, v in given.items() if v is not None})
    if "features" in kw and len(kw["features"]) == 1:
        kw["features"] = kw["features"][0]
    if args.batch_norm:
        kw["batch_norm"] = True
    return args.model, kw


def train_model(args, n_in: int, n_out: int, regression: bool = False):
    """(model, loss, recipe) for `jaxnets train`: the --model factory called with `model_recipe`'s arguments."""
    name, kw = model_recipe(args, n_in, n_out, regression)
    return getattr(models, name)(**kw), losses.get(args.loss), (name, kw)


def input_shape(args, kind: str = "mlp") -> tuple:
    return CNN_INPUT if kind == "cnn" else (args.sizes[0],)


def build_penalty(args, n: int):
    if args.penalty == "none":
        return None
    return (losses.l2 if args.penalty == "l2" else losses.l1)(args.lmbda, n)


def _schedule(args, lr: float, steps_per_epoch: int):
    """(learning rate or schedule, its description) for --schedule, counted in updates."""
    from jaxnets import optim

    total = max(1, steps_per_epoch * args.epochs)
    if args.schedule == "cosine":
        return optim.cosine_decay_schedule(lr, total), f"cosine from {lr} over {total} updates"
    if args.schedule == "warmup_cosine":
        warm = min(args.warmup_epochs * steps_per_epoch, total)
        return (optim.warmup_cosine_decay_schedule(0.0, lr, warm, total),
                f"warm-up to {lr} over {warm} updates, cosine to 0 at {total}")
    if args.schedule == "exponential":
        return (optim.exponential_decay(lr, steps_per_epoch, args.decay_rate),
                f"{lr} x {args.decay_rate}^epoch")
    if args.schedule == "piecewise":
        table = {epoch * steps_per_epoch: factor for epoch, factor in sorted(args.boundaries.items())}
        return (optim.piecewise_constant_schedule(lr, table),
                f"{lr}, x" + ", x".join(f"{f} after epoch {e}" for e, f in sorted(args.boundaries.items())))
    return lr, str(lr)


def build_optimizer(args, steps_per_epoch: int = 1):
    """(GradientTransformation, description): --optimizer with its options, the learning rate (default: the API's
    for the name) under --schedule, after --clip-norm / --clip-value."""
    from jaxnets import optim

    name = args.optimizer
    base = args.learning_rate if args.learning_rate is not None else default_learning_rate(name)
    lr, lr_desc = _schedule(args, base, steps_per_epoch)
    eps = {} if args.eps is None else {"eps": args.eps}
    if name in ("sgd", "momentum", "nesterov"):
        momentum = args.momentum if args.momentum is not None else (None if name == "sgd" else 0.9)
        tx = optim.sgd(lr, momentum=momentum, nesterov=name == "nesterov")
        extra = (f", momentum={momentum}" if momentum else "") + (", nesterov" if name == "nesterov" else "")
        tx, desc = tx, f"sgd(lr={lr_desc}{extra})"
    elif name == "adagrad":
        tx, desc = optim.adagrad(lr, **eps), f"adagrad(lr={lr_desc})"
    elif name == "rmsprop":
        tx = optim.rmsprop(lr, decay=args.decay, momentum=args.momentum, **eps)
        desc = f"rmsprop(lr={lr_desc}, decay={args.decay})"
    elif name == "adam":
        tx, desc = optim.adam(lr, b1=args.b1, b2=args.b2, **eps), f"adam(lr={lr_desc}, b1={args.b1}, b2={args.b2})"
    else:
        tx = optim.adamw(lr, b1=args.b1, b2=args.b2, weight_decay=args.weight_decay, **eps)
        desc = f"adamw(lr={lr_desc}, weight_decay={args.weight_decay})"
    clips = []
    if getattr(args, "clip_value", None) is not None:
        clips.append((optim.clip(args.clip_value), f"clip({args.clip_value})"))
    if getattr(args, "clip_norm", None) is not None:
        clips.append((optim.clip_by_global_norm(args.clip_norm), f"clip_by_global_norm({args.clip_norm})"))
    if clips:
        tx = optim.chain(*(c for c, _ in clips), tx)
        desc = " -> ".join([d for _, d in clips] + [desc])
    return tx, desc


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """Updates per epoch over n examples."""
    return max(1, n // batch_size if drop_last else math.ceil(n / batch_size))


def gradcheck_targets(args, key):
    """Random integer labels for the gradient check (0/1 with a single output unit)."""
    classes = 2 if args.sizes[-1] == 1 else args.sizes[-1]
    return jax.random.randint(key, (args.batch,), 0, classes)


def gradcheck_problem(args):
    """(model, loss, params, state, x, y, ctx) for `jaxnets gradcheck`: a fresh model, x ~ N(0, 1) and random
    labels, in float64 when x64 is on."""
    from jaxnets.core import Ctx

    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    model, loss = build_model(args, kind=args.model)
    k_init, k_x, k_y, k_ctx = jax.random.split(jax.random.key(args.seed), 4)
    _, params, state = model.init(k_init, input_shape(args, args.model))
    x = jax.random.normal(k_x, (args.batch,) + input_shape(args, args.model), dtype)
    return (model, loss, cast_floats(params, dtype), cast_floats(state, dtype), x, gradcheck_targets(args, k_y),
            Ctx(not args.eval, k_ctx))
