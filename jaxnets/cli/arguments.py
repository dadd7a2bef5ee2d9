"""The `jaxnets` command's parsers: train, evaluate, predict, gradcheck, datasets. The argument types are in
`jaxnets.cli.types`; the checks across arguments, run before any work, in `jaxnets.cli.checks`.

Options that only some choices use (a model's sizes, an optimizer's betas, a schedule's warm-up) have no parser
default (None: not given), so that giving one where it would be ignored is a usage error; their values when not
given come from the API (the model factories' signatures, `jaxnets.optim.names.DEFAULT_LEARNING_RATES`) or from
`checks.DEFAULTS`, and are filled in by the checks.
"""
from __future__ import annotations

import argparse

from jaxnets import losses, models
from jaxnets.cli.types import (epoch_factors, fraction, int_list, non_negative_float, positive_float, positive_int,
                               seed, shape, sizes)

__all__ = ["build_parser", "HelpFormatter", "OPTIMIZERS", "TRAIN_MODELS", "GRADCHECK_MODELS", "SCHEDULES",
           "ACTIVATIONS"]

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
TRAIN_MODELS = ("mlp", "cnn", "cnn2", "resnet_mlp", "resnet_cnn")
GRADCHECK_MODELS = ("mlp", "cnn", "bn")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "exponential", "piecewise")
ACTIVATIONS = tuple(models.ACTIVATIONS)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: ...)" after each option's help, except for flags and options whose default is None
    (their help says what happens without them)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=sizes, default="64,30,10", help="mlp sizes n_in,h1,...,n_out")
    p.add_argument("--activation", default=None, choices=ACTIVATIONS,
                   help="hidden-layer activation (default: the model factory's: sigmoid for mlp, cnn, cnn2; relu for "
                        "resnet_mlp, resnet_cnn)")
    p.add_argument("--loss", default="softmax_cross_entropy", choices=tuple(losses.LOSSES), help="the cost")
    p.add_argument("--output", default="auto", choices=("auto", "none") + tuple(models.OUTPUTS),
                   help="output unit; auto: logits for losses on logits, sigmoid for binary_cross_entropy, "
                        "the hidden activation for quadratic (identity for regression)")
    p.add_argument("--penalty", default="none", choices=("none", "l2", "l1"), help="weight penalty")
    p.add_argument("--lmbda", type=non_negative_float, default=None,
                   help="penalty strength λ > 0 (cost += λ/2n Σw² or λ/n Σ|w|); needs --penalty")
    p.add_argument("--seed", type=seed, default=0, help="seeds initialisation, data split and shuffling")


def _architecture_args(t: argparse.ArgumentParser) -> None:
    a = t.add_argument_group("architecture (defaults: the jaxnets.models factory's)")
    a.add_argument("--features", type=int_list, default=None,
                   help="feature maps per conv stage, comma-separated (cnn: 20, cnn2: 20,40, resnet_cnn: 16,32)")
    a.add_argument("--kernel", type=positive_int, default=None, help="conv kernel size (cnn, cnn2; default 5)")
    a.add_argument("--pool", type=positive_int, default=None, help="pooling window (cnn, cnn2; default 2)")
    a.add_argument("--pooling", default=None, choices=("max", "l2", "avg"), help="pooling kind (cnn, cnn2; default max)")
    a.add_argument("--padding", default=None, choices=("VALID", "SAME"),
                   help="conv padding (cnn, cnn2; default VALID: each conv shrinks the image by kernel - 1)")
    a.add_argument("--hidden", type=positive_int, default=None,
                   help="units of the dense layer after the conv stages (cnn, cnn2; default 100)")
    a.add_argument("--width", type=positive_int, default=None, help="units per hidden layer (resnet_mlp; default 30)")
    a.add_argument("--depth", type=positive_int, default=None, help="hidden layers (resnet_mlp; default 5)")
    a.add_argument("--blocks", type=positive_int, default=None, help="residual blocks per stage (resnet_cnn; default 1)")
    a.add_argument("--dropout", type=fraction, default=None,
                   help="dropout rate in [0, 1) on the inputs of the dense layers after the first (mlp, cnn, cnn2)")
    a.add_argument("--batch-norm", action="store_true",
                   help="BatchNorm after each hidden Dense or Conv2D (mlp, cnn, cnn2, resnet_mlp; resnet_cnn always)")


