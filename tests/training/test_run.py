"""`check_run`: one checked, frozen record of a run, shared by fit, fit_ensemble and the sweeps."""
import ast
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))   # tests/, for the shared helpers

import jaxnets
from jaxnets import losses, optim
from jaxnets.layers import Conv2D, Dense, Flatten, Relu
from jaxnets.core import serial
from jaxnets.training.config import Builder, TrainConfig
from jaxnets.training.early_stopping import EarlyStopping
from jaxnets.training.run import Run, check_run
from jaxnets.training.streaming import ArrayData, Stream
from test_training_common import blobs, tiny_model

KEY = jax.random.key(0)
X, Y = blobs(40)
ROOT = pathlib.Path(jaxnets.__file__).parent


def test_the_record_of_arrays():
    run = check_run("fit", tiny_model(), "softmax_cross_entropy", "adam", (X, Y), epochs=3, batch_size=8, key=KEY,
                    val_data=(X[:10], Y[:10]), early_stopping=EarlyStopping(patience=2, monitor="val_accuracy"))
    assert isinstance(run, Run) and isinstance(run.build, Builder) and isinstance(run.config, TrainConfig)
    assert run.loss is losses.softmax_cross_entropy
    assert isinstance(run.data, ArrayData) and run.data.n == 40 and not run.streamed
    assert isinstance(run.val[0], jax.Array) and run.val[0].shape == (10, 4)
    assert run.classification and run.input_shape == (4,) and run.epochs == 3
    assert run.rule.monitor == run.monitor == "val_accuracy" and run.keep_best
    assert run.config.batch_size == 8 and run.config.loop == "scan" and not run.config.plateau_per_step
    assert run.ts is not None and run.keys is KEY and run.sample[0] is X
    with pytest.raises(AttributeError):
        run.epochs = 4   # frozen


def test_the_record_of_a_stream():
    batches = [(X[i:i + 8], Y[i:i + 8]) for i in range(0, 40, 8)]
    run = check_run("fit", tiny_model(), losses.softmax_cross_entropy, optim.sgd(0.1), lambda: iter(batches),
                    epochs=2, batch_size=None, key=KEY)
    assert run.streamed and isinstance(run.data, Stream)
    assert run.config.batch_size is None and run.config.loop == "step"   # a stream runs with the step driver
    assert run.monitor is None and run.rule is None and not run.keep_best and run.val is None
    assert run.sample[0].shape == (8, 4)


def test_lanes_records():
    keys = jax.random.split(KEY, 3)
    members = check_run("fit_ensemble", tiny_model(), "softmax_cross_entropy", "sgd", (X, Y), epochs=1,
                        batch_size=8, keys=keys)
    assert members.ts is None and members.keys.shape == (3,) and members.monitor is None
    swept = check_run("grid_search/random_search", lambda hp: tiny_model(), "softmax_cross_entropy",
                      lambda hp: optim.sgd(hp["lr"]), (X, Y), epochs=1, batch_size=8, key=KEY,
                      hp={"lr": jnp.float32(0.1)})
    assert swept.monitor == "train_loss" and swept.keep_best   # a sweep always selects


def test_the_loop_is_resolved_once(monkeypatch):
    from jaxnets.training import loops

    calls = []
    resolve = loops.resolve
    monkeypatch.setattr(loops, "resolve", lambda *a, **k: calls.append(a[0]) or resolve(*a, **k))
    conv = serial(Conv2D(2, (3, 3)), Relu, Flatten, Dense(3))
    xi = np.random.default_rng(0).normal(size=(8, 6, 6, 1)).astype(np.float32)
    run = check_run("fit", conv, "softmax_cross_entropy", "sgd", (xi, Y[:8]), epochs=1, batch_size=4, key=KEY)
    assert run.config.loop == ("step" if jax.default_backend() == "cpu" else "scan")
    run = check_run("fit", tiny_model(), "softmax_cross_entropy", "sgd", (X, Y), epochs=1, batch_size=4, key=KEY)
    assert run.config.loop == "scan"
    assert calls == ["auto", "auto"]   # one resolution per run


def _fit(**change):
    args = dict(model=tiny_model(), loss=losses.softmax_cross_entropy, optimizer=optim.sgd(0.1), train_data=(X, Y),
                epochs=1, batch_size=8, progress=False)
    args.update(change)
    return jaxnets.fit(args.pop("model"), args.pop("loss"), args.pop("optimizer"), args.pop("train_data"),
                       key=KEY, **args)


def _ensemble(**change):
    args = dict(model=tiny_model(), loss=losses.softmax_cross_entropy, optimizer=optim.sgd(0.1), train_data=(X, Y),
                epochs=1, batch_size=8, progress=False)
    args.update(change)
    return jaxnets.fit_ensemble(args.pop("model"), args.pop("loss"), args.pop("optimizer"), args.pop("train_data"),
                                keys=jax.random.split(KEY, 2), **args)


def _grid(**change):
    args = dict(model=tiny_model(), loss=losses.softmax_cross_entropy, optimizer=lambda hp: optim.sgd(hp["lr"]),
                train_data=(X, Y), epochs=1, batch_size=8, progress=False)
    args.update(change)
    return jaxnets.grid_search(args.pop("model"), args.pop("loss"), args.pop("optimizer"), args.pop("train_data"),
                               grid={"lr": [0.1, 0.2]}, key=KEY, **args)


REGRESSION = (X, np.zeros((40, 3), np.float32) + 0.5)


@pytest.mark.parametrize("entry", [_fit, _ensemble, _grid], ids=["fit", "fit_ensemble", "grid_search"])
@pytest.mark.parametrize("change, error, text", [
    (dict(batch_size=41), ValueError, "batch_size 41 is larger than the 40 training examples; use batch_size <= 40"),
    (dict(early_stopping=EarlyStopping(2)), ValueError,
     "early stopping monitors 'val_loss' but no val_data was given; pass val_data=(x_val, y_val) or "
     "EarlyStopping(..., monitor='train_loss')"),
    (dict(train_data=REGRESSION, loss=losses.quadratic, early_stopping=EarlyStopping(2, monitor="train_accuracy")),
     ValueError, "early stopping on accuracy needs classification targets; monitor a loss instead"),
    (dict(gradients="manaul"), ValueError, "gradients='manaul'"),
    (dict(penalty="l2"), TypeError, "penalty='l2' is a name, but a penalty needs its strength and the "
     "training-set size: pass losses.l2(lmbda, n)"),
    (dict(epochs=0), ValueError, "epochs must be a positive int, got 0"),
    (dict(loop="sideways"), ValueError, "loop='sideways': choose 'auto'"),
])
def test_each_shared_check_has_one_text(entry, change, error, text):
    with pytest.raises(error) as info:
        entry(**change)
    assert text in str(info.value)


def _train_config_calls(path: pathlib.Path) -> int:
    tree = ast.parse(path.read_text())
    return sum(isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None))
               == "TrainConfig" for node in ast.walk(tree))


# the building blocks make_step / make_epoch switch to config.train_config in a following change
_NOT_YET_SWITCHED = {"training/step.py", "training/epoch.py"}


def test_train_config_is_made_in_one_place():
    sites = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := _train_config_calls(p))}
    mine = {path: n for path, n in sites.items() if path not in _NOT_YET_SWITCHED}
    assert mine == {"training/config.py": 1}, sites
