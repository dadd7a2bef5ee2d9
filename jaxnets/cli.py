"""The `jaxnets` command: `jaxnets train`, `jaxnets gradcheck`, `jaxnets datasets`.

    jaxnets train --dataset digits --sizes 64,30,10 --activation sigmoid --loss softmax_cross_entropy \\
        --optimizer sgd --learning-rate 0.5 --momentum 0.9 --batch-size 32 --epochs 60 --gradcheck
    jaxnets gradcheck --sizes 4,5,3 --activation tanh --loss quadratic --x64      # exit status 1 on a mismatch
    jaxnets datasets

Exit status: 0 success, 1 a failed gradient check or diverged training, 2 bad arguments or data.
"""
from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.1, "rmsprop": 1e-3, "adam": 1e-3,
              "adamw": 1e-3}
LOGIT_LOSSES = ("softmax_cross_entropy", "sigmoid_cross_entropy")


# ------------------------------------------------------------------------------------------------- parsers
def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes must be comma-separated ints like 64,30,10, got {text!r}")
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--sizes needs two or more positive sizes (inputs,...,outputs), got {text!r}")
    return sizes


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=_sizes, default=[64, 30, 10], help="layer sizes n_in,h1,...,n_out")
    p.add_argument("--activation", default="sigmoid", choices=("sigmoid", "tanh", "relu", "identity"))
    p.add_argument("--loss", default="softmax_cross_entropy",
                   choices=("softmax_cross_entropy", "sigmoid_cross_entropy", "quadratic", "binary_cross_entropy"))
    p.add_argument("--output", default="auto", choices=("auto", "none", "softmax", "sigmoid", "identity"),
                   help="output unit; auto: logits for *_cross_entropy on logits, sigmoid for binary_cross_entropy, "
                        "the hidden activation for quadratic (identity for regression)")
    p.add_argument("--penalty", default="none", choices=("none", "l2", "l1"))
    p.add_argument("--lmbda", type=float, default=0.0, help="penalty strength λ (cost += λ/2n Σw² or λ/n Σ|w|)")
    p.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxnets", description="Functional deep learning in JAX with "
                                     "hand-written backprop verified against autodiff.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a fully connected network and report test accuracy")
    t.add_argument("--dataset", default="digits", help="see `jaxnets datasets` (default digits, bundled)")
    t.add_argument("--data-dir", default=None, help="directory holding IDX files (mnist, fashion-mnist)")
    _model_args(t)
    t.add_argument("--optimizer", default="sgd", choices=OPTIMIZERS)
    t.add_argument("--learning-rate", type=float, default=None, help="default: 0.1 (sgd family), 1e-3 (adaptive)")
    t.add_argument("--momentum", type=float, default=None, help="sgd momentum (momentum, nesterov: default 0.9)")
    t.add_argument("--b1", type=float, default=0.9)
    t.add_argument("--b2", type=float, default=0.999)
    t.add_argument("--eps", type=float, default=None, help="adaptive optimizers' epsilon (default: optax's)")
    t.add_argument("--decay", type=float, default=0.9, help="rmsprop's decay")
    t.add_argument("--weight-decay", type=float, default=1e-4, help="adamw's decoupled weight decay")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--gradients", default="manual", choices=("manual", "autodiff"))
    t.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of the training set held out for validation (0: none)")
    t.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                   help="stop when validation loss has not improved for PATIENCE epochs; restore the best params")
    t.add_argument("--drop-last", action="store_true", help="skip the last partial batch of each epoch")
    t.add_argument("--checkpoint-dir", default=None)
    t.add_argument("--checkpoint-every", type=int, default=1)
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --checkpoint-dir")
    t.add_argument("--metrics-out", default=None, help="write the per-epoch history (.json or .csv)")
    t.add_argument("--plot-out", default=None, help="write learning curves (.png; needs matplotlib)")
    t.add_argument("--gradcheck", action="store_true", help="after training, compare manual, autodiff and finite-"
                   "difference gradients of the trained net on a small batch of test examples")
    t.add_argument("--gradcheck-batch", type=int, default=8)
    t.add_argument("--verbose", action="store_true", help="print one line per epoch")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    g = sub.add_parser("gradcheck", help="check hand-written gradients against autodiff and finite differences")
    _model_args(g)
    g.add_argument("--batch", type=int, default=8, help="examples in the random batch")
    g.add_argument("--x64", action="store_true", help="compare in float64 (tighter tolerance)")
    g.add_argument("--rtol", type=float, default=None, help="manual~autodiff tolerance (1e-4; 1e-10 with --x64)")
    g.add_argument("--fd-rtol", type=float, default=1e-6, help="tolerance against finite differences (float64)")

    sub.add_parser("datasets", help="list the known datasets and whether each is available offline")
    return parser


# ---------------------------------------------------------------------------------------------- builders
def build_model(args, regression: bool = False):
    from jaxnets import losses, models

    output = args.output
    if output == "auto":
        if args.loss in LOGIT_LOSSES:
            output = None
        elif args.loss == "binary_cross_entropy":
            output = "sigmoid"
        else:
            output = "identity" if regression else args.activation
    elif output == "none":
        output = None
    model = models.mlp(list(args.sizes), activation=args.activation, output=output)
    return model, losses.get(args.loss)


def build_penalty(args, n: int):
    from jaxnets import losses

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


def gradcheck_tables(model, loss, params, state, x, y, penalty=None, *, show_x64: bool = True):
    """[(label, report)] for the params as they are and, if `show_x64`, cast to float64. The finite-difference
    columns are float64 either way, so with `show_x64` they are computed once, in the float64 table."""
    from jaxnets import gradcheck

    reports = [("float32", gradcheck.compare(model, loss, params, state, x, y, penalty=penalty,
                                             finite_diff=not show_x64))]
    if show_x64:
        with jax.enable_x64(True):
            cast = gradcheck.as_float64
            reports.append(("float64", gradcheck.compare(model, loss, cast(params), cast(state), cast(x), y,
                                                         penalty=penalty)))
    return reports