def _optimizer_args(t: argparse.ArgumentParser) -> None:
    o = t.add_argument_group("optimizer, schedule, clipping")
    o.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS,
                   help="the update rule (momentum and nesterov: sgd with momentum 0.9)")
    o.add_argument("--learning-rate", type=positive_float, default=None,
                   help="the peak learning rate (default: the API's for the optimizer's name, "
                        "jaxnets.optim.names.DEFAULT_LEARNING_RATES: sgd 0.01, adam 1e-3, ...)")
    o.add_argument("--momentum", type=fraction, default=None,
                   help="momentum in [0, 1) for sgd and rmsprop (default: 0.9 for momentum and nesterov, else none)")
    o.add_argument("--b1", type=fraction, default=None, help="adam's and adamw's first-moment decay (default: 0.9)")
    o.add_argument("--b2", type=fraction, default=None, help="adam's and adamw's second-moment decay (default: 0.999)")
    o.add_argument("--eps", type=positive_float, default=None,
                   help="adagrad's, rmsprop's, adam's and adamw's epsilon (default: optax's)")
    o.add_argument("--decay", type=fraction, default=None, help="rmsprop's decay (default: 0.9)")
    o.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help="adamw's decoupled weight decay (default: 1e-4)")
    o.add_argument("--schedule", default="constant", choices=SCHEDULES,
                   help="learning-rate schedule over the whole run: cosine decay to 0, linear warm-up then cosine, "
                        "exponential decay per epoch, or piecewise constant")
    o.add_argument("--warmup-epochs", type=positive_int, default=None,
                   help="warm-up length for --schedule warmup_cosine (default: 1)")
    o.add_argument("--decay-rate", type=positive_float, default=None,
                   help="factor per epoch for --schedule exponential (default: 0.95)")
    o.add_argument("--boundaries", type=epoch_factors, default=None, metavar="EPOCH:FACTOR,...",
                   help="for --schedule piecewise: multiply the learning rate by FACTOR after EPOCH epochs, "
                        "e.g. 20:0.1,40:0.1")
    o.add_argument("--clip-norm", type=positive_float, default=None,
                   help="clip the gradient's global norm to this value before the update")
    o.add_argument("--clip-value", type=positive_float, default=None,
                   help="clip each gradient entry to [-value, value] before the update")


def _train_parser(sub) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train a network on a dataset, report test accuracy, optionally save it",
                       formatter_class=HelpFormatter)
    t.add_argument("--dataset", default="digits", help="see `jaxnets datasets` (digits is bundled)")
    t.add_argument("--data-dir", default=None, help="directory holding IDX files (mnist, fashion-mnist)")
    t.add_argument("--model", default="mlp", choices=TRAIN_MODELS,
                   help="a jaxnets.models factory: mlp (--sizes), cnn and cnn2 (conv-pool stages, then dense), "
                        "resnet_mlp, resnet_cnn; the conv nets take NHWC images")
    _model_args(t)
    _architecture_args(t)
    _optimizer_args(t)
    t.add_argument("--batch-size", type=positive_int, default=32, help="examples per update")
    t.add_argument("--epochs", type=positive_int, default=30, help="passes over the training set")
    t.add_argument("--gradients", default="manual", choices=("manual", "autodiff"),
                   help="hand-written backprop or jax.grad")
    t.add_argument("--val-fraction", type=fraction, default=0.1,
                   help="fraction of the training set held out for validation (0: none)")
    t.add_argument("--early-stopping", type=positive_int, default=None, metavar="PATIENCE",
                   help="stop when validation loss has not improved for PATIENCE epochs; restore the best params")
    t.add_argument("--drop-last", action="store_true", help="skip the last partial batch of each epoch")
    t.add_argument("--save", default=None, metavar="PATH",
                   help="save the trained model (architecture recipe, params, state, preprocessing) to PATH; "
                        "`jaxnets predict PATH` and `jaxnets.load_model(PATH)` need no code")
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


