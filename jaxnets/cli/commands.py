"""The `jaxnets` subcommands train (then optionally save and check the trained net), gradcheck, datasets;
evaluate and predict are in `jaxnets.cli.saved`, gradcheck of the user's own layer in `jaxnets.cli.user_layer`."""
from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.cli.build import (build_optimizer, build_penalty, gradcheck_problem, steps_per_epoch,
                               train_model)
from jaxnets.cli.checks import check_loss_targets
from jaxnets.cli.saved import save_run

__all__ = ["cmd_train", "cmd_gradcheck", "cmd_datasets", "gradcheck_tables", "check_failure", "interrupted_message"]


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


def interrupted_message(args) -> str:
    """The one line printed when Ctrl-C stops a command: what was kept and how to go on."""
    where = f"jaxnets {args.command}: interrupted (Ctrl-C)"
    directory = getattr(args, "checkpoint_dir", None)
    if args.command != "train":
        return f"{where}; nothing was kept"
    if directory is None:
        return f"{where}; no checkpoint was written (pass --checkpoint-dir DIR to keep a run's progress)"
    from jaxnets import checkpoint

    last = checkpoint.latest(directory) if os.path.isdir(directory) else None
    if last is None:
        return f"{where} before the first checkpoint; nothing was saved in {directory}"
    return f"{where}; the last checkpoint {last} is kept: continue with --resume --checkpoint-dir {directory}"


# ------------------------------------------------------------------------------------------------ commands
def _load_data(args):
    """The dataset, flat for mlp and resnet_mlp, NHWC images for the conv nets (a usage error when it has none)."""
    from jaxnets import data
    from jaxnets.cli.build import IMAGE_MODELS

    images = args.model in IMAGE_MODELS
    ds = data.load(args.dataset, flatten=not images, **({"data_dir": args.data_dir} if args.data_dir else {}))
    if images and ds.x_train.ndim != 4:
        args.parser.error(f"--model {args.model} takes images (N, H, W, C), but --dataset {args.dataset} has inputs "
                          f"of shape {ds.x_train.shape}; use an image dataset (digits, mnist, fashion-mnist) or "
                          "--model mlp")
    return ds


def _check_sizes_fit(args, ds) -> None:
    if args.model != "mlp":
        return
    features = ds.x_train.shape[1]
    if features != args.sizes[0]:
        args.parser.error(f"--sizes starts with {args.sizes[0]} inputs but {args.dataset} has {features} features; "
                          f"use --sizes {features},...")
    classes = len(ds.classes) if ds.classes else 0
    if classes and args.sizes[-1] != classes and not (args.sizes[-1] == 1 and classes == 2):
        args.parser.error(f"--sizes ends with {args.sizes[-1]} outputs but {args.dataset} has {classes} classes; "
                          f"end --sizes with {classes}")


def _outputs(args, ds) -> int:
    """Output units: the last of --sizes for mlp, else one per class (1 for regression and 1-column targets)."""
    if args.model == "mlp":
        return args.sizes[-1]
    if ds.classes:
        return len(ds.classes)
    return 1 if ds.y_train.ndim == 1 else int(ds.y_train.shape[1])


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

    ds = _load_data(args)
    _check_sizes_fit(args, ds)
    regression = not ds.classes
    x_train, y_train, val = ds.x_train, ds.y_train, None
    if args.val_fraction > 0:
        x_train, y_train, xv, yv = data.train_val_split(ds.x_train, ds.y_train, args.val_fraction, seed=args.seed)
        val = (xv, yv)
    n_out = _outputs(args, ds)
    model, loss, recipe = train_model(args, int(np.prod(ds.x_train.shape[1:])), n_out, regression)
    check_loss_targets(args, (x_train.shape[0], n_out), y_train)
    penalty = build_penalty(args, x_train.shape[0])
    tx, tx_desc = build_optimizer(args, steps_per_epoch(x_train.shape[0], args.batch_size, args.drop_last))
    n_val = 0 if val is None else val[0].shape[0]
    print(f"dataset {args.dataset}: {x_train.shape[0]} train / {n_val} validation / {ds.x_test.shape[0]} test "
          f"examples" + (f", {len(ds.classes)} classes" if ds.classes else " (regression)"))
    print(summary(model, tuple(ds.x_train.shape[1:])))
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
    if args.save:
        print(f"model saved to {save_run(args, ds, model, recipe, result, test)}; use it with `jaxnets predict "
              f"{args.save} --input FILE` or jaxnets.load_model")
    return _train_gradcheck(args, model, loss, result, ds, penalty) if args.gradcheck else 0


def cmd_gradcheck(args) -> int:
    from jaxnets import gradcheck

    if args.target is not None:
        from jaxnets.cli.user_layer import cmd_gradcheck_layer

        return cmd_gradcheck_layer(args)

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
