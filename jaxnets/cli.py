"""The `jaxnets` command: `jaxnets train`, `jaxnets gradcheck`, `jaxnets datasets`.

    jaxnets train --dataset digits --sizes 64,30,10 --activation sigmoid --loss softmax_cross_entropy \\
        --optimizer sgd --learning-rate 0.5 --momentum 0.9 --batch-size 32 --epochs 60 --gradcheck
    jaxnets gradcheck --model cnn --activation tanh --loss quadratic --x64        # exit status 1 on a mismatch
    jaxnets datasets

Every argument is checked before anything runs: a malformed value, a combination that cannot work (a loss
whose cost is undefined on the chosen output unit, an output file inside a regular file, ...) is a usage error
naming the flag. Exit status: 0 success, 1 a failed gradient check or diverged training, 2 bad arguments or data.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import losses, models

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.1, "rmsprop": 1e-3, "adam": 1e-3,
              "adamw": 1e-3}
# output units whose values lie in (0, 1): the only ones a cross-entropy on probabilities is defined for
GRADCHECK_MODELS = ("mlp", "cnn", "bn")
CNN_INPUT = (8, 8, 1)
MAX_SEED = 2**63 - 1


# -------------------------------------------------------------------------------------- argument types
# Each raises argparse.ArgumentTypeError, which argparse prints as "argument --flag: <message>" with the usage.
def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), got {text!r}")
    return value


def seed(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer between 0 and 2**63 - 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1): validation fraction, momentum, Adam's b1/b2, RMSprop's decay."""
    value = _number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1) (0 included, 1 excluded), got {text!r}")
    return value


def sizes(text: str) -> list[int]:
    """Comma-separated layer sizes, at least two, every entry a positive int."""
    entries = [s.strip() for s in text.split(",")]
    for i, entry in enumerate(entries, 1):
        if not entry:
            raise argparse.ArgumentTypeError(f"entry {i} of {text!r} is empty; write comma-separated positive "
                                             "ints like 64,30,10")
        if not entry.isdigit() or int(entry) < 1:
            raise argparse.ArgumentTypeError(f"entry {i} of {text!r} is {entry!r}, not a positive int; write "
                                             "comma-separated positive ints like 64,30,10")
    if len(entries) < 2:
        raise argparse.ArgumentTypeError(f"needs two or more sizes (inputs,...,outputs) like 64,30,10, got {text!r}")
    return [int(s) for s in entries]


# ------------------------------------------------------------------------------------------------ parser
class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: ...)" after each option's help, except for flags and options whose default is None
    (their help says what happens without them)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=sizes, default="64,30,10", help="layer sizes n_in,h1,...,n_out")
    p.add_argument("--activation", default="sigmoid", choices=("sigmoid", "tanh", "relu", "identity"),
                   help="hidden-layer activation")
    p.add_argument("--loss", default="softmax_cross_entropy", choices=tuple(losses.LOSSES), help="the cost")
    p.add_argument("--output", default="auto", choices=("auto", "none", "softmax", "sigmoid", "identity"),
                   help="output unit; auto: logits for losses on logits, sigmoid for binary_cross_entropy, "
                        "the hidden activation for quadratic (identity for regression)")
    p.add_argument("--penalty", default="none", choices=("none", "l2", "l1"), help="weight penalty")
    p.add_argument("--lmbda", type=non_negative_float, default=0.0,
                   help="penalty strength λ (cost += λ/2n Σw² or λ/n Σ|w|)")
    p.add_argument("--seed", type=seed, default=0, help="seeds initialisation, data split and shuffling")