def _saved_run_parsers(sub) -> None:
    e = sub.add_parser("evaluate", help="loss and accuracy of a model saved by `jaxnets train --save`",
                       formatter_class=HelpFormatter)
    e.add_argument("run", metavar="RUN", help="the file written by `jaxnets train --save`")
    e.add_argument("--dataset", default=None, help="evaluate on this dataset's test split (default: the one it "
                   "was trained on)")
    e.add_argument("--data-dir", default=None, help="directory holding IDX files (mnist, fashion-mnist)")
    e.add_argument("--data", default=None, metavar="FILE.npz",
                   help="evaluate on your own arrays instead: an .npz file with arrays x (inputs) and y (labels)")
    e.add_argument("--split", default="test", choices=("test", "train"), help="which split of --dataset")
    e.set_defaults(parser=e)
    p = sub.add_parser("predict", help="run a model saved by `jaxnets train --save` on new inputs",
                       formatter_class=HelpFormatter)
    p.add_argument("run", metavar="RUN", help="the file written by `jaxnets train --save`")
    p.add_argument("--input", required=True, metavar="FILE",
                   help="inputs preprocessed as in training (digits: pixels in [0, 1]): .npy, .npz (array x, or "
                        "its only array) or .csv (one example per row); flat or image-shaped, with a batch axis")
    p.add_argument("--output", default=None, metavar="FILE",
                   help="write the predictions to FILE (.npy, .csv or .txt); default: print one line per example")
    p.add_argument("--outputs", default="classes", choices=("classes", "scores", "probabilities"),
                   help="the predicted class index, the model's raw outputs, or probabilities (softmax or sigmoid "
                        "of logits)")
    p.set_defaults(parser=p)


def _gradcheck_parser(sub) -> argparse.ArgumentParser:
    g = sub.add_parser("gradcheck", help="check hand-written gradients against autodiff and finite differences: "
                       "a built-in model's, or your own layer's", formatter_class=HelpFormatter)
    g.add_argument("target", nargs="?", default=None, metavar="MODULE:LAYER",
                   help="your own layer: a Layer or a zero-argument function returning one, as module:name "
                        "(imported from the current directory) or path/to/file.py:name; needs --input-shape")
    g.add_argument("--input-shape", type=shape, default=None,
                   help="per-example input shape of MODULE:LAYER, without the batch axis: 6 or 8,8,1")
    g.add_argument("--model", default="mlp", choices=GRADCHECK_MODELS,
                   help="mlp: --sizes; bn: the same with BatchNorm after each hidden Dense; cnn: a small conv net "
                        "on 8x8x1 images (conv 4x3x3, 2x2 max-pool, dense 16) with the last of --sizes as outputs")
    _model_args(g)
    g.add_argument("--batch", type=positive_int, default=8, help="examples in the random batch")
    g.add_argument("--eval", action="store_true", help="check evaluation mode (BatchNorm uses its running "
                   "statistics) instead of training mode")
    g.add_argument("--x64", action="store_true", help="compute manual and autodiff gradients in float64")
    g.add_argument("--allow-autodiff", action="store_true",
                   help="check MODULE:LAYER even when its backward is autodiff (layers.from_function, an interop "
                        "adapter): then only the finite-difference columns test anything")
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
    _saved_run_parsers(sub)
    _gradcheck_parser(sub)
    d = sub.add_parser("datasets", help="list the known datasets and whether each is available offline",
                       formatter_class=HelpFormatter)
    d.set_defaults(parser=d)
    return parser
