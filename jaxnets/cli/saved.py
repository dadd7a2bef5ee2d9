"""Saved runs: `jaxnets train --save RUN.npz` writes one file (the model's recipe, params, state and what
inference needs), `jaxnets evaluate RUN.npz` and `jaxnets predict RUN.npz --input FILE` use it without code.

The file is `jaxnets.checkpoint.save_model`'s; `jaxnets.load_model(path)` rebuilds (model, params, state). The
metadata key "run" records, for the commands here: the dataset and its preprocessing (flattened or NHWC images,
per-example `input_shape`, the training inputs' value range), the class names, the loss and what the model
outputs ("logits", "probabilities" or "values").
"""
from __future__ import annotations

import os
import sys

import numpy as np

from jaxnets import losses, models

__all__ = ["save_run", "read_run", "cmd_evaluate", "cmd_predict", "read_inputs", "fit_inputs"]

RUN_KEY = "run"


def _outputs_kind(loss_name: str, recipe_kwargs: dict) -> str:
    if losses.get(loss_name).on_logits:
        return "logits"
    unit = recipe_kwargs.get("output")
    if unit is not None and models.OUTPUTS[unit].meta.outputs == "probabilities":
        return "probabilities"
    return "values"


def save_run(args, ds, model, recipe, result, test: dict) -> str:
    """Save the trained model of `jaxnets train` to args.save with the metadata `predict` and `evaluate` need."""
    from jaxnets import checkpoint

    name, kw = recipe
    run = {"dataset": args.dataset, "data_dir": args.data_dir, "flatten": ds.x_train.ndim == 2,
           "input_shape": [int(d) for d in ds.x_train.shape[1:]],
           "input_range": [float(np.min(ds.x_train)), float(np.max(ds.x_train))],
           "classes": list(ds.classes) if ds.classes else None, "loss": args.loss,
           "outputs": _outputs_kind(args.loss, kw), "model": name, "arguments": kw, "epochs": args.epochs,
           "seed": args.seed, "test": {k: (None if v is None else float(v)) for k, v in test.items()}}
    return checkpoint.save_model(args.save, model, result.params, result.state,
                                 input_shape=tuple(run["input_shape"]), metadata={RUN_KEY: run})


def read_run(args):
    """(model, params, state, run metadata or {}) of the saved RUN; a usage error when it is not a saved model."""
    from jaxnets import checkpoint

    try:
        model, params, state = checkpoint.load_model(args.run)
    except (ValueError, TypeError, KeyError) as err:
        args.parser.error(f"RUN {args.run}: cannot load a model from it ({err}); give a file written by "
                          "`jaxnets train --save` or jaxnets.checkpoint.save_model")
    try:   # a fit checkpoint directory (or a file not written by the CLI) has no run record: the defaults apply
        run = checkpoint.load_metadata(args.run).get(RUN_KEY) or {}
    except (OSError, ValueError, KeyError):
        run = {}
    return model, params, state, run


def read_inputs(path: str, flag: str, parser, names=("x",)):
    """The arrays in an .npy, .npz or .csv file: one array for .npy/.csv; for .npz the members `names`."""
    low = path.lower()
    try:
        if low.endswith(".csv"):
            return (np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float32),)
        if low.endswith(".npy"):
            return (np.load(path, allow_pickle=False),)
        with np.load(path, allow_pickle=False) as z:
            members = list(z.files)
            if len(names) == 1 and names[0] not in members and len(members) == 1:
                return (z[members[0]],)
            missing = [n for n in names if n not in members]
            if missing:
                parser.error(f"{flag} {path}: has arrays {members}, not {missing}; save it with "
                             f"np.savez(path, {', '.join(f'{n}={n}' for n in names)})")
            return tuple(z[n] for n in names)
    except (OSError, ValueError) as err:
        parser.error(f"{flag} {path}: cannot be read as {os.path.splitext(path)[1]} ({err}); write it with "
                     "np.save / np.savez, or as comma-separated numbers one example per row")


