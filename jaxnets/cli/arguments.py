"""The `jaxnets` command's arguments: their types (each malformed value a usage error naming the flag), the
parsers, and the checks across arguments that run before any work (output paths, loss on output unit, ...)."""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
from typing import Callable, NamedTuple

import jax
import numpy as np

from jaxnets import losses, models
from jaxnets.cli.build import gradcheck_targets, output_unit

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
GRADCHECK_MODELS = ("mlp", "cnn", "bn")
MAX_SEED = 2**63 - 1
# Options that only some other choices use have no parser default (None: not given), so that giving one where it
# would be ignored is a usage error; these are their values when they are not given.
DEFAULTS = {"b1": 0.9, "b2": 0.999, "decay": 0.9, "weight_decay": 1e-4, "lmbda": 0.0, "checkpoint_every": 1,
            "gradcheck_batch": 8}


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
    p.add_argument("--lmbda", type=non_negative_float, default=None,
                   help="penalty strength λ > 0 (cost += λ/2n Σw² or λ/n Σ|w|); needs --penalty")
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
    t.add_argument("--b1", type=fraction, default=None, help="adam's and adamw's first-moment decay (default: 0.9)")
    t.add_argument("--b2", type=fraction, default=None, help="adam's and adamw's second-moment decay (default: 0.999)")
    t.add_argument("--eps", type=positive_float, default=None,
                   help="adagrad's, rmsprop's, adam's and adamw's epsilon (default: optax's)")
    t.add_argument("--decay", type=fraction, default=None, help="rmsprop's decay (default: 0.9)")
    t.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help="adamw's decoupled weight decay (default: 1e-4)")
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
    t.add_argument("--checkpoint-every", type=positive_int, default=None,
                   help="epochs between checkpoints in --checkpoint-dir (default: 1)")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --checkpoint-dir")
    t.add_argument("--overwrite", action="store_true", help="replace the checkpoints of another run in "
                   "--checkpoint-dir (by default they are an error, so that no run is lost)")
    t.add_argument("--metrics-out", default=None, help="write the per-epoch history (.json or .csv)")
    t.add_argument("--plot-out", default=None, help="write learning curves (.png; needs matplotlib)")
    t.add_argument("--gradcheck", action="store_true", help="after training, check every layer's manual gradients "
                   "against autodiff and finite differences on a few test examples")
    t.add_argument("--gradcheck-batch", type=positive_int, default=None,
                   help="test examples for --gradcheck (default: 8)")
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


def _dataset_kind(name: str) -> str | None:
    """"idx", "bundled" or "synthetic" for a known dataset name as written, None for any other spelling."""
    from jaxnets import data

    return {row.name: row.kind for row in data.datasets()}.get(name.strip().lower().replace("_", "-"))


_PENALTY_RULE = Rule("--lmbda", "lmbda", lambda a: a.penalty != "none", "a weight penalty: add --penalty l2 (or l1)",
                     lambda a: "--penalty none")
_NO_CHECKPOINTS = lambda a: "no --checkpoint-dir"   # noqa: E731
TRAIN_RULES = (
    _optimizer_rule("--momentum", "momentum", _MOMENTUM_OPTIMIZERS),
    _optimizer_rule("--b1", "b1", ("adam", "adamw")),
    _optimizer_rule("--b2", "b2", ("adam", "adamw")),
    _optimizer_rule("--eps", "eps", _ADAPTIVE),
    _optimizer_rule("--decay", "decay", ("rmsprop",)),
    _optimizer_rule("--weight-decay", "weight_decay", ("adamw",)),
    _PENALTY_RULE,
    Rule("--checkpoint-every", "checkpoint_every", lambda a: a.checkpoint_dir is not None, "--checkpoint-dir DIR",
         _NO_CHECKPOINTS),
    Rule("--overwrite", "overwrite", lambda a: a.checkpoint_dir is not None, "--checkpoint-dir DIR", _NO_CHECKPOINTS),
    Rule("--gradcheck-batch", "gradcheck_batch", lambda a: a.gradcheck, "--gradcheck", lambda a: "no --gradcheck"),
    Rule("--data-dir", "data_dir", lambda a: _dataset_kind(a.dataset) in ("idx", None),
         "an IDX dataset (--dataset mnist or fashion-mnist)", lambda a: f"--dataset {a.dataset}"),
)
GRADCHECK_RULES = (
    _PENALTY_RULE,
    Rule("--eval", "eval", lambda a: a.model == "bn", "--model bn (mlp and cnn compute the same in training and "
         "evaluation mode)", lambda a: f"--model {a.model}"),
)


def check_no_ignored_flags(args, rules) -> None:
    """Usage error naming the first flag given where nothing uses it (e.g. --momentum with --optimizer adam)."""
    for rule in rules:
        value = getattr(args, rule.dest)
        if value is None or value is False or rule.applies(args):
            continue
        given = rule.flag if value is True else f"{rule.flag} {value}"
        args.parser.error(f"{given} would be ignored with {rule.unused(args)}: it applies only with {rule.needs}; "
                          f"drop {rule.flag} or change the other choice")


def check_penalty_strength(args) -> None:
    if args.penalty != "none" and not args.lmbda:
        args.parser.error(f"--penalty {args.penalty} needs its strength --lmbda λ > 0 (e.g. --lmbda 0.1); without it "
                          "the penalty would be zero")


def fill_defaults(args) -> None:
    """The documented value of each conditional option that was not given (after the checks above)."""
    for dest, value in DEFAULTS.items():
        if getattr(args, dest, False) is None:
            setattr(args, dest, value)


def check_train_args(args) -> None:
    error = args.parser.error
    check_no_ignored_flags(args, TRAIN_RULES)
    check_penalty_strength(args)
    for flag, path, why in (("--metrics-out", args.metrics_out, output_path_problem),
                            ("--plot-out", args.plot_out, output_path_problem),
                            ("--checkpoint-dir", args.checkpoint_dir, directory_problem)):
        problem = path is not None and why(path)
        if problem:
            error(f"{flag} {path}: {problem}")
    if args.metrics_out and not args.metrics_out.lower().endswith((".json", ".csv")):
        error(f"--metrics-out {args.metrics_out}: the history is written as JSON or CSV, chosen by the name; end it "
              "with .json or .csv")
    if args.plot_out is not None and importlib.util.find_spec("matplotlib") is None:
        error("--plot-out needs matplotlib, which is not installed: pip install matplotlib, or drop --plot-out")
    if args.early_stopping is not None and args.val_fraction == 0:
        error("--early-stopping needs a validation split; set --val-fraction > 0 (e.g. 0.1)")
    if args.resume and args.checkpoint_dir is None:
        error("--resume continues from --checkpoint-dir; pass --checkpoint-dir DIR")
    check_loss_and_output(args)
    fill_defaults(args)


def check_gradcheck_args(args) -> None:
    check_no_ignored_flags(args, GRADCHECK_RULES)
    check_penalty_strength(args)
    fill_defaults(args)
    if args.model == "bn" and args.batch < 2 and not args.eval:
        args.parser.error(f"--batch {args.batch}: --model bn in training mode normalises by batch statistics, which "
                          "one example makes degenerate (zero variance); use --batch 2 or more, or --eval")
    check_loss_and_output(args)
    check_loss_targets(args, (args.batch, args.sizes[-1]), gradcheck_targets(args, jax.random.key(0)))