def _train_parser(sub) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train a fully connected network and report test accuracy",
                       formatter_class=HelpFormatter)
    t.add_argument("--dataset", default="digits", help="see `jaxnets datasets` (digits is bundled)")
    t.add_argument("--data-dir", default=None, help="directory holding IDX files (mnist, fashion-mnist)")
    _model_args(t)
    t.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS, help="the update rule")
    t.add_argument("--learning-rate", type=positive_float, default=None,
                   help="default: 0.1 (sgd, momentum, nesterov, adagrad), 1e-3 (rmsprop, adam, adamw)")
    t.add_argument("--momentum", type=fraction, default=None,
                   help="momentum in [0, 1) for sgd and rmsprop (default: 0.9 for momentum and nesterov, else none)")
    t.add_argument("--b1", type=fraction, default=0.9, help="adam's and adamw's first-moment decay")
    t.add_argument("--b2", type=fraction, default=0.999, help="adam's and adamw's second-moment decay")
    t.add_argument("--eps", type=positive_float, default=None, help="adaptive optimizers' epsilon (default: optax's)")
    t.add_argument("--decay", type=fraction, default=0.9, help="rmsprop's decay")
    t.add_argument("--weight-decay", type=non_negative_float, default=1e-4, help="adamw's decoupled weight decay")
    t.add_argument("--batch-size", type=positive_int, default=32, help="examples per update")
    t.add_argument("--epochs", type=positive_int, default=30, help="passes over the training set")
    t.add_argument("--gradients", default="manual", choices=("manual", "autodiff"),
                   help="hand-written backprop or jax.grad")
    t.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="fraction of the training set held out for validation (0: none)")
    t.add_argument("--early-stopping", type=positive_int, default=None, metavar="PATIENCE",
                   help="stop when validation loss has not improved for PATIENCE epochs; restore the best params")
    t.add_argument("--drop-last", action="store_true", help="skip the last partial batch of each epoch")
    t.add_argument("--checkpoint-dir", default=None, help="write a checkpoint there every --checkpoint-every epochs")
    t.add_argument("--checkpoint-every", type=positive_int, default=1, help="epochs between checkpoints")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --checkpoint-dir")
    t.add_argument("--overwrite", action="store_true", help="replace the checkpoints of another run in "
                   "--checkpoint-dir (by default they are an error, so that no run is lost)")
    t.add_argument("--metrics-out", default=None, help="write the per-epoch history (.json or .csv)")
    t.add_argument("--plot-out", default=None, help="write learning curves (.png; needs matplotlib)")
    t.add_argument("--gradcheck", action="store_true", help="after training, check every layer's manual gradients "
                   "against autodiff and finite differences on a few test examples")
    t.add_argument("--gradcheck-batch", type=positive_int, default=8, help="test examples for --gradcheck")
    t.add_argument("--verbose", action="store_true", help="print one line per epoch")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(parser=t)
    return t


def _gradcheck_parser(sub) -> argparse.ArgumentParser:
    g = sub.add_parser("gradcheck", help="check every layer's hand-written gradients against autodiff and finite "
                       "differences", formatter_class=HelpFormatter)
    g.add_argument("--model", default="mlp", choices=GRADCHECK_MODELS,
                   help="mlp: --sizes; bn: the same with BatchNorm after each hidden Dense; cnn: a small conv net "
                        "on 8x8x1 images (conv 4x3x3, 2x2 max-pool, dense 16) with the last of --sizes as outputs")
    _model_args(g)
    g.add_argument("--batch", type=positive_int, default=8, help="examples in the random batch")
    g.add_argument("--eval", action="store_true", help="check evaluation mode (BatchNorm uses its running "
                   "statistics) instead of training mode")
    g.add_argument("--x64", action="store_true", help="compute manual and autodiff gradients in float64")
    g.add_argument("--rtol", type=non_negative_float, default=None,
                   help="manual~autodiff tolerance (default: 1e-4 in float32, 1e-10 with --x64)")
    g.add_argument("--fd-rtol", type=non_negative_float, default=1e-6,
                   help="tolerance against finite differences (computed in float64)")
    g.set_defaults(parser=g)
    return g