def fit_inputs(x, run: dict, flag: str, path: str, parser):
    """x reshaped to (m, *input_shape) of the saved run (flat rows and image-shaped arrays both fit), float32."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        parser.error(f"{flag} {path}: holds {x.dtype} values; give real numbers")
    shape = tuple(run.get("input_shape") or ())
    if not shape:
        return x.astype(np.float32)
    size = int(np.prod(shape))
    if x.shape == shape or (x.ndim == 1 and x.size == size):
        x = x.reshape((1,) + shape)
    elif x.ndim >= 2 and int(np.prod(x.shape[1:])) == size:
        x = x.reshape((x.shape[0],) + shape)
    else:
        fix = (f"evaluate on a dataset whose examples have {size} values, or pass --data FILE.npz"
               if flag == "--dataset" else
               f"give an array (examples, {size}) or (examples, {', '.join(map(str, shape))})")
        parser.error(f"{flag} {path}: inputs of shape {x.shape} do not fit the model's per-example input "
                     f"{shape} ({size} values each); {fix}")
    low, high = run.get("input_range") or (None, None)
    if high is not None and x.size and (np.max(x) > 2 * max(abs(high), 1.0) or np.min(x) < low - max(abs(high), 1.0)):
        print(f"jaxnets: note: {flag} values lie in [{np.min(x):g}, {np.max(x):g}], but the model was trained on "
              f"inputs in [{low:g}, {high:g}]; preprocess them the same way (digits: pixels / 16; mnist: / 255)",
              file=sys.stderr)
    return x.astype(np.float32)


def _dataset_split(args, run):
    from jaxnets import data

    name = args.dataset or run.get("dataset")
    if name is None:
        args.parser.error(f"RUN {args.run} records no dataset; pass --dataset NAME or --data FILE.npz")
    data_dir = args.data_dir or (run.get("data_dir") if args.dataset is None else None)
    ds = data.load(name, flatten=run.get("flatten", True), **({"data_dir": data_dir} if data_dir else {}))
    return (ds.x_train, ds.y_train) if args.split == "train" else (ds.x_test, ds.y_test), f"{name} {args.split} split"


def cmd_evaluate(args) -> int:
    import jaxnets

    model, params, state, run = read_run(args)
    if "loss" not in run:
        args.parser.error(f"RUN {args.run} records no loss (it was not saved by `jaxnets train --save`); evaluate "
                          "it in Python with jaxnets.evaluate(model, loss, params, state, (x, y))")
    if args.data is not None:
        x, y = read_inputs(args.data, "--data", args.parser, names=("x", "y"))
        where = args.data
    else:
        (x, y), where = _dataset_split(args, run)
    x = fit_inputs(x, run, "--data" if args.data else "--dataset", args.data or where, args.parser)
    if len(y) != len(x):
        args.parser.error(f"--data {args.data}: {len(x)} inputs but {len(y)} labels; give one label per example")
    result = jaxnets.evaluate(model, losses.get(run["loss"]), params, state, (x, np.asarray(y)))
    line = f"{where}: {len(x)} examples, loss {float(result['loss']):.4f}"
    if result.get("accuracy") is not None:
        correct = int(round(float(result["accuracy"]) * len(x)))
        line += f", accuracy {float(result['accuracy']):.4f} ({correct}/{len(x)})"
    print(line)
    return 0


def _predictions(outputs, run: dict, what: str, parser):
    kind = run.get("outputs", "logits")
    if what == "scores":
        return outputs
    if what == "classes" and "classes" in run and run["classes"] is None:
        parser.error("--outputs classes: the model was trained for regression (its dataset has no classes); use "
                     "--outputs scores")
    if what == "probabilities" and kind == "values":
        parser.error("--outputs probabilities: the model's outputs are plain values, neither logits nor "
                     "probabilities (its output unit is not a probability); use --outputs scores or classes")
    if outputs.shape[-1] == 1:   # one unit: P(class 1)
        p = 1 / (1 + np.exp(-outputs)) if kind == "logits" else outputs
        return (p[:, 0] > 0.5).astype(np.int64) if what == "classes" else p
    if what == "classes":
        return np.argmax(outputs, axis=-1)
    if kind == "logits":
        z = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)
    return outputs


def _write(values, path: str | None) -> None:
    values = np.asarray(values)
    fmt = "%d" if np.issubdtype(values.dtype, np.integer) else "%.6g"
    if path is None:
        np.savetxt(sys.stdout, values.reshape(len(values), -1), fmt=fmt, delimiter=",")
    elif path.lower().endswith(".npy"):
        np.save(path, values)
    else:
        np.savetxt(path, values.reshape(len(values), -1), fmt=fmt, delimiter=",")


def cmd_predict(args) -> int:
    import jaxnets

    model, params, state, run = read_run(args)
    (x,) = read_inputs(args.input, "--input", args.parser)
    x = fit_inputs(x, run, "--input", args.input, args.parser)
    outputs = np.asarray(jaxnets.predict(model, params, state, x), dtype=np.float32)
    values = _predictions(outputs, run, args.outputs, args.parser)
    _write(values, args.output)
    if args.output is not None:
        print(f"{len(values)} predictions ({args.outputs}) written to {args.output}")
    return 0
