"""Checks across the `jaxnets` command's arguments, run before any work: a flag that the other choices would
ignore, a loss undefined on the output unit, an output path that cannot be written, a missing companion option.
Each is a usage error (exit status 2) naming the flag, the problem and the fix."""
from __future__ import annotations

import importlib.util
import inspect
import os
from typing import Callable, NamedTuple

import jax
import numpy as np

from jaxnets import losses, models
from jaxnets.cli.build import gradcheck_targets, output_unit

__all__ = ["check_train_args", "check_gradcheck_args", "check_evaluate_args", "check_predict_args",
           "check_loss_and_output", "check_loss_targets", "output_path_problem", "directory_problem", "DEFAULTS"]

# The values of conditional options that were not given (see jaxnets.cli.arguments).
DEFAULTS = {"b1": 0.9, "b2": 0.999, "decay": 0.9, "weight_decay": 1e-4, "lmbda": 0.0, "checkpoint_every": 1,
            "gradcheck_batch": 8, "warmup_epochs": 1, "decay_rate": 0.95, "width": 30, "depth": 5}
# The factory behind each --model, whose signature gives the CLI's defaults (activation, features, ...).
FACTORIES = {"mlp": models.mlp, "bn": models.mlp, "cnn": models.cnn, "cnn2": models.cnn2,
             "resnet_mlp": models.resnet_mlp, "resnet_cnn": models.resnet_cnn}


def factory_default(model: str, name: str):
    """The default of argument `name` of the --model's factory in jaxnets.models (the API's default)."""
    return inspect.signature(FACTORIES[model]).parameters[name].default


# ------------------------------------------------------------------------------ cross-argument checks
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
        outputs = f"--sizes {','.join(map(str, args.sizes))}" if getattr(args, "model", "mlp") in ("mlp", "bn") \
            else f"{output_shape[-1]} output units"
        args.parser.error(f"--loss {args.loss} with {outputs}: {err}")


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


# ------------------------------------------------------------------------------ flags that would be ignored
class Rule(NamedTuple):
    """`flag` (stored as `dest`) is used only when `applies(args)`: with `needs`; `unused(args)` names the choice
    that leaves it unused."""

    flag: str
    dest: str
    applies: Callable
    needs: str
    unused: Callable


_MOMENTUM_OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop")
_ADAPTIVE = ("adagrad", "rmsprop", "adam", "adamw")


def _optimizer_rule(flag: str, dest: str, optimizers: tuple) -> Rule:
    return Rule(flag, dest, lambda a: a.optimizer in optimizers, "--optimizer " + " or ".join(optimizers),
                lambda a: f"--optimizer {a.optimizer}")


def _model_rule(flag: str, dest: str, kinds: tuple) -> Rule:
    return Rule(flag, dest, lambda a: a.model in kinds, "--model " + " or ".join(kinds), lambda a: f"--model {a.model}")


def _schedule_rule(flag: str, dest: str, schedule: str) -> Rule:
    return Rule(flag, dest, lambda a: a.schedule == schedule, f"--schedule {schedule}",
                lambda a: f"--schedule {a.schedule}")


def _dataset_kind(name: str) -> str | None:
    """"idx", "bundled" or "synthetic" for a known dataset name as written, None for any other spelling."""
    from jaxnets import data

    return {row.name: row.kind for row in data.datasets()}.get(name.strip().lower().replace("_", "-"))


_PENALTY_RULE = Rule("--lmbda", "lmbda", lambda a: a.penalty != "none", "a weight penalty: add --penalty l2 (or l1)",
                     lambda a: "--penalty none")