def build_parser() -> argparse.ArgumentParser:
    import jaxnets

    parser = argparse.ArgumentParser(prog="jaxnets", formatter_class=HelpFormatter,
                                     description="Functional deep learning in JAX with hand-written backprop "
                                                 "verified against autodiff.")
    parser.add_argument("--version", action="version", version=f"jaxnets {jaxnets.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _gradcheck_parser(sub)
    d = sub.add_parser("datasets", help="list the known datasets and whether each is available offline",
                       formatter_class=HelpFormatter)
    d.set_defaults(parser=d)
    return parser


# ------------------------------------------------------------------------------ cross-argument checks
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


def check_loss_and_output(args, regression: bool = False) -> None:
    """Usage error when the loss is undefined on what the output unit produces."""
    loss, unit = losses.get(args.loss), output_unit(args, regression)
    if loss.on_probabilities and (unit is None or models.OUTPUTS[unit].meta.outputs != "probabilities"):
        produces = "raw scores (logits)" if unit is None else f"{unit} outputs"
        on_logits = sorted(name for name, other in losses.LOSSES.items() if other.on_logits)
        args.parser.error(f"--output {args.output} gives {produces}, which can leave (0, 1), but --loss {args.loss} "
                          f"takes probabilities (its cost is undefined outside (0, 1)); use --output sigmoid (or "
                          f"auto), or a loss on logits ({', '.join(on_logits)})")


def check_loss_targets(args, output_shape: tuple, targets) -> None:
    """Usage error when the loss cannot make sense of these outputs and targets (loss.check)."""
    loss = losses.get(args.loss)
    if loss.check is None:
        return
    try:
        loss.check(tuple(output_shape), np.asarray(targets))
    except ValueError as err:
        args.parser.error(f"--loss {args.loss} with --sizes {','.join(map(str, args.sizes))}: {err}")


def _ancestor_problem(path: str) -> str | None:
    """Why `path` cannot be created (None when it can): its nearest existing ancestor is not a writable
    directory."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is not a directory, so {path} cannot be created inside it; choose another path"
    if not os.access(parent, os.W_OK):
        return f"the directory {parent} is not writable; choose another path"
    return None


def output_path_problem(path: str) -> str | None:
    """Why a file cannot be written at `path` (None when it can)."""
    if not path:
        return "the path is empty; give a file name"
    if os.path.isdir(path):
        return f"{path} is a directory; give a file name inside it"
    return _ancestor_problem(path)


def directory_problem(path: str) -> str | None:
    """Why a directory cannot be used or created at `path` (None when it may; fit checks the rest)."""
    if not path:
        return "the path is empty; give a directory name"
    if os.path.lexists(path):
        return None if os.path.isdir(path) else f"{path} exists and is not a directory; choose another path"
    return _ancestor_problem(path)


def check_train_args(args) -> None:
    error = args.parser.error
    for flag, path, why in (("--metrics-out", args.metrics_out, output_path_problem),
                            ("--plot-out", args.plot_out, output_path_problem),
                            ("--checkpoint-dir", args.checkpoint_dir, directory_problem)):
        problem = path is not None and why(path)
        if problem:
            error(f"{flag} {path}: {problem}")
    if args.plot_out is not None and importlib.util.find_spec("matplotlib") is None:
        error("--plot-out needs matplotlib, which is not installed: pip install matplotlib, or drop --plot-out")
    if args.early_stopping is not None and args.val_fraction == 0:
        error("--early-stopping needs a validation split; set --val-fraction > 0 (e.g. 0.1)")
    if args.resume and args.checkpoint_dir is None:
        error("--resume continues from --checkpoint-dir; pass --checkpoint-dir DIR")
    check_loss_and_output(args)


def check_gradcheck_args(args) -> None:
    if args.model == "bn" and args.batch < 2 and not args.eval:
        args.parser.error(f"--batch {args.batch}: --model bn in training mode normalises by batch statistics, which "
                          "one example makes degenerate (zero variance); use --batch 2 or more, or --eval")
    check_loss_and_output(args)
    check_loss_targets(args, (args.batch, args.sizes[-1]), gradcheck_targets(args, jax.random.key(0)))


# ---------------------------------------------------------------------------------------------- builders
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


def gradcheck_tables(model, loss, params, state, x, y, penalty=None, *, show_x64: bool = True):
    """[(label, report)] of `check_model` (every layer in place) for the params as they are and, if `show_x64`,
    cast to float64. The finite-difference columns are float64 either way, so with `show_x64` they are computed
    once, in the float64 table."""
    from jaxnets import gradcheck

    reports = [("float32", gradcheck.check_model(model, loss, params, state, x, y, penalty=penalty,
                                                 finite_diff=not show_x64))]
    if show_x64:
        with jax.enable_x64(True):
            cast = gradcheck.as_float64
            reports.append(("float64", gradcheck.check_model(model, loss, cast(params), cast(state), cast(x), y,
                                                             penalty=penalty)))
    return reports


def check_failure(report, rtol=None, fd_rtol=None) -> str | None:
    """None when `report` passes, else assert_close's message (its first line names the layer)."""
    try:
        report.assert_close(rtol, fd_rtol)
    except AssertionError as err:
        return str(err)
    return None


def _verdict(failures: list[str], passed: str) -> str:
    if not failures:
        return f"gradient check: {passed}"
    return "gradient check: FAILED\n  " + "\n  ".join("\n  ".join(f.splitlines()) for f in failures)


# ------------------------------------------------------------------------------------------------ commands
def _check_sizes_fit(args, ds) -> None:
    features = ds.x_train.shape[1]
    if features != args.sizes[0]:
        args.parser.error(f"--sizes starts with {args.sizes[0]} inputs but {args.dataset} has {features} features; "
                          f"use --sizes {features},...")
    classes = len(ds.classes) if ds.classes else 0
    if classes and args.sizes[-1] != classes and not (args.sizes[-1] == 1 and classes == 2):
        args.parser.error(f"--sizes ends with {args.sizes[-1]} outputs but {args.dataset} has {classes} classes; "
                          f"end --sizes with {classes}")


def _print_result(result, h, model, tx_desc, args, penalty, elapsed) -> None:
    n_params = sum(int(np.size(a)) for a in jax.tree_util.tree_leaves(result.params))
    print(f"model {model.name} ({n_params:,} params), {tx_desc}, batch {args.batch_size}, "
          f"{args.gradients} gradients" + (f", {penalty.name} penalty" if penalty else ""))
    fresh = h.rows[result.resumed_from:]
    first = f", first epoch with compilation {fresh[0]['time']:.1f} s" if fresh else ""
    resumed = f", resumed after epoch {result.resumed_from}" if result.resumed_from else ""
    print(f"trained {len(fresh)} epochs in {elapsed:.1f} s{first}{resumed}"
          + (f"; stopped early ({result.stop_reason}), params of best epoch {result.best_epoch} restored"
             if result.stop_reason == "early_stopping" else ""))
    if len(h):
        last = h[-1]
        line = f"epoch {last['epoch']}: train loss {last['train_loss']:.4f}"
        if last.get("train_accuracy") is not None:
            line += f", accuracy {last['train_accuracy']:.4f}"
        if last.get("val_loss") is not None:
            line += f" | validation loss {last['val_loss']:.4f}"
            if last.get("val_accuracy") is not None:
                line += f", accuracy {last['val_accuracy']:.4f}"
        print(line + (f" | best epoch {result.best_epoch}" if result.best_epoch else ""))


def _train_gradcheck(args, model, loss, result, ds, penalty) -> int:
    m = min(args.gradcheck_batch, ds.x_test.shape[0])
    reports = gradcheck_tables(model, loss, result.params, result.state, jnp.asarray(ds.x_test[:m]),
                               jnp.asarray(ds.y_test[:m]), penalty)
    print(f"\ngradient check of the trained network, every layer in place, on {m} test examples:")
    for _, report in reports:
        print(str(report))
    failures = [f"{label}: {failure}" for label, report in reports if (failure := check_failure(report))]
    print(_verdict(failures, "PASSED (manual = autodiff = finite differences)"))
    return 1 if failures else 0


def cmd_train(args) -> int:
    from jaxnets import data
    from jaxnets.summary import summary
    from jaxnets.training import (CheckpointDirError, CheckpointWriteError, EarlyStopping, TrainingDivergedError,
                                  evaluate, fit, plot_history)

    ds = data.load(args.dataset, flatten=True, **({"data_dir": args.data_dir} if args.data_dir else {}))
    _check_sizes_fit(args, ds)
    regression = not ds.classes
    x_train, y_train, val = ds.x_train, ds.y_train, None
    if args.val_fraction > 0:
        x_train, y_train, xv, yv = data.train_val_split(ds.x_train, ds.y_train, args.val_fraction, seed=args.seed)
        val = (xv, yv)
    model, loss = build_model(args, regression)
    check_loss_targets(args, (x_train.shape[0], args.sizes[-1]), y_train)
    penalty = build_penalty(args, x_train.shape[0])
    tx, tx_desc = build_optimizer(args)
    n_val = 0 if val is None else val[0].shape[0]
    print(f"dataset {args.dataset}: {x_train.shape[0]} train / {n_val} validation / {ds.x_test.shape[0]} test "
          f"examples" + (f", {len(ds.classes)} classes" if ds.classes else " (regression)"))
    print(summary(model, input_shape(args)))
    early = EarlyStopping(args.early_stopping) if args.early_stopping else None
    t0 = time.perf_counter()
    try:
        result = fit(model, loss, tx, (x_train, y_train), epochs=args.epochs, batch_size=args.batch_size,
                     key=jax.random.key(args.seed), val_data=val, gradients=args.gradients, penalty=penalty,
                     early_stopping=early, checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every,
                     resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                     verbose=args.verbose, drop_last=args.drop_last)
    except (TrainingDivergedError, CheckpointWriteError) as err:
        history = err.result.history if getattr(err, "result", None) is not None else None
        if args.metrics_out and history is not None:
            history.save(args.metrics_out)
        print(f"jaxnets train: {err}", file=sys.stderr)
        return 1
    except CheckpointDirError as err:   # in the CLI's words: flags, not keyword arguments
        message = str(err).replace("resume=True", "--resume").replace("overwrite=True", "--overwrite")
        print(f"jaxnets train: error: {message}", file=sys.stderr)
        return 2
    h = result.history
    _print_result(result, h, model, tx_desc, args, penalty, time.perf_counter() - t0)
    if args.metrics_out:
        print(f"history written to {h.save(args.metrics_out)}")
    if args.plot_out:
        path = plot_history(h, args.plot_out, title=f"{args.dataset}: {model.name}", best_epoch=result.best_epoch)
        print(f"learning curves written to {path}")
    test = evaluate(model, loss, result.params, result.state, (ds.x_test, ds.y_test))
    if test["accuracy"] is not None:
        correct = int(round(test["accuracy"] * ds.x_test.shape[0]))
        print(f"test accuracy: {test['accuracy']:.4f} ({correct}/{ds.x_test.shape[0]}), test loss {test['loss']:.4f}")
    else:
        print(f"test loss: {test['loss']:.6f}")
    return _train_gradcheck(args, model, loss, result, ds, penalty) if args.gradcheck else 0


def gradcheck_problem(args):
    """(model, loss, params, state, x, y, ctx) for `jaxnets gradcheck`: a fresh model, x ~ N(0, 1) and random
    labels, in float64 when x64 is on."""
    from jaxnets.core import Ctx

    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    model, loss = build_model(args, kind=args.model)
    k_init, k_x, k_y, k_ctx = jax.random.split(jax.random.key(args.seed), 4)
    _, params, state = model.init(k_init, input_shape(args, args.model))
    x = jax.random.normal(k_x, (args.batch,) + input_shape(args, args.model), dtype)
    return (model, loss, _cast_floats(params, dtype), _cast_floats(state, dtype), x, gradcheck_targets(args, k_y),
            Ctx(not args.eval, k_ctx))


def _cast_floats(tree, dtype):
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def cmd_gradcheck(args) -> int:
    from jaxnets import gradcheck

    with jax.enable_x64(bool(args.x64)):
        model, loss, params, state, x, y, ctx = gradcheck_problem(args)
        report = gradcheck.check_model(model, loss, params, state, x, y, ctx, penalty=build_penalty(args, args.batch))
    mode = "training" if ctx.train else "evaluation"
    print(f"model {model.name}, loss {loss.name}, batch {args.batch}, seed {args.seed}, {mode} mode")
    print(report)
    failure = check_failure(report, args.rtol, args.fd_rtol)
    print(_verdict([failure] if failure else [], "PASSED"))
    return 1 if failure else 0


def cmd_datasets(args) -> int:
    from jaxnets import data

    rows = data.datasets()
    print(f"{'name':<15}{'kind':<11}{'offline':<9}description")
    for r in rows:
        where = f" [{r.location}]" if r.location else ""
        print(f"{r.name:<15}{r.kind:<11}{'yes' if r.offline else 'no':<9}{r.description}{where}")
    return 0


COMMANDS = {"train": (check_train_args, cmd_train), "gradcheck": (check_gradcheck_args, cmd_gradcheck),
            "datasets": (lambda args: None, cmd_datasets)}


def main(argv=None) -> int:
    """Run the command; argument problems exit with status 2 through argparse (usage and the flag, no traceback)."""
    args = build_parser().parse_args(argv)
    check, command = COMMANDS[args.command]
    check(args)
    try:
        return command(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"jaxnets {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
