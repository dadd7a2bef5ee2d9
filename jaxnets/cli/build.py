"""What the command-line arguments build: the model and its loss, the penalty, the optimizer, the gradient
check's problem. Nothing here parses or validates; `jaxnets.cli.arguments` has done that."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets import losses, models
from jaxnets.gradients import cast_floats

DEFAULT_LR = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.1, "rmsprop": 1e-3, "adam": 1e-3,
              "adamw": 1e-3}
CNN_INPUT = (8, 8, 1)


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
    return "identity" if regression else args.activation


def build_model(args, regression: bool = False, kind: str = "mlp"):
    """(model, loss) from the model arguments; kind: "mlp", "bn" (BatchNorm after each hidden Dense) or "cnn"
    (a small conv net on 8x8x1 images with args.sizes[-1] outputs)."""
    output = output_unit(args, regression)
    if kind == "cnn":
        model = models.cnn(features=4, kernel=3, hidden=16, classes=args.sizes[-1], activation=args.activation,
                           output=output)
    else:
        model = models.mlp(list(args.sizes), activation=args.activation, output=output, batch_norm=kind == "bn")
    return model, losses.get(args.loss)


def input_shape(args, kind: str = "mlp") -> tuple:
    return CNN_INPUT if kind == "cnn" else (args.sizes[0],)


def build_penalty(args, n: int):
    if args.penalty == "none":
        return None
    return (losses.l2 if args.penalty == "l2" else losses.l1)(args.lmbda, n)


def build_optimizer(args):
    from jaxnets import optim

    name, lr = args.optimizer, args.learning_rate if args.learning_rate is not None else DEFAULT_LR[args.optimizer]
    eps = {} if args.eps is None else {"eps": args.eps}
    if name in ("sgd", "momentum", "nesterov"):
        momentum = args.momentum if args.momentum is not None else (None if name == "sgd" else 0.9)
        tx = optim.sgd(lr, momentum=momentum, nesterov=name == "nesterov")
        extra = (f", momentum={momentum}" if momentum else "") + (", nesterov" if name == "nesterov" else "")
        return tx, f"sgd(lr={lr}{extra})"
    if name == "adagrad":
        return optim.adagrad(lr, **eps), f"adagrad(lr={lr})"
    if name == "rmsprop":
        tx = optim.rmsprop(lr, decay=args.decay, momentum=args.momentum, **eps)
        return tx, f"rmsprop(lr={lr}, decay={args.decay})"
    if name == "adam":
        return optim.adam(lr, b1=args.b1, b2=args.b2, **eps), f"adam(lr={lr}, b1={args.b1}, b2={args.b2})"
    return (optim.adamw(lr, b1=args.b1, b2=args.b2, weight_decay=args.weight_decay, **eps),
            f"adamw(lr={lr}, weight_decay={args.weight_decay})")


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