_NO_CHECKPOINTS = lambda a: "no --checkpoint-dir"   # noqa: E731
_CNNS = ("cnn", "cnn2")
TRAIN_RULES = (
    _model_rule("--sizes", "sizes", ("mlp",)),
    _model_rule("--features", "features", _CNNS + ("resnet_cnn",)),
    *(_model_rule(f"--{name}", name, _CNNS) for name in ("kernel", "pool", "pooling", "padding", "hidden")),
    _model_rule("--width", "width", ("resnet_mlp",)),
    _model_rule("--depth", "depth", ("resnet_mlp",)),
    _model_rule("--blocks", "blocks", ("resnet_cnn",)),
    _model_rule("--dropout", "dropout", ("mlp",) + _CNNS),
    _model_rule("--batch-norm", "batch_norm", ("mlp", "resnet_mlp") + _CNNS),
    _optimizer_rule("--momentum", "momentum", _MOMENTUM_OPTIMIZERS),
    _optimizer_rule("--b1", "b1", ("adam", "adamw")),
    _optimizer_rule("--b2", "b2", ("adam", "adamw")),
    _optimizer_rule("--eps", "eps", _ADAPTIVE),
    _optimizer_rule("--decay", "decay", ("rmsprop",)),
    _optimizer_rule("--weight-decay", "weight_decay", ("adamw",)),
    _schedule_rule("--warmup-epochs", "warmup_epochs", "warmup_cosine"),
    _schedule_rule("--decay-rate", "decay_rate", "exponential"),
    _schedule_rule("--boundaries", "boundaries", "piecewise"),
    _PENALTY_RULE,
    Rule("--checkpoint-every", "checkpoint_every", lambda a: a.checkpoint_dir is not None, "--checkpoint-dir DIR",
         _NO_CHECKPOINTS),
    Rule("--overwrite", "overwrite", lambda a: a.checkpoint_dir is not None, "--checkpoint-dir DIR", _NO_CHECKPOINTS),
    Rule("--gradcheck-batch", "gradcheck_batch", lambda a: a.gradcheck, "--gradcheck", lambda a: "no --gradcheck"),
    Rule("--data-dir", "data_dir", lambda a: _dataset_kind(a.dataset) in ("idx", None),
         "an IDX dataset (--dataset mnist or fashion-mnist)", lambda a: f"--dataset {a.dataset}"),
)
_BUILT_IN = lambda a: a.target is None   # noqa: E731
_A_TARGET = lambda a: f"the layer {a.target}"   # noqa: E731
GRADCHECK_RULES = (
    _PENALTY_RULE,
    Rule("--input-shape", "input_shape", lambda a: a.target is not None, "your own layer (MODULE:LAYER)",
         lambda a: f"--model {a.model}"),
    *(Rule(flag, dest, _BUILT_IN, "a built-in --model (your layer is checked alone, without a loss)", _A_TARGET)
      for flag, dest in (("--model", "model"), ("--sizes", "sizes"), ("--activation", "activation"),
                         ("--loss", "loss"), ("--output", "output"), ("--penalty", "penalty"), ("--x64", "x64"))),
    Rule("--allow-autodiff", "allow_autodiff", lambda a: a.target is not None, "your own layer (MODULE:LAYER)",
         lambda a: f"--model {a.model}"),
    Rule("--eval", "eval", lambda a: a.target is not None or a.model == "bn", "--model bn or your own layer (mlp "
         "and cnn compute the same in training and evaluation mode)", lambda a: f"--model {a.model}"),
)


def _parsed_default(parser, dest: str):
    """The value an option takes when not given (argparse converts a string default with the option's type)."""
    default = parser.get_default(dest)
    for action in parser._actions:
        if action.dest == dest and isinstance(default, str) and action.type is not None:
            return action.type(default)
    return default


def check_no_ignored_flags(args, rules) -> None:
    """Usage error naming the first flag given where nothing uses it (e.g. --momentum with --optimizer adam). A
    flag counts as given when its value differs from the parser's default."""
    for rule in rules:
        value = getattr(args, rule.dest)
        if value is None or value is False or rule.applies(args) or value == _parsed_default(args.parser, rule.dest):
            continue
        shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        given = rule.flag if value is True else f"{rule.flag} {shown}"
        args.parser.error(f"{given} would be ignored with {rule.unused(args)}: it applies only with {rule.needs}; "
                          f"drop {rule.flag} or change the other choice")


def check_penalty_strength(args) -> None:
    if args.penalty != "none" and not args.lmbda:
        args.parser.error(f"--penalty {args.penalty} needs its strength --lmbda λ > 0 (e.g. --lmbda 0.1); without it "
                          "the penalty would be zero")


def fill_defaults(args) -> None:
    """The documented value of each conditional option that was not given (after the checks above); the
    activation is the model factory's default."""
    for dest, value in DEFAULTS.items():
        if getattr(args, dest, False) is None:
            setattr(args, dest, value)
    if getattr(args, "activation", False) is None and getattr(args, "model", None) in FACTORIES:
        args.activation = factory_default(args.model, "activation")


def _check_paths(args, checks) -> None:
    for flag, path, why in checks:
        problem = path is not None and why(path)
        if problem:
            args.parser.error(f"{flag} {path}: {problem}")