def _check_reports(reports, rtol32: float, rtol64: float, fd_rtol: float) -> list[str]:
    failures = []
    for label, report in reports:
        try:
            report.assert_close(rtol64 if label == "float64" else rtol32, fd_rtol)
        except AssertionError as err:
            failures.append(f"{label}: {err}")
    return failures


# ------------------------------------------------------------------------------------------------ commands
def cmd_train(args) -> int:
    from jaxnets import data
    from jaxnets.training import EarlyStopping, TrainingDivergedError, evaluate, fit, plot_history

    ds = data.load(args.dataset, flatten=True, **({"data_dir": args.data_dir} if args.data_dir else {}))
    regression = not ds.classes
    if ds.x_train.shape[1] != args.sizes[0]:
        raise ValueError(f"--sizes starts with {args.sizes[0]} inputs but {args.dataset} has {ds.x_train.shape[1]} "
                         f"features; use --sizes {ds.x_train.shape[1]},...")
    if ds.classes and args.sizes[-1] != len(ds.classes) and not (args.sizes[-1] == 1 and len(ds.classes) == 2):
        raise ValueError(f"--sizes ends with {args.sizes[-1]} outputs but {args.dataset} has {len(ds.classes)} "
                         f"classes; end --sizes with {len(ds.classes)}")
    x_train, y_train, val = ds.x_train, ds.y_train, None
    if args.val_fraction > 0:
        x_train, y_train, xv, yv = data.train_val_split(ds.x_train, ds.y_train, args.val_fraction, seed=args.seed)
        val = (xv, yv)
    if args.early_stopping is not None and val is None:
        raise ValueError("--early-stopping needs a validation split; set --val-fraction > 0")
    model, loss = build_model(args, regression)
    penalty = build_penalty(args, x_train.shape[0])
    tx, tx_desc = build_optimizer(args)
    key = jax.random.key(args.seed)
    n_val = 0 if val is None else val[0].shape[0]
    print(f"dataset {args.dataset}: {x_train.shape[0]} train / {n_val} validation / {ds.x_test.shape[0]} test "
          f"examples" + (f", {len(ds.classes)} classes" if ds.classes else " (regression)"))
    early = EarlyStopping(args.early_stopping) if args.early_stopping else None
    t0 = time.perf_counter()
    try:
        result = fit(model, loss, tx, (x_train, y_train), epochs=args.epochs, batch_size=args.batch_size, key=key,
                     val_data=val, gradients=args.gradients, penalty=penalty, early_stopping=early,
                     checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every, resume=args.resume,
                     progress=not args.no_progress, verbose=args.verbose, drop_last=args.drop_last)
    except TrainingDivergedError as err:
        if args.metrics_out:
            err.history.save(args.metrics_out)
        print(f"jaxnets: {err}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - t0
    h = result.history
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
    if not args.gradcheck:
        return 0
    m = min(args.gradcheck_batch, ds.x_test.shape[0])
    reports = gradcheck_tables(model, loss, result.params, result.state, jnp.asarray(ds.x_test[:m]),
                               jnp.asarray(ds.y_test[:m]), penalty)
    print(f"\ngradient check of the trained network on {m} test examples:")
    for _, report in reports:
        print(str(report))
    failures = _check_reports(reports, 1e-4, 1e-10, 1e-6)
    print("gradient check: " + ("PASSED (manual = autodiff = finite differences)" if not failures
                                else "FAILED\n  " + "\n  ".join(failures)))
    return 1 if failures else 0


def cmd_gradcheck(args) -> int:
    from jaxnets import gradcheck

    if args.batch < 1:
        raise ValueError(f"--batch must be a positive int, got {args.batch}")
    with jax.enable_x64(bool(args.x64)):
        dtype = jnp.float64 if args.x64 else jnp.float32
        model, loss = build_model(args, regression=False)
        k_init, k_x, k_y = jax.random.split(jax.random.key(args.seed), 3)
        _, params, state = model.init(k_init, (args.sizes[0],))
        params = jax.tree_util.tree_map(lambda a: a.astype(dtype), params)
        x = jax.random.normal(k_x, (args.batch, args.sizes[0]), dtype)
        y = jax.random.randint(k_y, (args.batch,), 0, 2 if args.sizes[-1] == 1 else args.sizes[-1])
        report = gradcheck.compare(model, loss, params, state, x, y, penalty=build_penalty(args, args.batch))
    print(f"model {model.name}, loss {loss.name}, batch {args.batch}, seed {args.seed}")
    print(report)
    rtol = args.rtol if args.rtol is not None else (1e-10 if args.x64 else 1e-4)
    failures = _check_reports([("float64" if args.x64 else "float32", report)], rtol, rtol, args.fd_rtol)
    print("gradient check: " + ("PASSED" if not failures else "FAILED\n  " + "\n  ".join(failures)))
    return 1 if failures else 0


def cmd_datasets(args) -> int:
    from jaxnets import data

    rows = data.datasets()
    print(f"{'name':<15}{'kind':<11}{'offline':<9}description")
    for r in rows:
        where = f" [{r.location}]" if r.location else ""
        print(f"{r.name:<15}{r.kind:<11}{'yes' if r.offline else 'no':<9}{r.description}{where}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    command = {"train": cmd_train, "gradcheck": cmd_gradcheck, "datasets": cmd_datasets}[args.command]
    try:
        return command(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as err:
        print(f"jaxnets {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