def check_train_args(args) -> None:
    error = args.parser.error
    check_no_ignored_flags(args, TRAIN_RULES)
    check_penalty_strength(args)
    _check_paths(args, (("--metrics-out", args.metrics_out, output_path_problem),
                        ("--plot-out", args.plot_out, output_path_problem),
                        ("--save", args.save, output_path_problem),
                        ("--checkpoint-dir", args.checkpoint_dir, directory_problem)))
    if args.save is not None and not args.save.lower().endswith(".npz"):
        error(f"--save {args.save}: a saved model is one .npz file; end the name with .npz")
    if args.metrics_out and not args.metrics_out.lower().endswith((".json", ".csv")):
        error(f"--metrics-out {args.metrics_out}: the history is written as JSON or CSV, chosen by the name; end it "
              "with .json or .csv")
    if args.plot_out is not None and importlib.util.find_spec("matplotlib") is None:
        error("--plot-out needs matplotlib, which is not installed: pip install matplotlib, or drop --plot-out")
    if args.early_stopping is not None and args.val_fraction == 0:
        error("--early-stopping needs a validation split; set --val-fraction > 0 (e.g. 0.1)")
    if args.resume and args.checkpoint_dir is None:
        error("--resume continues from --checkpoint-dir; pass --checkpoint-dir DIR")
    if args.schedule == "piecewise" and args.boundaries is None:
        error("--schedule piecewise needs --boundaries EPOCH:FACTOR,... (e.g. --boundaries 20:0.1,40:0.1)")
    if args.model == "resnet_cnn" and args.batch_norm:
        error("--batch-norm: resnet_cnn always has BatchNorm in its blocks; drop --batch-norm")
    fill_defaults(args)
    if args.schedule == "warmup_cosine" and args.warmup_epochs >= args.epochs:
        error(f"--warmup-epochs {args.warmup_epochs} leaves no epoch for the cosine decay with --epochs "
              f"{args.epochs}; use fewer warm-up epochs (default 1) or more epochs")
    check_loss_and_output(args)


def check_gradcheck_args(args) -> None:
    check_no_ignored_flags(args, GRADCHECK_RULES)
    if args.target is not None:
        if args.input_shape is None:
            args.parser.error(f"{args.target} needs --input-shape: the per-example shape of its input without the "
                              "batch axis, e.g. --input-shape 6 or --input-shape 8,8,1")
        if ":" not in args.target or not all(args.target.rpartition(":")[::2]):
            args.parser.error(f"MODULE:LAYER {args.target!r}: name the module and the layer separated by a colon, "
                              "e.g. my_layers:MyLayer or path/to/my_layers.py:MyLayer")
        fill_defaults(args)
        return
    check_penalty_strength(args)
    fill_defaults(args)
    if args.model == "bn" and args.batch < 2 and not args.eval:
        args.parser.error(f"--batch {args.batch}: --model bn in training mode normalises by batch statistics, which "
                          "one example makes degenerate (zero variance); use --batch 2 or more, or --eval")
    check_loss_and_output(args)
    check_loss_targets(args, (args.batch, args.sizes[-1]), gradcheck_targets(args, jax.random.key(0)))


def _input_file_problem(path: str, kinds: tuple) -> str | None:
    if not os.path.exists(path):
        return f"no such file; give the path of an existing {' or '.join(kinds)} file"
    if os.path.isdir(path):
        return f"{path} is a directory; give a {' or '.join(kinds)} file"
    if not path.lower().endswith(kinds):
        return f"the format is chosen by the name; give a {' or '.join(kinds)} file"
    return None


def check_evaluate_args(args) -> None:
    _check_paths(args, (("RUN", args.run, lambda p: _input_file_problem(p, (".npz",))),
                        ("--data", args.data, lambda p: _input_file_problem(p, (".npz",)))))
    if args.data is not None and (args.dataset is not None or args.data_dir is not None or args.split != "test"):
        args.parser.error("--data FILE.npz replaces the dataset: drop --dataset, --data-dir and --split, or drop "
                          "--data")


def check_predict_args(args) -> None:
    _check_paths(args, (("RUN", args.run, lambda p: _input_file_problem(p, (".npz",))),
                        ("--input", args.input, lambda p: _input_file_problem(p, (".npy", ".npz", ".csv"))),
                        ("--output", args.output, output_path_problem)))
    if args.output is not None and not args.output.lower().endswith((".npy", ".csv", ".txt")):
        args.parser.error(f"--output {args.output}: the format is chosen by the name; end it with .npy, .csv or "
                          ".txt (or drop --output to print the predictions)")
